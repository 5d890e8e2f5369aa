"""Sealing accepted records into batches and anchoring them, crash-safely.

``seal_batch`` takes up to ``batch_size`` accepted records in acceptance order, builds the
SM3 Merkle tree of their commitments, and in ONE database transaction writes the batch, its
outbox row (with the signed anchoring transaction when the node is reachable) and each
record's batch, leaf index and inclusion proof. ``process_outbox`` then drives each
unconfirmed outbox row forward:

1. no signed transaction yet → sign ``Notary.anchor`` and store the raw bytes and hash
   (committed before anything is sent);
2. send the stored bytes (again after a restart: the node answers a duplicate nonce for a
   transaction it already has, which counts as sent);
3. receipt with status 1 → in one transaction: outbox confirmed, batch anchored with block
   number and hash, its records anchored, with the chain half of its proof bundles when the
   node has it (and the validator set of that height, recorded in the same transaction).

A stored transaction is replaced only when the node refuses it as expired and neither a
receipt nor a BatchAnchored event for the root exists — it can then never be included. The
Notary refuses a root twice as well, so no batch is ever anchored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update

from chain.crypto import sm3
from chain.merkle import MerkleTree
from chain.types import Transaction
from registry.chain_gateway import ChainGateway, EvidenceNotReady, SubmitOutcome
from registry.db import Database
from registry.department_keys import department_key_claims
from registry.errors import ServiceUnavailable
from registry.models import Batch, BatchStatus, Outbox, OutboxState, Record, RecordStatus
from registry.record_revocation import drive_revocation, unsettled_revocations
from sdk.bundle import canonical_json
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.errors import SdkError

logger = logging.getLogger(__name__)


SIZE_POLL_S = 0.25
"""How often the batcher looks whether a full batch waits before the interval is over."""

MAX_UNANCHORED_BATCHES = 1
"""Batches sealed and not yet anchored after which the interval alone seals no more: the
anchorer drives one transaction at a time, so sealing a small batch every interval while
it is behind only lengthens its queue (each record then waits for every batch before it,
seconds each under load). The records wait instead for the batch in flight and go, all
together, into the next one, sealed as soon as it is anchored."""

HELD_POLL_S = 0.05
"""How often a batcher holding its batch for the anchorer looks whether it caught up."""


_RECORDS = cast(Table, Record.__table__)
_SEAL_RECORD = (
    update(_RECORDS)
    .where(_RECORDS.c.seq == bindparam("sealed_seq"))
    .values(
        status=RecordStatus.SEALED.value,
        batch_id=bindparam("sealed_batch"),
        leaf_index=bindparam("sealed_leaf"),
        merkle_path=bindparam("sealed_path"),
    )
)
"""Seal one record: its batch, leaf index and inclusion proof."""


def _now() -> datetime:
    return datetime.now(UTC)


def batch_metadata_hash(leaf_count: int, first_seq: int, last_seq: int) -> bytes:
    """The ``metadataHash`` a batch is anchored with: SM3 of its canonical JSON summary."""
    summary = {"leafCount": leaf_count, "firstSeq": first_seq, "lastSeq": last_seq}
    return sm3(canonical_json(summary))


def seal_batch(db: Database, batch_size: int, *, gateway: ChainGateway | None = None) -> int | None:
    """Seal the oldest accepted records (at most ``batch_size``) into a new batch with its
    outbox row, atomically; returns the batch id, or None if nothing was waiting. With
    ``gateway``, the outbox row holds the signed anchoring transaction from the start (if
    the node tells its newest block first): the anchorer then sends it without a write
    transaction of its own to store it, one write turn and WAL sync less per batch."""
    head = _anchor_head(gateway) if gateway is not None and accepted_count(db) else None
    with db.session() as session:
        rows = session.execute(
            select(Record.seq, Record.commitment)
            .where(Record.status == RecordStatus.ACCEPTED.value)
            .order_by(Record.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            return None
        tree = MerkleTree.build([bytes.fromhex(commitment) for _, commitment in rows])
        now = _now()
        batch = Batch(
            root=tree.root.hex(),
            leaf_count=len(rows),
            metadata_hash=batch_metadata_hash(len(rows), rows[0][0], rows[-1][0]).hex(),
            status=BatchStatus.SEALED.value,
            created_at=now,
        )
        session.add(batch)
        session.flush()
        # Core, not the ORM's bulk update by primary key: this transaction holds the write
        # turn, and the ORM spent several times the statement's own cost per record.
        session.connection().execute(
            _SEAL_RECORD,
            [
                {
                    "sealed_seq": seq,
                    "sealed_batch": batch.id,
                    "sealed_leaf": index,
                    "sealed_path": tree.siblings(index),
                }
                for index, (seq, _) in enumerate(rows)
            ],
        )
        outbox = Outbox(
            batch_id=batch.id, state=OutboxState.PENDING.value, attempts=0, updated_at=now
        )
        if gateway is not None and head is not None:
            tx = gateway.sign_anchor(
                tree.root, batch.leaf_count, bytes.fromhex(batch.metadata_hash), head=head
            )
            outbox.raw_tx, outbox.tx_hash = tx.encode().hex(), tx.hash.hex()
        session.add(outbox)
        return batch.id


def _anchor_head(gateway: ChainGateway) -> int | None:
    """The newest block, with everything signing an anchoring transaction reads loaded
    (chain id, contracts, signer key), before the sealing transaction opens: inside it only
    the signature is made. None when the node or a chain fact is unavailable (the anchorer
    then signs the batch's transaction itself)."""
    try:
        gateway.chain_id()
        gateway.contracts()
        gateway.signer()
        return gateway.reader.block_number()
    except (ChainUnavailable, SdkError, ServiceUnavailable) as exc:
        logger.info("sealing without the anchoring transaction: %s", exc)
        return None


def accepted_count(db: Database) -> int:
    """How many records wait to be sealed."""
    with db.read_session() as session:
        return int(
            session.scalar(select(func.count()).where(Record.status == RecordStatus.ACCEPTED.value))
            or 0
        )


def unconfirmed_count(db: Database) -> int:
    """How many sealed batches wait for their anchoring to be confirmed."""
    with db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.state != OutboxState.CONFIRMED.value)
            )
            or 0
        )


