"""Record revocation: a department revokes a record it notarized, and the registry revokes
its leaf on the Notary (``revokeLeaf``, with the record's Merkle path) through an outbox of
its own (the ``record_revocations`` table), crash-safely like anchoring:

1. a row is stored (pending) — only for the department that notarized the record, only
   once the record is anchored, once per record;
2. the driver signs ``revokeLeaf`` (the node dry-runs it first: a refusal settles the row as
   reverted, with the reason) and stores the raw bytes before sending them;
3. it sends them (again after a restart: a duplicate is no harm), and applies the receipt.

A department whose key is compromised revokes, in one request, every record it signed with
that key, or in a window of time (:func:`revoke_signed_by`): one row per record, driven by
the anchoring loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chain.types import Transaction
from contracts.trust import direction_bits
from registry.chain_gateway import NOTARY, ChainGateway, SubmitOutcome
from registry.db import Database
from registry.errors import Conflict, Forbidden, NotFound
from registry.merkle_paths import record_proof
from registry.models import (
    Batch,
    Client,
    OperationState,
    Record,
    RecordRevocation,
    RecordStatus,
)
from sdk.chain_reader import CallReverted, ChainUnavailable, RpcCallFailed
from sdk.errors import TransactionRefused

logger = logging.getLogger(__name__)

REVOKE_RECEIPT_WAIT_S = 10.0
"""How long a revocation request waits for its receipt before answering (pending)."""

MAX_REVOKED_PER_REQUEST = 10_000
"""Most records one key-compromise revocation request may revoke."""

_SETTLED = (OperationState.CONFIRMED.value, OperationState.REVERTED.value)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RevocationOutcome:
    """What a revocation request did."""

    revocation_id: int
    """Its row."""
    created: bool
    """False if the record had a revocation already (this request changed nothing)."""


def _owned_anchored(db: Database, client: Client, record_id: str) -> Record:
    with db.read_session() as session:
        found = session.execute(
            select(Record, Client.uscc)
            .join(Client, Record.client_id == Client.id)
            .where(Record.id == record_id)
        ).one_or_none()
        if found is None:
            raise NotFound(f"no record {record_id}", code="record_not_found")
        record, department = found
        session.expunge(record)
    if department != client.uscc:
        raise Forbidden(
            f"record {record_id} was notarized by another department", code="wrong_department"
        )
    if record.status != RecordStatus.ANCHORED.value:
        raise Conflict(
            f"record {record_id} is {record.status}, not anchored yet", code="not_anchored"
        )
    return record


def request_revocation(
    db: Database, gateway: ChainGateway, client: Client, record_id: str, reason: int
) -> RevocationOutcome:
    """Revoke the record ``record_id`` of the client's department with ``reason``, and
    drive the revocation for up to REVOKE_RECEIPT_WAIT_S. Raises NotFound (404), Forbidden
    (403: another department's record, nothing stored) or Conflict (409: not anchored)."""
    record = _owned_anchored(db, client, record_id)
    now = _now()
    try:
        with db.session() as session:
            row = RecordRevocation(
                record_id=record.id,
                client_id=client.id,
                reason=reason,
                state=OperationState.PENDING.value,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            revocation_id = row.id
    except IntegrityError:
        with db.read_session() as session:
            existing = session.scalars(
                select(RecordRevocation.id).where(RecordRevocation.record_id == record.id)
            ).one()
        return RevocationOutcome(existing, created=False)
    drive_revocation(db, gateway, revocation_id, wait=REVOKE_RECEIPT_WAIT_S)
    return RevocationOutcome(revocation_id, created=True)


def revoke_signed_by(
    db: Database,
    client: Client,
    *,
    department_key: str | None,
    since: datetime | None,
    until: datetime | None,
    reason: int,
) -> int:
    """Revoke every anchored, not yet revoked record of the client's department signed
    with ``department_key`` (hex; any key of the department if None) and notarized within
    [``since``, ``until``) — what a key compromise calls for. Returns how many revocations
    were queued (the anchoring loop drives them). Raises Conflict for more than
    MAX_REVOKED_PER_REQUEST (narrow the window)."""
    with db.session() as session:
        query = (
            select(Record.id)
            .join(Client, Record.client_id == Client.id)
            .outerjoin(RecordRevocation, RecordRevocation.record_id == Record.id)
            .where(
                Client.uscc == client.uscc,
                Record.status == RecordStatus.ANCHORED.value,
                Record.department_key.is_not(None),
                RecordRevocation.id.is_(None),
            )
        )
        if department_key is not None:
            query = query.where(Record.department_key == department_key.lower())
        if since is not None:
            query = query.where(Record.created_at >= since)
        if until is not None:
            query = query.where(Record.created_at < until)
        record_ids = session.scalars(query.limit(MAX_REVOKED_PER_REQUEST + 1)).all()
        if len(record_ids) > MAX_REVOKED_PER_REQUEST:
            raise Conflict(
                f"more than {MAX_REVOKED_PER_REQUEST} records match; narrow the window",
                code="too_many_records",
            )
        now = _now()
        session.add_all(
            RecordRevocation(
                record_id=record_id,
                client_id=client.id,
                reason=reason,
                state=OperationState.PENDING.value,
                created_at=now,
                updated_at=now,
            )
            for record_id in record_ids
        )
    return len(record_ids)


def unsettled_revocations(db: Database) -> list[int]:
    """Ids of revocations not confirmed or reverted yet, oldest first."""
    with db.read_session() as session:
        return list(
            session.scalars(
                select(RecordRevocation.id)
                .where(RecordRevocation.state.not_in(_SETTLED))
                .order_by(RecordRevocation.id)
            )
        )


def _settle(
    db: Database,
    revocation_id: int,
    state: OperationState,
    *,
    tx_hash: str | None,
    **values: object,
) -> None:
    """Move the revocation to ``state`` — unless it is settled already, or another driver
    (another process, or the anchoring loop beside a request) replaced its transaction
    meanwhile (``tx_hash`` is no longer the stored one): what that driver saw wins."""
    with db.session() as session:
        row = session.get_one(RecordRevocation, revocation_id, with_for_update=True)
        if row.state in _SETTLED or (tx_hash is not None and row.tx_hash != tx_hash):
            return
        row.state, row.updated_at = state.value, _now()
        for name, value in values.items():
            setattr(row, name, value)


def _sign(db: Database, gateway: ChainGateway, row: RecordRevocation) -> Transaction | None:
    """The signed ``revokeLeaf`` of the row's record (dry-run by the node); None if the node
    refused it (the row is then settled as reverted)."""
    with db.read_session() as session:
        record = session.scalars(select(Record).where(Record.id == row.record_id)).one()
        batch = session.get_one(Batch, record.batch_id)
        session.expunge_all()
    proof = record_proof(db, record, batch)
    data = NOTARY.encode_call(
        "revokeLeaf",
        bytes.fromhex(batch.root),
        bytes.fromhex(record.commitment),
        [bytes(step.sibling) for step in proof.path],
        direction_bits(proof),
        proof.leaf_index,
        row.reason,
    )
    try:
        return gateway.reader.sign_call(gateway.signer(), to=gateway.contracts().notary, data=data)
    except CallReverted as exc:
        try:
            error = NOTARY.decode_error(exc.revert_data)
            text = f"{error.name}{error.args!r}"
        except Exception:  # not a Notary error
            text = f"reverted: 0x{exc.revert_data.hex()}"
        _settle(db, row.id, OperationState.REVERTED, tx_hash=None, error=text)
        logger.warning("revocation %s refused by the chain: %s", row.id, text)
        return None


def drive_revocation(
    db: Database, gateway: ChainGateway, revocation_id: int, *, wait: float = 0.0
) -> bool:
    """Drive one revocation as far as it goes now (sign, send, wait up to ``wait`` seconds
    for the receipt, apply it); True once settled. An unreachable node leaves it for later."""
    try:
        return _drive(db, gateway, revocation_id, wait)
    except (ChainUnavailable, RpcCallFailed, TransactionRefused) as exc:
        logger.info("record revocation %s paused: %s", revocation_id, exc)
        return False


def _drive(db: Database, gateway: ChainGateway, revocation_id: int, wait: float) -> bool:
    with db.read_session() as session:
        row = session.get_one(RecordRevocation, revocation_id)
        session.expunge(row)
    if row.state in _SETTLED:
        return True
    raw_hex = row.raw_tx
    if raw_hex is None:
        tx = _sign(db, gateway, row)
        if tx is None:
            return True
        with db.session() as session:
            stored = session.get_one(RecordRevocation, revocation_id, with_for_update=True)
            if stored.raw_tx is None:
                stored.raw_tx, stored.tx_hash = tx.encode().hex(), tx.hash.hex()
                stored.updated_at = _now()
            # Else another driver stored its transaction first: send that one, not a second.
            raw_hex = stored.raw_tx
    assert raw_hex is not None
    raw = bytes.fromhex(raw_hex)
    tx_hash = Transaction.decode(raw).hash
    receipt = gateway.receipt(tx_hash)
    if receipt is None:
        if gateway.submit(raw) is SubmitOutcome.EXPIRED:
            # Never included and never will be: sign it afresh next time.
            _settle(
                db,
                revocation_id,
                OperationState.PENDING,
                tx_hash=tx_hash.hex(),
                raw_tx=None,
            )
            with db.session() as session:
                expired = session.get_one(RecordRevocation, revocation_id, with_for_update=True)
                if expired.raw_tx is None:
                    expired.tx_hash = None
            return False
        _settle(db, revocation_id, OperationState.SENT, tx_hash=tx_hash.hex())
        if wait > 0:
            receipt = gateway.reader.wait_for_receipt(tx_hash, timeout=wait, poll_interval=0.05)
        if receipt is None:
            return False
    if receipt.status != 1:
        error = f"0x{receipt.output.hex()}"
        _settle(db, revocation_id, OperationState.REVERTED, tx_hash=tx_hash.hex(), error=error)
        return True
    _settle(
        db,
        revocation_id,
        OperationState.CONFIRMED,
        tx_hash=tx_hash.hex(),
        block_number=receipt.block_number,
    )
    return True


def revocations_of(db: Database, record_ids: Sequence[str]) -> dict[str, RecordRevocation]:
    """The revocation rows of these records (detached), by record id."""
    with db.read_session() as session:
        rows = session.scalars(
            select(RecordRevocation).where(RecordRevocation.record_id.in_(list(record_ids)))
        ).all()
        session.expunge_all()
    return {row.record_id: row for row in rows}


__all__ = [
    "MAX_REVOKED_PER_REQUEST",
    "REVOKE_RECEIPT_WAIT_S",
    "RevocationOutcome",
    "drive_revocation",
    "request_revocation",
    "revocations_of",
    "revoke_signed_by",
    "unsettled_revocations",
]
