"""The log of ``check`` calls, written in groups: every call is logged (who checked whom,
for what, when, the answer) and answered only once its row is committed, but the rows of
calls waiting at the same moment share one transaction — the registry's group writer
(:class:`registry.group_commit.GroupWriter`, as the request writer :mod:`registry.intake`
uses for nonces and records) — so that an approving department's checks at hundreds per
second do not each wait for a database flush of their own, and the trail signs each group
once.

A check's signed request spends its nonce in the transaction that logs it (as the data
gateway's reads do, :mod:`registry.authorizations.access`), not in one of its own before:
one write per group of checks, not two, and one wait for the database's write turn per
check. A nonce used before (stored, or earlier in the same group) refuses that check alone
with ``replayed_nonce``, and nothing is logged for it (the check is not answered).

A :class:`CheckTrail` given to the writer adds, in the same transaction, what the checked
subject is shown of each call (the data-sharing tracker plugs in its signed and anchored
check entries there); without one, or while it cannot be readied (a registry with no
chain to sign for), only the ``credit_checks`` rows are written."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError

from registry.credit.models import CreditCheckLog
from registry.db import Database
from registry.errors import AuthenticationFailed, ServiceUnavailable
from registry.group_commit import GroupWriter
from registry.intake import NonceClaim, nonce_row_unless_used, replayed_nonce, stored_nonces
from registry.models import Nonce

__all__ = [
    "ALONE_ATTEMPTS",
    "MAX_GROUP",
    "SUBJECT_FIELD",
    "WRITER_THREAD",
    "CheckLogWriter",
    "CheckTrail",
]

logger = logging.getLogger(__name__)

MAX_GROUP = 2_000
"""Most log rows committed in one transaction."""

WRITER_THREAD = "registry-credit-checks"
"""The name of the writer's thread."""

SUBJECT_FIELD = "subject"
"""The key of a log row holding the checked subject's identifier as the caller gave it:
handed to the trail, never stored in ``credit_checks`` (which keeps its keyed hash)."""


_INSERT_ROWS = cast(Table, CreditCheckLog.__table__).insert()
_INSERT_NONCES = cast(Table, Nonce.__table__).insert()

ALONE_ATTEMPTS = 5
"""Times a check met a conflicting row committed alone is tried again (another process
storing a nonce between the look-up and the insert)."""


@dataclass(frozen=True)
class _Logged:
    """A check to log: its ``credit_checks`` row and the nonce its request spends (None:
    spent already)."""

    row: dict[str, Any]
    nonce: NonceClaim | None


_Outcome = AuthenticationFailed | None
"""What logging a check came to: logged (None), or its nonce was used before."""


class CheckTrail(Protocol):
    """What the checked subject is shown of each logged check."""

    def prepare(self) -> None:
        """Anything to load before the transaction opens (keys, the chain id)."""
        ...

    def build(self, rows: Sequence[dict[str, Any]], subjects: Sequence[str]) -> Any:
        """The subject's view of the checks ``rows`` (of ``subjects``), made before the
        transaction opens (signing, hashing: nothing read from the database)."""
        ...

    def store(self, connection: Connection, built: Any) -> None:
        """Add what :meth:`build` made in the transaction of ``connection``."""
        ...


def _not_logged(_error: Exception | None = None) -> Exception:
    return ServiceUnavailable("the check could not be logged")


class CheckLogWriter:
    """One writer thread of check log rows per registry process, started on first use and
    stopped by :meth:`stop` at the application's shutdown."""

    def __init__(self, db: Database, trail: CheckTrail | None = None) -> None:
        """Write to ``db``, with ``trail`` if given."""
        self.db = db
        self.trail = trail
        self._writer: GroupWriter[_Logged, _Outcome] = GroupWriter(
            # Nonces are not looked up first: a replay is rare, and the unique constraint
            # finds it (then the checks are logged one by one, each looked up, and only the
            # replay is refused).
            lambda group: self._commit(group, check_nonces=False),
            commit_alone=self._commit_alone,
            name=WRITER_THREAD,
            max_group=MAX_GROUP,
            stopped=_not_logged,
            failed=_not_logged,
            retry_alone=(IntegrityError,),
        )
        self._starting = threading.Lock()
        self._closed = False

    async def append(self, row: dict[str, Any], nonce: NonceClaim | None = None) -> None:
        """Commit the ``credit_checks`` row ``row`` (with the rows waiting beside it), and
        the check request's ``nonce`` with it if given; returns once it is committed.
        Raises AuthenticationFailed (``replayed_nonce``) if the nonce was used before
        (nothing is then logged), ServiceUnavailable if the commit failed or the writer is
        stopped."""
        if not self._writer.running:
            with self._starting:
                if self._closed:
                    raise _not_logged()
                if not self._writer.running:
                    self._writer.start()
        outcome = await self._writer.submit(_Logged(row, nonce))
        if outcome is not None:
            raise outcome

    def stop(self) -> None:
        """Commit the rows waiting, then stop the writer thread (at the application's
        shutdown, before its database closes); later checks cannot be logged."""
        with self._starting:
            self._closed = True
        self._writer.stop()

    def _commit(self, group: Sequence[_Logged], *, check_nonces: bool = True) -> list[_Outcome]:
        """One transaction: the group's nonces, ``credit_checks`` rows and their trail; a
        check whose nonce is stored already (looked up with ``check_nonces``) or earlier in
        the group is refused and not logged. Raises IntegrityError if a nonce was stored
        meanwhile (or, without ``check_nonces``, before): nothing is then stored.

        The nonces are looked up, the rows and the trail (its signing) made before the
        transaction opens, so that the registry's write turn is held only for the inserts
        and the commit. Core statements on a connection: an ORM session around them cost as
        much CPU as the statements themselves."""
        trail = self._prepared_trail()
        used: set[tuple[str, str]] = set()
        if check_nonces:
            with self.db.read_connection() as reading:
                used = stored_nonces(reading, [g.nonce for g in group if g.nonce is not None])
        outcomes: list[_Outcome] = []
        nonce_rows: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        subjects: list[str] = []
        for logged in group:
            if logged.nonce is not None:
                nonce_row = nonce_row_unless_used(logged.nonce, used)
                if nonce_row is None:
                    outcomes.append(replayed_nonce())
                    continue
                nonce_rows.append(nonce_row)
            row = dict(logged.row)
            subjects.append(str(row.pop(SUBJECT_FIELD, "")))
            rows.append(row)
            outcomes.append(None)
        built = None if trail is None or not rows else trail.build(rows, subjects)
        with self.db.engine.begin() as connection:
            if nonce_rows:
                connection.execute(_INSERT_NONCES, nonce_rows)
            if rows:
                connection.execute(_INSERT_ROWS, rows)
            if trail is not None and built is not None:
                trail.store(connection, built)
        return outcomes

    def _commit_alone(self, logged: _Logged) -> _Outcome:
        """One check after its group met a conflicting row: its nonce looked up first, and
        again if another process stored one meanwhile."""
        for _ in range(ALONE_ATTEMPTS):
            try:
                return self._commit([logged])[0]
            except IntegrityError:
                continue
        raise ServiceUnavailable("the check log is too busy; try again")

    def _prepared_trail(self) -> CheckTrail | None:
        """The trail, ready to append; None if there is none or it cannot be readied (no
        chain to read the registry's key and chain id from): the checks are still logged
        and answered, and are in the subject's credit profile, but not in its tracker."""
        if self.trail is None:
            return None
        try:
            self.trail.prepare()
        except Exception:
            logger.warning("the check trail is not ready: checks logged without it", exc_info=True)
            return None
        return self.trail
