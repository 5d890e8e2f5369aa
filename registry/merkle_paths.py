"""A sealed record's Merkle inclusion proof in its batch: stored at sealing, or (records
sealed by an older version) from the batch's tree, rebuilt from the stored commitments."""

from __future__ import annotations

from sqlalchemy import select

from chain.merkle import MerkleProof, MerkleTree
from registry.caches import LruCache
from registry.db import Database
from registry.models import Batch, Record
from registry.verify_reads import RecordRow


def record_proof(
    db: Database, record: RecordRow, batch: Batch, trees: LruCache[int, MerkleTree] | None = None
) -> MerkleProof:
    """The inclusion proof of sealed ``record`` in ``batch``; a rebuilt tree is kept in
    ``trees`` (batch id → tree) if given."""
    assert record.leaf_index is not None
    if record.merkle_path is not None:
        return MerkleProof.from_siblings(record.leaf_index, batch.leaf_count, record.merkle_path)
    tree = None if trees is None else trees.get(batch.id)
    if tree is None:
        with db.read_session() as session:
            commitments = session.scalars(
                select(Record.commitment)
                .where(Record.batch_id == batch.id)
                .order_by(Record.leaf_index)
            ).all()
        tree = MerkleTree.build([bytes.fromhex(c) for c in commitments])
        # A sealed batch never changes: its records' batch and leaf index are written once.
        if trees is not None:
            trees.put(batch.id, tree)
    return tree.prove(record.leaf_index)


__all__ = ["record_proof"]
