"""Group commit of what requests write: the nonce of every signed request, and the accepted
records of ``POST /v1/records``.

A request hands its rows to the :class:`GroupCommitter` and waits. One writer takes every
row waiting at that moment (up to ``max_group``), checks them against the database and
against each other, inserts them in ONE transaction, and only after that transaction has
committed answers each waiter. So a record answered 202 is on disk exactly as before (the
database's own durability: SQLite ``synchronous=FULL``, PostgreSQL's WAL flush at commit),
and the flush is paid once per group instead of once per request. A nonce and the record of
the same request are stored in the same transaction.

A request carries one record (``POST /v1/records``) or many (``POST /v1/records/bulk``); the
records of one request are stored together or not at all. Refusals stay per request: a
nonce used before (in the database or earlier in the same group) refuses that request alone
with ``replayed_nonce`` and stores nothing for it; an Idempotency-Key used before answers
the stored records (or 409 for another body). Should the group's transaction fail anyway (a
writer outside this process), its requests are committed one by one, each refused or stored
on its own.

One committer (one thread) per registry process; several processes may share a database
(the uniqueness constraints decide between them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import IntegrityError

from registry.db import Database
from registry.errors import AuthenticationFailed, Conflict, RegistryError, ServiceUnavailable
from registry.group_commit import GroupWriter
from registry.models import Nonce, Record
from registry.record_schemas import SignedRecordAccepted
from registry.schemas import RecordAccepted

logger = logging.getLogger(__name__)

MAX_GROUP = 1_000
"""Most requests committed in one transaction."""

MAX_GROUP_RECORDS = 5_000
"""Records after which a group is closed (a bulk request is never split)."""

KEY_CHUNK = 2_000
"""Idempotency keys looked up per query (bound parameters stay well under SQLite's limit)."""


@dataclass(frozen=True)
class NonceClaim:
    """The nonce a signed request spends, kept until its timestamp could no longer pass."""

    client_id: str
    """The signing client."""
    nonce: str
    """The request's nonce."""
    expires_at: datetime
    """When the nonce may be forgotten."""


def stored_nonces(connection: Connection, claims: Iterable[NonceClaim]) -> set[tuple[str, str]]:
    """The (client, nonce) pairs of ``claims`` already stored, read on ``connection`` (for a
    writer that spends nonces in a transaction of its own with what it stores)."""
    nonces = cast(Table, Nonce.__table__).c
    stored: set[tuple[str, str]] = set()
    for client_id, asked in _by_client([(c.client_id, c.nonce) for c in claims]).items():
        stored.update(
            (client_id, nonce)
            for nonce in connection.scalars(
                select(nonces.nonce).where(nonces.client_id == client_id, nonces.nonce.in_(asked))
            )
        )
    return stored


def nonce_row_unless_used(claim: NonceClaim, used: set[tuple[str, str]]) -> dict[str, Any] | None:
    """The row that stores ``claim`` in a writer's transaction, with its (client, nonce)
    added to ``used`` (the pairs stored or spent earlier in the same group); None, and
    nothing added, if it is in ``used`` already: the request is a replay."""
    key = (claim.client_id, claim.nonce)
    if key in used:
        return None
    used.add(key)
    return {"client_id": claim.client_id, "nonce": claim.nonce, "expires_at": claim.expires_at}


def replayed_nonce() -> AuthenticationFailed:
    """The refusal of a request whose nonce was used before."""
    return AuthenticationFailed("nonce was used before", code="replayed_nonce")


@dataclass(frozen=True)
class NewRecord:
    """A validated record ready to be stored (see :func:`registry.notarization.prepare_record`)."""

    values: dict[str, Any]
    """The ``records`` row, column by column (``seq`` is given by the database)."""
    accepted: RecordAccepted
    """The answer once it is stored."""

    @property
    def client_id(self) -> str:
        """The submitting client."""
        return str(self.values["client_id"])

    @property
    def idempotency_key(self) -> str:
        """The request's Idempotency-Key."""
        return str(self.values["idempotency_key"])

    @property
    def request_hash(self) -> str:
        """SM3 of the request body (hex)."""
        return str(self.values["request_hash"])


Answer = tuple[RecordAccepted, bool]
"""A stored record's answer and whether this request stored it (False: an idempotent retry)."""

Outcome = list[Answer] | RegistryError | None
"""What one entry came to: one answer per record, a refusal, or (a nonce alone) None."""


@dataclass(frozen=True)
class _Entry:
    nonce: NonceClaim
    records: tuple[NewRecord, ...] = ()


def accepted_view(record: Record) -> RecordAccepted:
    """The 202 answer of a stored record (also what an idempotent retry gets)."""
    return SignedRecordAccepted(
        id=record.id,
        status=record.status,
        digest=record.digest,
        metadata_hash=record.metadata_hash,
        field_hashes=dict(record.field_hashes),
        # The salts were handed back once, in the answer to the request that stored it.
        salts=dict(record.field_salts or {}),
        commitment=record.commitment,
        # SQLite hands back naive datetimes; every time the registry stores is UTC.
        created_at=(
            record.created_at
            if record.created_at.tzinfo is not None
            else record.created_at.replace(tzinfo=UTC)
        ),
    )


def _answers(
    records: Sequence[NewRecord], known: dict[tuple[str, str], tuple[RecordAccepted, str]]
) -> list[Answer] | Conflict:
    """One answer per record of a request: the stored record for a key used before by the
    same request body, else the new record; a Conflict if any key was used with another
    body (then none of the request's records is stored)."""
    answers: list[Answer] = []
    for record in records:
        stored = known.get((record.client_id, record.idempotency_key))
        if stored is None:
            answers.append((record.accepted, True))
        elif stored[1] != record.request_hash:
            return Conflict(
                "this Idempotency-Key was used with a different request body",
                code="idempotency_conflict",
            )
        else:
            answers.append((stored[0], False))
    return answers


def _by_client(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for client_id, value in pairs:
        grouped.setdefault(client_id, []).append(value)
    return grouped


def _uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with the same columns each (one executemany needs that): a column some
    rows leave out (an optional one, such as a bulk record's ``department_proof``, or one
    added after the code that built the row) is NULL in them."""
    columns = set().union(*rows)
    return [row if len(row) == len(columns) else {c: row.get(c) for c in columns} for row in rows]


def commit_group(
    db: Database, entries: Sequence[_Entry], *, check_nonces: bool = True
) -> list[Outcome]:
    """Store ``entries`` in one transaction; one outcome per entry, in order. Raises
    IntegrityError if a conflicting row exists (nothing is then stored): one written by
    another writer meanwhile, or — with ``check_nonces`` false, which skips looking the
    nonces up first — a replayed nonce."""
    outcomes: list[Outcome] = []
    with db.session() as session:
        used = (
            stored_nonces(session.connection(), [e.nonce for e in entries])
            if check_nonces
            else set()
        )
        keyed = [(r.client_id, r.idempotency_key) for e in entries for r in e.records]
        known: dict[tuple[str, str], tuple[RecordAccepted, str]] = {}
        for client_id, keys in _by_client(keyed).items():
            for start in range(0, len(keys), KEY_CHUNK):
                for stored in session.scalars(
                    select(Record).where(
                        Record.client_id == client_id,
                        Record.idempotency_key.in_(keys[start : start + KEY_CHUNK]),
                    )
                ):
                    known[(client_id, stored.idempotency_key)] = (
                        accepted_view(stored),
                        stored.request_hash,
                    )
        nonce_rows: list[dict[str, Any]] = []
        record_rows: list[dict[str, Any]] = []
        for entry in entries:
            nonce_row = nonce_row_unless_used(entry.nonce, used)
            if nonce_row is None:
                outcomes.append(replayed_nonce())
                continue
            nonce_rows.append(nonce_row)
            if not entry.records:
                outcomes.append(None)
                continue
            outcome = _answers(entry.records, known)
            if isinstance(outcome, list):
                for record, (_, created) in zip(entry.records, outcome, strict=True):
                    if created:
                        known[(record.client_id, record.idempotency_key)] = (
                            record.accepted,
                            record.request_hash,
                        )
                        record_rows.append(record.values)
            outcomes.append(outcome)
        # Core inserts of the tables: the ORM's bulk path costs more than the rows.
        if nonce_rows:
            session.execute(cast(Table, Nonce.__table__).insert(), nonce_rows)
        if record_rows:
            session.execute(cast(Table, Record.__table__).insert(), _uniform(record_rows))
    return outcomes


def commit_entries(db: Database, entries: Sequence[_Entry]) -> list[Outcome]:
    """:func:`commit_group`, falling back to one transaction per entry if the group's
    transaction met a conflicting row (what the :class:`GroupCommitter` does). Nonces are
    not looked up first: a replay is rare, and the unique constraint finds it (then the
    entries are committed one by one, each checked, and only the replay is refused)."""
    try:
        return commit_group(db, entries, check_nonces=False)
    except IntegrityError:
        logger.info(
            "group of %d requests met a conflicting row; committing one by one", len(entries)
        )
    return [_commit_alone(db, entry) for entry in entries]


def _commit_alone(db: Database, entry: _Entry) -> Outcome:
    """One entry after its group met a conflicting row: checked first, and checked again
    if a conflicting row was committed meanwhile (it is found then)."""
    try:
        return commit_group(db, [entry])[0]
    except IntegrityError:
        return commit_group(db, [entry])[0]


class GroupCommitter:
    """The single writer of request rows of one registry process (see the module
    docstring): a :class:`registry.group_commit.GroupWriter` whose thread is started by
    :meth:`start` and stopped by :meth:`stop` (the application's lifespan does both).
    Requests wait for it from any event loop."""

    def __init__(self, db: Database, *, max_group: int = MAX_GROUP) -> None:
        """Commit to ``db`` at most ``max_group`` requests per transaction."""
        self.db = db
        self.max_group = max_group
        self._writer: GroupWriter[_Entry, Outcome] = GroupWriter(
            # Nonces are not looked up first: a replay is rare, and the unique constraint
            # finds it (then the entries are committed one by one, each checked, and only
            # the replay is refused).
            lambda entries: commit_group(db, entries, check_nonces=False),
            commit_alone=lambda entry: _commit_alone(db, entry),
            name="registry-intake",
            max_group=max_group,
            weight=lambda entry: len(entry.records),
            max_weight=MAX_GROUP_RECORDS,
            stopped=lambda: ServiceUnavailable(
                "the registry is not accepting writes", code="stopping"
            ),
        )

    def start(self) -> None:
        """Start the writer thread."""
        self._writer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is waiting, then stop the writer thread; later requests get 503."""
        self._writer.stop(timeout)

    async def _submit(self, entry: _Entry) -> Outcome:
        outcome = await self._writer.submit(entry)
        if isinstance(outcome, RegistryError):
            raise outcome
        return outcome

    async def spend_nonce(self, claim: NonceClaim) -> None:
        """Store the nonce of a signed request; raises AuthenticationFailed
        (``replayed_nonce``) if it was used before."""
        await self._submit(_Entry(claim))

    async def accept_record(self, claim: NonceClaim, record: NewRecord) -> Answer:
        """Store the request's nonce and its record in one transaction; returns the answer
        and whether the record is new (False: an idempotent retry). Raises
        AuthenticationFailed for a replayed nonce, Conflict for a key reused with another
        body."""
        (answer,) = await self.accept_records(claim, [record])
        return answer

    async def accept_records(self, claim: NonceClaim, records: Sequence[NewRecord]) -> list[Answer]:
        """:meth:`accept_record` for the records of one bulk request: all of them are
        stored with the nonce in one transaction, or none; one answer per record, in
        order."""
        if not records:
            raise ValueError("a request stores at least one record")
        outcome = await self._submit(_Entry(claim, tuple(records)))
        assert isinstance(outcome, list)
        return outcome


__all__ = [
    "Answer",
    "GroupCommitter",
    "NewRecord",
    "NonceClaim",
    "accepted_view",
    "commit_entries",
    "nonce_row_unless_used",
    "replayed_nonce",
    "stored_nonces",
]
