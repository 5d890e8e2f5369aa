"""The gateway's decisions and their log, written together.

Every read a department asks for becomes an :class:`Attempt`. One writer thread per
registry process takes the attempts waiting (up to ``max_group``) and, for each in arrival
order: spends the request's nonce (a replay is refused with 401 and nothing is logged for
it), reads the cited authorization, decides with
:func:`authorizations.gateway.first_failed_rule`, counts the use, appends the entry to the
authorization's hash-chained stream, and makes the record that anchors it (signed by the
registry, once per group). All of this is built on a read snapshot, before the database's
write turn is taken; then ONE transaction reads again the authorizations and stream heads
the group was built on and, if nobody changed them meanwhile (else the group is built again
inside it, on what it reads: so a revocation committed before is seen by the very next
access, and a use is never counted twice), stores the uses, heads, nonces, records and
entries. Only after the commit is any caller answered, so no data leaves without its log
entry on disk, and the flush is paid once per group.

Streams are serialised by the database: an entry's (stream, position) is unique, so a
second registry process appending to the same stream at once fails its transaction, and
its attempts are then decided again one by one on what the other committed."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError

from authorizations.access_log import (
    UNKNOWN_AUTHORIZATION,
    RequestFacts,
    access_entry,
    outcome_of,
)
from authorizations.gateway import AccessRequest, AuthorizationState, first_failed_rule
from authorizations.terms import AuthorizationTerms
from chain.crypto import sm3
from chain.primitives import Hash32
from registry.authorizations.access_group import GroupState, LiveAuthorization
from registry.authorizations.models import AccessLogRow
from registry.authorizations.schemas import ReceiptPublic
from registry.authorizations.service import Sharing
from registry.authorizations.signing import b64
from registry.errors import AuthenticationFailed, ServiceUnavailable
from registry.group_commit import GroupWriter
from registry.intake import NonceClaim, nonce_row_unless_used, replayed_nonce, stored_nonces
from registry.models import Nonce, Record
from sdk.commitments import canonical_json
from sdk.data_receipts import ACCESS_ENTRY_PREFIX, LOG_METADATA

logger = logging.getLogger(__name__)

_NONCES = cast(Table, Nonce.__table__)
_RECORDS = cast(Table, Record.__table__)
_ACCESS_LOG = cast(Table, AccessLogRow.__table__)

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
    nonce: NonceClaim | None = None
    """The request's nonce, spent in the transaction that logs it (None: spent already)."""
    locate: Callable[[], tuple[Hash32 | None, Any]] | None = None
    """Where the subject commitment is found in the writer instead (then
    ``subject_commitment`` is ignored): the commitment and the resource as read (handed
    back in the decision). Called once per group for attempts of the same ``locate_key``
    and authorization, so a group of reads of one resource reads it once."""
    locate_key: str = ""
    """What ``locate`` reads (the provider and resource)."""


@dataclass(frozen=True)
class Decision:
    """What the gateway decided, with the signed entry as the caller's receipt."""

    outcome: str
    """``allowed``, a refusal rule, or ``unknown_authorization``."""
    receipt: ReceiptPublic
    """The signed entry."""
    located: Any = field(default=None, compare=False)
    """The resource as the attempt's ``locate`` read it (None without one)."""

    @property
    def allowed(self) -> bool:
        """Whether the read may be served."""
        return self.outcome == "allowed"


class _Located:
    """The resources the attempts of one group located, each read once."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], tuple[Hash32 | None, Any]] = {}

    def locate(self, attempt: Attempt) -> tuple[Hash32 | None, Any]:
        if attempt.locate is None:
            return attempt.subject_commitment, None
        key = (attempt.authorization_id, attempt.locate_key)
        found = self.found.get(key)
        if found is None:
            found = self.found[key] = attempt.locate()
        return found


Outcome = Decision | AuthenticationFailed
"""What an attempt came to: a decision (allowed or refused, logged), or a replayed nonce
(refused before anything is decided or logged)."""


@dataclass
class _Group:
    """A group decided and signed, its rows ready to store."""

    state: GroupState
    """The authorizations and streams it was decided on."""
    used_before: set[tuple[str, str]]
    """The attempts' (client, nonce) pairs found stored when it was built (looked up
    only when the writer checks nonces)."""
    replayed: set[int] = field(default_factory=set)
    """Indexes of the attempts refused as replays (nothing logged for them)."""
    decisions: list[Decision] = field(default_factory=list)
    nonce_rows: list[dict[str, Any]] = field(default_factory=list)
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    record_rows: list[dict[str, Any]] = field(default_factory=list)

    def store(self, connection: Connection) -> None:
        """Write it in the writer's transaction: uses, heads, nonces, records, entries."""
        self.state.write_back(connection)
        if self.nonce_rows:
            connection.execute(_NONCES.insert(), self.nonce_rows)
        if self.record_rows:
            connection.execute(_RECORDS.insert(), self.record_rows)
            connection.execute(_ACCESS_LOG.insert(), self.log_rows)

    def outcomes(self, count: int) -> list[Outcome]:
        """One outcome for each of the ``count`` attempts, in order."""
        made = iter(self.decisions)
        return [
            replayed_nonce() if index in self.replayed else next(made) for index in range(count)
        ]


