"""The log of ``check`` calls, written in groups: every call is logged (who checked whom,
for what, when, the answer) and answered only once its row is committed, but the rows of
calls waiting at the same moment share one transaction — as the request writer
(:mod:`registry.intake`) does for nonces and records — so that an approving department's
checks at hundreds per second do not each wait for a database flush of their own.

A :class:`CheckTrail` given to the writer adds, in the same transaction, what the checked
subject is shown of each call (the data-sharing tracker plugs in its signed and anchored
check entries there); without one, or while it cannot be readied (a registry with no
chain to sign for), only the ``credit_checks`` rows are written."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from registry.credit.models import CreditCheckLog
from registry.db import Database
from registry.errors import ServiceUnavailable

__all__ = ["MAX_GROUP", "SUBJECT_FIELD", "CheckLogWriter", "CheckTrail"]

logger = logging.getLogger(__name__)

MAX_GROUP = 2_000
"""Most log rows committed in one transaction."""

SUBJECT_FIELD = "subject"
"""The key of a log row holding the checked subject's identifier as the caller gave it:
handed to the trail, never stored in ``credit_checks`` (which keeps its keyed hash)."""


class CheckTrail(Protocol):
    """What the checked subject is shown of each logged check."""

    def prepare(self) -> None:
        """Anything to load before the transaction opens (keys, the chain id)."""
        ...

    def append(
        self, session: Session, rows: Sequence[dict[str, Any]], subjects: Sequence[str]
    ) -> None:
        """Add the subject's view of the checks ``rows`` (of ``subjects``) to ``session``."""
        ...


class CheckLogWriter:
    """One writer thread of check log rows per registry process, started on first use."""

    def __init__(self, db: Database, trail: CheckTrail | None = None) -> None:
        """Write to ``db``, with ``trail`` if given."""
        self.db = db
        self.trail = trail
        self._waiting: list[tuple[dict[str, Any], Future[None]]] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="registry-credit-checks", daemon=True
            )
            self._thread.start()

    async def append(self, row: dict[str, Any]) -> None:
        """Commit the ``credit_checks`` row ``row`` (with the rows waiting beside it);
        returns once it is committed. Raises ServiceUnavailable if the commit failed."""
        future: Future[None] = Future()
        with self._condition:
            self._start()
            self._waiting.append((row, future))
            self._condition.notify()
        await asyncio.wrap_future(future)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._waiting:
                    self._condition.wait()
                group = self._waiting[:MAX_GROUP]
                del self._waiting[:MAX_GROUP]
            rows = [dict(row) for row, _ in group]
            subjects = [str(row.pop(SUBJECT_FIELD, "")) for row in rows]
            trail = self._prepared_trail()
            try:
                with self.db.session() as session:
                    session.execute(cast(Table, CreditCheckLog.__table__).insert(), rows)
                    if trail is not None:
                        trail.append(session, rows, subjects)
            except Exception:
                logger.exception("logging %d checks failed", len(group))
                for _, future in group:
                    future.set_exception(ServiceUnavailable("the check could not be logged"))
                continue
            for _, future in group:
                future.set_result(None)

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
