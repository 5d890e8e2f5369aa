"""The log of ``check`` calls, written in groups: every call is logged (who checked whom,
for what, when, the answer) and answered only once its row is committed, but the rows of
calls waiting at the same moment share one transaction — as the request writer
(:mod:`registry.intake`) does for nonces and records — so that an approving department's
checks at hundreds per second do not each wait for a database flush of their own."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any, cast

from sqlalchemy import Table

from registry.credit.models import CreditCheckLog
from registry.db import Database
from registry.errors import ServiceUnavailable

__all__ = ["MAX_GROUP", "CheckLogWriter"]

logger = logging.getLogger(__name__)

MAX_GROUP = 2_000
"""Most log rows committed in one transaction."""


class CheckLogWriter:
    """One writer thread of check log rows per registry process, started on first use."""

    def __init__(self, db: Database) -> None:
        """Write to ``db``."""
        self.db = db
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
            try:
                with self.db.session() as session:
                    session.execute(
                        cast(Table, CreditCheckLog.__table__).insert(), [row for row, _ in group]
                    )
            except Exception:
                logger.exception("logging %d checks failed", len(group))
                for _, future in group:
                    future.set_exception(ServiceUnavailable("the check could not be logged"))
                continue
            for _, future in group:
                future.set_result(None)