def unconfirmed_outbox(db: Database) -> list[int]:
    """Ids of outbox rows not confirmed yet, oldest first."""
    with db.read_session() as session:
        return list(
            session.scalars(
                select(Outbox.id)
                .where(Outbox.state != OutboxState.CONFIRMED.value)
                .order_by(Outbox.id)
            )
        )


def _note_error(db: Database, outbox_id: int, error: str, *, sent: bool = False) -> None:
    """Count a failed attempt and keep its error (and mark the row sent, with ``sent``)."""
    with db.session() as session:
        row = session.get_one(Outbox, outbox_id)
        if sent and row.state == OutboxState.PENDING.value:
            row.state = OutboxState.SENT.value
        row.attempts += 1
        row.last_error = error[:2000]
        row.updated_at = _now()


def process_outbox(
    db: Database, gateway: ChainGateway, outbox_id: int, *, receipt_wait: float = 0.0
) -> bool:
    """Drive one outbox row as far as it goes now; True once it is confirmed. Raises
    ChainUnavailable if the node cannot be reached (nothing is lost: try again later).

    Every write transaction here waits for the database's write turn and makes the
    registry's request writers wait for it and its WAL sync in turn (a gated read's group
    waits behind it), so the pass writes only what must outlive a crash, and reads in read
    transactions: at most the signed transaction before it is sent, then the confirmation
    together with the chain half of the batch's proof bundles when the node has it. The
    row is marked sent only if no receipt came within ``receipt_wait`` (a row left
    pending after a crash is sent again, which the node answers as already sent)."""
    with db.read_session() as session:
        row = session.get_one(Outbox, outbox_id)
        batch = session.get_one(Batch, row.batch_id)
        state, raw_hex, root = row.state, row.raw_tx, bytes.fromhex(batch.root)
        leaf_count, metadata = batch.leaf_count, bytes.fromhex(batch.metadata_hash)
        batch_id, has_evidence = batch.id, batch.evidence_json is not None
    if state == OutboxState.CONFIRMED.value:
        return True
    if raw_hex is None:
        tx = gateway.sign_anchor(root, leaf_count, metadata)
        raw_hex = tx.encode().hex()
        with db.session() as session:
            row = session.get_one(Outbox, outbox_id)
            row.raw_tx, row.tx_hash, row.updated_at = raw_hex, tx.hash.hex(), _now()
    raw = bytes.fromhex(raw_hex)
    tx_hash = Transaction.decode(raw).hash
    receipt = gateway.receipt(tx_hash)
    sent_now = False
    if receipt is None:
        outcome = gateway.submit(raw)
        if outcome is SubmitOutcome.EXPIRED:
            return _handle_expired(db, gateway, outbox_id, root, tx_hash)
        sent_now = state == OutboxState.PENDING.value
        if receipt_wait > 0:
            receipt = gateway.reader.wait_for_receipt(tx_hash, timeout=receipt_wait)
        if receipt is None:
            if sent_now:
                _mark_sent(db, outbox_id)
            return False
    if receipt.status != 1:
        _note_error(
            db, outbox_id, f"anchoring transaction reverted: {receipt.output.hex()}", sent=sent_now
        )
        logger.error("anchoring of batch root %s reverted", root.hex())
        return False
    evidence = None
    if not has_evidence:
        try:
            evidence = _evidence(db, gateway, batch_id, raw, receipt.block_number)
        except Exception:
            # The bundles' chain half never holds up the confirmation: it is fetched again
            # when a bundle is asked for (fetch_evidence).
            logger.exception("evidence of batch %s could not be fetched", batch_id)
    with db.session() as session:
        row = session.get_one(Outbox, outbox_id)
        batch = session.get_one(Batch, row.batch_id)
        row.state, row.updated_at = OutboxState.CONFIRMED.value, _now()
        batch.status = BatchStatus.ANCHORED.value
        batch.tx_hash = tx_hash.hex()
        batch.block_number = receipt.block_number
        batch.block_hash = receipt.block_hash.hex()
        batch.anchored_at = _now()
        if evidence is not None and batch.evidence_json is None:
            batch.evidence_json = evidence
        session.execute(
            update(Record)
            .where(Record.batch_id == batch.id)
            .values(status=RecordStatus.ANCHORED.value)
        )
        gateway.record_ruling_sets(session)
    return True


