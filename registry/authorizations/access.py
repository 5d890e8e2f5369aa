"""The gateway's decisions and their log, written together.

Every read a department asks for becomes an :class:`Attempt`. One writer thread per
registry process takes the attempts waiting (up to ``max_group``) and, in ONE transaction,
for each in arrival order: reads the cited authorization as it is now (so a revocation
committed before is seen by the very next access), decides with
:func:`authorizations.gateway.first_failed_rule`, counts the use, appends the entry to the
authorization's hash-chained stream, and stores the entry with the record that anchors it
(signed by the registry). Only after the commit is any caller answered, so no data leaves
without its log entry on disk, and the flush is paid once per group.

Streams are serialised by the database: an entry's (stream, position) is unique, so a
second registry process appending to the same stream at once fails its transaction, and
its attempts are then decided again one by one on what the other committed."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authorizations.access_log import (
    UNKNOWN_AUTHORIZATION,
    RequestFacts,
    access_entry,
    outcome_of,
)
from authorizations.gateway import AccessRequest, AuthorizationState, first_failed_rule
from authorizations.terms import AuthorizationTerms
from chain.primitives import Hash32
from registry.authorizations.models import AccessLogRow, AccessStream, AuthorizationRow
from registry.authorizations.schemas import ReceiptPublic
from registry.authorizations.service import Sharing
from registry.authorizations.signing import b64
from registry.errors import ServiceUnavailable
from registry.models import Record
from sdk.commitments import canonical_json
from sdk.data_receipts import GENESIS, LOG_METADATA, access_entry_hash

logger = logging.getLogger(__name__)

MAX_GROUP = 500
"""Most attempts decided and logged in one transaction."""


@dataclass(frozen=True)
class Attempt:
    """One read to decide and log."""

    authorization_id: str
    """The cited authorization (the stream the entry goes to)."""
    caller_client: str
    """The calling client's id."""
    caller_uscc: str
    """Its department."""
    subject_commitment: Hash32 | None
    """The resource's subject committed with the authorization's salt; None when the
    resource or the authorization is unknown (the subject then never matches)."""
    item: str
    """Item asked for."""
    purpose: str
    """Stated purpose."""
    resource_hash: Hash32
    """SM3 of the resource identifier."""
    request: RequestFacts
    """The department's signed request."""


@dataclass(frozen=True)
class Decision:
    """What the gateway decided, with the signed entry as the caller's receipt."""

    outcome: str
    """``allowed``, a refusal rule, or ``unknown_authorization``."""
    receipt: ReceiptPublic
    """The signed entry."""

    @property
    def allowed(self) -> bool:
        """Whether the read may be served."""
        return self.outcome == "allowed"


