"""Rewinding the LMDB block store to a lower height: the dev chain's ``evm_revert`` only.

A committed block is final on every chain but a single-validator dev chain, where nobody
else holds the blocks and a test suite asks to go back to a snapshot (see
:mod:`node.dev_rewind`, which decides who may call this). :func:`rewind_blocks` deletes, inside
the caller's ONE write transaction, every record of the blocks above the target height: the
block, its receipts, its certificate, its hash in ``hash_index``, its transactions in
``tx_index`` and their replay nonces in ``nonce_index`` (only the entries this very block
wrote: an index entry is never moved, so an entry pointing elsewhere belongs to another
block), its log records and their ``log_address`` / ``log_topic`` keys, its ``log_blocks``
entry; and it moves ``meta[head]`` to the target block. LMDB commits the transaction
atomically, so after a crash the store holds either the old head or the target head, whole.

State is not touched: state keys are hashes of their values and nothing is ever deleted from
the state space, so the target block's state root still resolves, and a trie node the
discarded blocks wrote stays on disk unreferenced (as any stale node does).

This module is pure key work on a transaction handed in by
:class:`~node.storage.lmdb_store.LmdbBlockStore`; it opens nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chain.errors import EncodingError, StorageError
from chain.types import Block, Header
from node.storage import keys

if TYPE_CHECKING:
    import lmdb


@dataclass(frozen=True)
class RewindDatabases:
    """The sub-databases a rewind deletes from."""

    blocks: lmdb._Database
    hash_index: lmdb._Database
    receipts: lmdb._Database
    tx_index: lmdb._Database
    nonce_index: lmdb._Database
    certificates: lmdb._Database
    log_blocks: lmdb._Database
    logs: lmdb._Database
    log_address: lmdb._Database
    log_topic: lmdb._Database
    meta: lmdb._Database


def _stored_block(txn: lmdb.Transaction[bytes], dbs: RewindDatabases, height: int) -> Block:
    where = f"blocks[{height}]"
    record = txn.get(keys.height_key(height), db=dbs.blocks)
    if record is None:
        raise StorageError(f"rewind: {where} is missing below the head")
    try:
        block = Block.decode(keys.unframe(record, where))
    except EncodingError as exc:
        raise StorageError(f"rewind: {where}: {exc}") from exc
    if block.header.height != height:
        raise StorageError(f"rewind: {where} holds the block of height {block.header.height}")
    return block


def _delete_if_points_at(
    txn: lmdb.Transaction[bytes], db: lmdb._Database, key: bytes, height_key: bytes
) -> None:
    """Delete ``key`` if its value starts with ``height_key`` (the entry this block wrote)."""
    value = txn.get(key, db=db)
    if value is not None and value[: keys.HEIGHT_SIZE] == height_key:
        txn.delete(key, db=db)


def _delete_logs(txn: lmdb.Transaction[bytes], dbs: RewindDatabases, height: int) -> int:
    """Delete the log records of block ``height`` and their index keys; returns how many."""
    low = keys.log_position(height, 0)
    high = keys.log_position(height, keys.MAX_LOG_INDEX)
    cursor = txn.cursor(db=dbs.logs)
    positions: list[tuple[bytes, bytes]] = []
    if cursor.set_range(low):
        for position, record in cursor.iternext(keys=True, values=True):
            if position > high:
                break
            positions.append((position, record))
    for position, record in positions:
        where = f"logs[{position.hex()}]"
        _, _, log = keys.decode_log_payload(keys.unframe(record, where), where)
        txn.delete(log.address + position, db=dbs.log_address)
        for topic in dict.fromkeys(log.topics):
            txn.delete(topic + position, db=dbs.log_topic)
        txn.delete(position, db=dbs.logs)
    return len(positions)


def rewind_blocks(
    txn: lmdb.Transaction[bytes], dbs: RewindDatabases, head: Header, height: int
) -> Header:
    """Delete every record of blocks ``height + 1 .. head.height`` in ``txn`` and make the
    block at ``height`` the head; returns its header. Raises StorageError (the caller aborts
    the transaction) if ``height`` is not in ``0 .. head.height`` or a record is missing."""
    if not 0 <= height <= head.height:
        raise StorageError(f"rewind: height {height} is not in 0..{head.height}")
    target = _stored_block(txn, dbs, height).header
    for doomed in range(head.height, height, -1):
        block = _stored_block(txn, dbs, doomed)
        height_key = keys.height_key(doomed)
        for tx in block.transactions:
            _delete_if_points_at(txn, dbs.tx_index, tx.hash, height_key)
            _delete_if_points_at(txn, dbs.nonce_index, tx.nonce, height_key)
        _delete_if_points_at(txn, dbs.hash_index, block.hash, height_key)
        _delete_logs(txn, dbs, doomed)
        for db in (dbs.blocks, dbs.receipts, dbs.certificates, dbs.log_blocks):
            txn.delete(height_key, db=db)
    txn.put(keys.META_HEAD, keys.frame(target.encode()), db=dbs.meta)
    return target
