"""The log of ``check`` calls, written in groups: every call is logged (who checked whom,
for what, when, the answer) and answered only once its row is committed, but the rows of
calls waiting at the same moment share one transaction — the registry's group writer
(:class:`registry.group_commit.GroupWriter`, as the request writer :mod:`registry.intake`
uses for nonces and records) — so that an approving department's checks at hundreds per
second do not each wait for a database flush of their own, and the trail signs each group
once.

A :class:`CheckTrail` given to the writer adds, in the same transaction, what the checked
subject is shown of each call (the data-sharing tracker plugs in its signed and anchored
check entries there); without one, or while it cannot be readied (a registry with no
chain to sign for), only the ``credit_checks`` rows are written."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Table

from registry.credit.models import CreditCheckLog
from registry.db import Database
from registry.errors import ServiceUnavailable
from registry.group_commit import GroupWriter

__all__ = ["MAX_GROUP", "SUBJECT_FIELD", "CheckLogWriter", "CheckTrail"]

logger = logging.getLogger(__name__)

MAX_GROUP = 2_000
"""Most log rows committed in one transaction."""

SUBJECT_FIELD = "subject"
"""The key of a log row holding the checked subject's identifier as the caller gave it:
handed to the trail, never stored in ``credit_checks`` (which keeps its keyed hash)."""


_INSERT_ROWS = cast(Table, CreditCheckLog.__table__).insert()


class CheckTrail(Protocol):
    """What the checked subject is shown of each logged check."""

    def prepare(self) -> None:
        """Anything to load before the transaction opens (keys, the chain id)."""
        ...

    def append(
        self, connection: Connection, rows: Sequence[dict[str, Any]], subjects: Sequence[str]
    ) -> None:
        """Add the subject's view of the checks ``rows`` (of ``subjects``) in the
        transaction of ``connection``."""
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
        self._writer: GroupWriter[dict[str, Any], None] = GroupWriter(
            self._commit,
            name="registry-credit-checks",
            max_group=MAX_GROUP,
            stopped=_not_logged,
            failed=_not_logged,
            retry_alone=(),
        )
        self._starting = threading.Lock()
        self._closed = False

    async def append(self, row: dict[str, Any]) -> None:
        """Commit the ``credit_checks`` row ``row`` (with the rows waiting beside it);
        returns once it is committed. Raises ServiceUnavailable if the commit failed or the
        writer is stopped."""
        if not self._writer.running:
            with self._starting:
                if self._closed:
                    raise _not_logged()
                if not self._writer.running:
                    self._writer.start()
        await self._writer.submit(row)

    def stop(self) -> None:
        """Commit the rows waiting, then stop the writer thread (at the application's
        shutdown, before its database closes); later checks cannot be logged."""
        with self._starting:
            self._closed = True
        self._writer.stop()

    def _commit(self, group: Sequence[dict[str, Any]]) -> list[None]:
        """One transaction: the group's ``credit_checks`` rows and their trail. Core
        statements on a connection: an ORM session around them cost as much CPU as the
        statements themselves."""
        rows = [dict(row) for row in group]
        subjects = [str(row.pop(SUBJECT_FIELD, "")) for row in rows]
        trail = self._prepared_trail()
        with self.db.engine.begin() as connection:
            connection.execute(_INSERT_ROWS, rows)
            if trail is not None:
                trail.append(connection, rows, subjects)
        return [None] * len(rows)

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