def _mark_sent(db: Database, outbox_id: int) -> None:
    with db.session() as session:
        row = session.get_one(Outbox, outbox_id)
        if row.state == OutboxState.PENDING.value:
            row.state, row.updated_at = OutboxState.SENT.value, _now()


def _handle_expired(
    db: Database, gateway: ChainGateway, outbox_id: int, root: bytes, tx_hash: bytes
) -> bool:
    """The stored transaction expired unseen: adopt an anchoring that exists for the root
    (none should), or drop the stored bytes so that a fresh transaction is signed."""
    if gateway.anchoring_transactions(root):
        _note_error(db, outbox_id, "root anchored by another transaction; needs an operator")
        logger.error("batch root %s anchored by an unknown transaction", root.hex())
        return False
    with db.session() as session:
        row = session.get_one(Outbox, outbox_id)
        if row.tx_hash == bytes(tx_hash).hex():
            row.raw_tx, row.tx_hash = None, None
            row.state, row.updated_at = OutboxState.PENDING.value, _now()
    return False


def fetch_evidence(db: Database, gateway: ChainGateway, batch_id: int) -> bool:
    """Fetch and store the chain half of a batch's proof bundles if it is missing; False if
    the node cannot provide it now."""
    with db.read_session() as session:
        batch = session.get_one(Batch, batch_id)
        if batch.evidence_json is not None:
            return True
        if batch.status != BatchStatus.ANCHORED.value:
            return False
        outbox = session.scalars(select(Outbox).where(Outbox.batch_id == batch_id)).one()
        raw_hex, height = outbox.raw_tx, batch.block_number
    if raw_hex is None or height is None:
        return False
    evidence = _evidence(db, gateway, batch_id, bytes.fromhex(raw_hex), height)
    if evidence is None:
        return False
    with db.session() as session:
        batch = session.get_one(Batch, batch_id)
        if batch.evidence_json is None:
            batch.evidence_json = evidence
        gateway.record_ruling_sets(session)
    return True