class AccessWriter:
    """The writer of one registry process (see the module docstring): a
    :class:`registry.group_commit.GroupWriter` whose groups :meth:`write` commits."""

    def __init__(self, sharing: Sharing, *, max_group: int = MAX_GROUP) -> None:
        """Decide and log for ``sharing``."""
        self.sharing = sharing
        self.max_group = max_group
        self._terms: dict[str, AuthorizationTerms] = {}
        self._writer: GroupWriter[Attempt, Outcome] = GroupWriter(
            # Nonces are not looked up first: a replay is rare, and the unique constraint
            # finds it (the group is then decided again one by one, each checked).
            lambda attempts: self.write(attempts, check_nonces=False),
            commit_alone=self._write_alone,
            name="registry-access",
            max_group=max_group,
            stopped=lambda: ServiceUnavailable(
                "the gateway is not accepting reads", code="stopping"
            ),
            failed=lambda _error: ServiceUnavailable(
                "the access could not be logged; nothing was read"
            ),
        )

    def start(self) -> None:
        """Start the writer thread."""
        self._writer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Decide what waits, then stop; later attempts get 503."""
        self._writer.stop(timeout)

    async def decide(self, attempt: Attempt) -> Decision:
        """Decide and log ``attempt`` (spending its nonce in the same transaction);
        returns once its entry is committed. Raises AuthenticationFailed
        (``replayed_nonce``) for a nonce used before: nothing is then logged."""
        outcome = await self._writer.submit(attempt)
        if isinstance(outcome, AuthenticationFailed):
            raise outcome
        return outcome

    def _write_alone(self, attempt: Attempt) -> Outcome:
        for _ in range(5):
            try:
                return self.write([attempt])[0]
            except IntegrityError:
                continue
        raise ServiceUnavailable("the access stream is too busy; try again")

    def write(self, attempts: Sequence[Attempt], *, check_nonces: bool = True) -> list[Outcome]:
        """Decide and log ``attempts`` in one transaction, in order, storing their nonces
        in it too (see the module docstring); one outcome per attempt. Raises
        IntegrityError if another writer appended to one of their streams meanwhile, or —
        with ``check_nonces`` false, which skips looking the nonces up first — if a nonce
        was used before (then nothing is stored).

        The group (decisions, entries, chain links, signature) is built on a read
        snapshot, before the write turn is taken; inside the turn only what it was built
        on is read again, and it is built again on the transaction's reads should anything
        of it have changed (a revocation, a use or entry by another writer, a nonce)."""
        sharing = self.sharing
        sharing.signer.ensure_log_client()
        located = _Located()
        with sharing.db.read_connection() as reading:
            group = self._build(reading, attempts, check_nonces, located)
        # A Core transaction (BEGIN IMMEDIATE in the write turn, as every writer's): no
        # ORM session is needed around statements that are all Core.
        with sharing.db.engine.begin() as connection:
            if not self._still_holds(group, connection, attempts, check_nonces):
                group = self._build(connection, attempts, check_nonces, located)
            group.store(connection)
        return group.outcomes(len(attempts))

    def _still_holds(
        self,
        group: _Group,
        connection: Connection,
        attempts: Sequence[Attempt],
        check_nonces: bool,
    ) -> bool:
        """Whether ``group``, built on a snapshot, is what ``connection`` would build."""
        if not group.state.unchanged(connection):
            return False
        return not check_nonces or _used_nonces(connection, attempts) == group.used_before

    def _build(
        self,
        connection: Connection,
        attempts: Sequence[Attempt],
        check_nonces: bool,
        located_once: _Located,
    ) -> _Group:
        """Decide ``attempts`` on what ``connection`` reads, and make their entries, rows
        and the group's signature (nothing is written)."""
        sharing = self.sharing
        chain_id = sharing.signer.chain_id()
        key_hex = sharing.signer.public_key.hex()
        used_before = _used_nonces(connection, attempts) if check_nonces else set()
        used = set(used_before)
        state = GroupState(connection, (attempt.authorization_id for attempt in attempts))
        group = _Group(state, used_before)
        pending: list[tuple[Any, ...]] = []
        for index, attempt in enumerate(attempts):
            if attempt.nonce is not None:
                nonce_row = nonce_row_unless_used(attempt.nonce, used)
                if nonce_row is None:
                    group.replayed.add(index)
                    continue
                group.nonce_rows.append(nonce_row)
            commitment, located = located_once.locate(attempt)
            now = sharing.now()
            live = state.authorization(attempt.authorization_id)
            disclose_after: int | None = None
            if live is None or live.granted_at is None:
                outcome = UNKNOWN_AUTHORIZATION
            else:
                terms = self._terms_of(live)
                disclose_after = terms.disclose_after
                rule = first_failed_rule(
                    AuthorizationState(terms, live.revoked_at, live.uses_made),
                    AccessRequest(
                        caller=attempt.caller_uscc,
                        subject_commitment=commitment or Hash32(bytes(32)),
                        item=attempt.item,
                        purpose=attempt.purpose,
                    ),
                    now,
                )
                outcome = outcome_of(rule)
                if rule is None:
                    live.uses_made += 1
            stream = state.stream(attempt.authorization_id)
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
            encoded = canonical_json(entry)
            # access_entry_hash(entry), over the encoding made once for the row too.
            digest = sm3(ACCESS_ENTRY_PREFIX + encoded)
            pending.append((entry, digest, outcome, located))
            group.log_rows.append(
                {
                    "stream": attempt.authorization_id,
                    "position": stream.length,
                    "authorization_id": None if live is None else live.id,
                    "caller_client": attempt.caller_client,
                    "caller_uscc": attempt.caller_uscc,
                    "outcome": outcome,
                    "at": now,
                    "disclose_after": disclose_after,
                    "entry_json": encoded.decode(),
                    "entry_hash": digest.hex(),
                }
            )
            stream.length += 1
            stream.head = digest.hex()
        # One registry signature for the whole group (over the Merkle root of its
        # entries' commitments; each record carries its path there).
        signed_rows = (
            sharing.signer.records([digest for _, digest, *_ in pending], LOG_METADATA, chain_id)
            if pending
            else []
        )
        for (entry, _digest, outcome, located), log_row, signed in zip(
            pending, group.log_rows, signed_rows, strict=True
        ):
            group.record_rows.append(signed.values)
            signature = b64(signed.signature)
            log_row.update(
                record_id=signed.record_id,
                metadata_salt=signed.metadata_salt.hex(),
                registry_signature=signature,
            )
            receipt = ReceiptPublic(
                entry=entry,
                entry_hash=log_row["entry_hash"],
                record_id=signed.record_id,
                registry_key=key_hex,
                metadata_salt=log_row["metadata_salt"],
                registry_signature=signature,
                registry_proof=None if signed.proof is None else signed.proof.hex(),
                chain_id=chain_id,
            )
            group.decisions.append(Decision(outcome, receipt, located))
        return group

    def _terms_of(self, live: LiveAuthorization) -> AuthorizationTerms:
        key = f"{live.id}:{live.terms_hash}"
        terms = self._terms.get(key)
        if terms is None:
            terms = AuthorizationTerms.from_json(json.loads(live.terms_json))
            if len(self._terms) > 10_000:
                self._terms.clear()
            self._terms[key] = terms
        return terms


def _used_nonces(connection: Connection, attempts: Sequence[Attempt]) -> set[tuple[str, str]]:
    """The (client, nonce) pairs among ``attempts``' nonces already stored."""
    return stored_nonces(connection, (a.nonce for a in attempts if a.nonce is not None))


__all__ = ["MAX_GROUP", "AccessWriter", "Attempt", "Decision", "Outcome"]