class _Group:
    """What one transaction has read and changed so far (reused by later attempts)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.authorizations: dict[str, AuthorizationRow | None] = {}
        self.streams: dict[str, AccessStream] = {}

    def authorization(self, authorization_id: str) -> AuthorizationRow | None:
        if authorization_id not in self.authorizations:
            self.authorizations[authorization_id] = self.session.get(
                AuthorizationRow, authorization_id
            )
        return self.authorizations[authorization_id]

    def stream(self, stream: str) -> AccessStream:
        found = self.streams.get(stream) or self.session.get(AccessStream, stream)
        if found is None:
            found = AccessStream(stream=stream, length=0, head=GENESIS.hex())
            self.session.add(found)
        self.streams[stream] = found
        return found


class AccessWriter:
    """The writer thread of one registry process (see the module docstring)."""

    def __init__(self, sharing: Sharing, *, max_group: int = MAX_GROUP) -> None:
        """Decide and log for ``sharing``."""
        self.sharing = sharing
        self.max_group = max_group
        self._waiting: list[tuple[Attempt, Future[Decision]]] = []
        self._condition = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._terms: dict[str, AuthorizationTerms] = {}

    def start(self) -> None:
        """Start the writer thread."""
        with self._condition:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="registry-access", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Decide what waits, then stop; later attempts get 503."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    async def decide(self, attempt: Attempt) -> Decision:
        """Decide and log ``attempt``; returns once its entry is committed."""
        future: Future[Decision] = Future()
        with self._condition:
            if self._stopping or self._thread is None:
                raise ServiceUnavailable("the gateway is not accepting reads", code="stopping")
            self._waiting.append((attempt, future))
            self._condition.notify()
        return await asyncio.wrap_future(future)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._waiting and not self._stopping:
                    self._condition.wait()
                if not self._waiting:
                    return
                group = self._waiting[: self.max_group]
                del self._waiting[: self.max_group]
            self._commit(group)

    def _commit(self, group: list[tuple[Attempt, Future[Decision]]]) -> None:
        try:
            try:
                decisions = self.write([attempt for attempt, _ in group])
            except IntegrityError:
                logger.info("another process appended to a stream; deciding one by one")
                decisions = [self._write_alone(attempt) for attempt, _ in group]
        except Exception:
            logger.exception("logging %d accesses failed", len(group))
            for _, future in group:
                if future.set_running_or_notify_cancel():
                    future.set_exception(
                        ServiceUnavailable("the access could not be logged; nothing was read")
                    )
            return
        for (_, future), decision in zip(group, decisions, strict=True):
            if future.set_running_or_notify_cancel():
                future.set_result(decision)

    def _write_alone(self, attempt: Attempt) -> Decision:
        for _ in range(5):
            try:
                return self.write([attempt])[0]
            except IntegrityError:
                continue
        raise ServiceUnavailable("the access stream is too busy; try again")

    def write(self, attempts: Sequence[Attempt]) -> list[Decision]:
        """Decide and log ``attempts`` in one transaction, in order (see the module
        docstring); raises IntegrityError if another writer appended to one of their
        streams meanwhile (then nothing is stored)."""
        sharing = self.sharing
        sharing.signer.ensure_log_client()
        chain_id = sharing.signer.chain_id()
        key_hex = sharing.signer.public_key.hex()
        decisions: list[Decision] = []
        log_rows: list[dict[str, Any]] = []
        record_rows: list[dict[str, Any]] = []
        pending: list[tuple[Any, ...]] = []
        with sharing.db.session() as session:
            group = _Group(session)
            for attempt in attempts:
                now = sharing.now()
                row = group.authorization(attempt.authorization_id)
                disclose_after: int | None = None
                if row is None or row.granted_at is None:
                    outcome = UNKNOWN_AUTHORIZATION
                else:
                    terms = self._terms_of(row)
                    disclose_after = terms.disclose_after
                    rule = first_failed_rule(
                        AuthorizationState(terms, row.revoked_at, row.uses_made),
                        AccessRequest(
                            caller=attempt.caller_uscc,
                            subject_commitment=attempt.subject_commitment or Hash32(bytes(32)),
                            item=attempt.item,
                            purpose=attempt.purpose,
                        ),
                        now,
                    )
                    outcome = outcome_of(rule)
                    if rule is None:
                        row.uses_made += 1
                stream = group.stream(attempt.authorization_id)
                entry = access_entry(
                    stream=attempt.authorization_id,
                    position=stream.length,
                    previous=Hash32(bytes.fromhex(stream.head)),
                    at=now,
                    caller=attempt.caller_uscc,
                    item=attempt.item,
                    purpose=attempt.purpose,
                    resource_hash=attempt.resource_hash,
                    outcome=outcome,
                    request=attempt.request,
                    salt=os.urandom(16),
                    disclose_after=disclose_after,
                )
                digest = access_entry_hash(entry)
                pending.append((entry, digest, outcome, row, attempt, stream.length, now))
                log_rows.append(
                    {
                        "stream": attempt.authorization_id,
                        "position": stream.length,
                        "authorization_id": None if row is None else row.id,
                        "caller_client": attempt.caller_client,
                        "caller_uscc": attempt.caller_uscc,
                        "outcome": outcome,
                        "at": now,
                        "disclose_after": disclose_after,
                        "entry_json": canonical_json(entry).decode(),
                        "entry_hash": digest.hex(),
                    }
                )
                stream.length += 1
                stream.head = digest.hex()
            # One registry signature for the whole group (over the Merkle root of its
            # entries' commitments; each record carries its path there).
            signed_rows = sharing.signer.records(
                [digest for _, digest, *_ in pending], LOG_METADATA, chain_id
            )
            for (entry, digest, outcome, *_), log_row, signed in zip(
                pending, log_rows, signed_rows, strict=True
            ):
                record_rows.append(signed.values)
                log_row.update(
                    record_id=signed.record_id,
                    metadata_salt=signed.metadata_salt.hex(),
                    registry_signature=b64(signed.signature),
                )
                decisions.append(
                    Decision(
                        outcome,
                        ReceiptPublic(
                            entry=entry,
                            entry_hash=digest.hex(),
                            record_id=signed.record_id,
                            registry_key=key_hex,
                            metadata_salt=signed.metadata_salt.hex(),
                            registry_signature=b64(signed.signature),
                            registry_proof=None if signed.proof is None else signed.proof.hex(),
                            chain_id=chain_id,
                        ),
                    )
                )
            session.flush()
            session.execute(cast(Table, Record.__table__).insert(), record_rows)
            session.execute(cast(Table, AccessLogRow.__table__).insert(), log_rows)
        return decisions

    def _terms_of(self, row: AuthorizationRow) -> AuthorizationTerms:
        key = f"{row.id}:{row.terms_hash}"
        terms = self._terms.get(key)
        if terms is None:
            terms = AuthorizationTerms.from_json(json.loads(row.terms_json))
            if len(self._terms) > 10_000:
                self._terms.clear()
            self._terms[key] = terms
        return terms


__all__ = ["MAX_GROUP", "AccessWriter", "Attempt", "Decision"]