def _evidence(
    db: Database, gateway: ChainGateway, batch_id: int, raw_tx: bytes, height: int
) -> str | None:
    """The chain half of the proof bundles of batch ``batch_id``, anchored by ``raw_tx`` at
    block ``height``, as stored (JSON); None if the node cannot provide it now. The
    validator set read for it is left for the caller's write transaction to record
    (:meth:`ChainGateway.record_ruling_sets`)."""
    with db.read_session() as session:
        department_keys = session.scalars(
            select(Record.department_key)
            .where(Record.batch_id == batch_id, Record.department_key.is_not(None))
            .distinct()
        ).all()
    try:
        evidence = gateway.batch_evidence(raw_tx, record_ruling_set=False)
        # The keys that signed the batch's records, as IssuerRegistry had them when it
        # was anchored: each record's bundle carries its department's.
        evidence["departmentKeys"] = department_key_claims(
            gateway, [key for key in department_keys if key is not None], height
        )
    except (EvidenceNotReady, ChainUnavailable, RpcCallFailed) as exc:
        logger.info("evidence of batch %s not available yet: %s", batch_id, exc)
        return None
    return json.dumps(evidence, sort_keys=True)


class Workers:
    """The batcher and anchorer loops of one registry process."""

    def __init__(
        self, db: Database, gateway: ChainGateway, *, batch_interval: float, batch_size: int
    ) -> None:
        """Seal every ``batch_interval`` seconds (sooner when ``batch_size`` records wait)."""
        self.db = db
        self.gateway = gateway
        self.batch_interval = batch_interval
        self.batch_size = batch_size
        self.wake_anchorer = asyncio.Event()
        self._held = False
        """Whether the last round's sealing was held for the anchorer."""

    def _may_seal(self) -> bool:
        """Whether the batcher seals now: a full batch waits, or fewer than
        :data:`MAX_UNANCHORED_BATCHES` batches wait for their anchoring."""
        return (
            unconfirmed_count(self.db) < MAX_UNANCHORED_BATCHES
            or accepted_count(self.db) >= self.batch_size
        )

    async def run_batcher(self) -> None:
        """Seal batches forever: every ``batch_interval`` seconds, and as soon as
        ``batch_size`` records wait (accepted by any process on the database). While the
        anchorer is behind (see :data:`MAX_UNANCHORED_BATCHES`) only the size seals; the
        interval's batch is sealed as soon as the anchorer has caught up."""
        while True:
            try:
                self._held = not await asyncio.to_thread(self._may_seal)
                if not self._held:
                    while (
                        await asyncio.to_thread(
                            seal_batch, self.db, self.batch_size, gateway=self.gateway
                        )
                        is not None
                    ):
                        self.wake_anchorer.set()
                        if await asyncio.to_thread(accepted_count, self.db) < self.batch_size:
                            break
            except Exception:
                logger.exception("sealing a batch failed; retrying")
            await self._until_batch_due()

    async def _until_batch_due(self) -> None:
        """Return once ``batch_interval`` has passed or a full batch waits, or — sealing
        having been held for the anchorer — as soon as it has caught up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_interval
        next_size_check = loop.time() + SIZE_POLL_S
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, HELD_POLL_S if self._held else SIZE_POLL_S))
            try:
                if self._held and (
                    await asyncio.to_thread(unconfirmed_count, self.db) < MAX_UNANCHORED_BATCHES
                ):
                    return
                if loop.time() >= next_size_check and deadline - loop.time() > 0:
                    next_size_check = loop.time() + SIZE_POLL_S
                    if await asyncio.to_thread(accepted_count, self.db) >= self.batch_size:
                        return
            except Exception:
                logger.exception("counting waiting records failed")

    async def run_anchorer(self) -> None:
        """Drive the outbox forever: anchoring transactions, then record revocations."""
        while True:
            # Cleared before the pass: a batch sealed during it wakes the next one at once.
            self.wake_anchorer.clear()
            try:
                for outbox_id in await asyncio.to_thread(unconfirmed_outbox, self.db):
                    await asyncio.to_thread(
                        process_outbox, self.db, self.gateway, outbox_id, receipt_wait=2.0
                    )
                for revocation_id in await asyncio.to_thread(unsettled_revocations, self.db):
                    await asyncio.to_thread(
                        drive_revocation, self.db, self.gateway, revocation_id, wait=2.0
                    )
            except (ChainUnavailable, SdkError) as exc:
                logger.warning("anchoring paused: %s", exc)
            except Exception:
                logger.exception("anchoring failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake_anchorer.wait(), timeout=self.batch_interval)
