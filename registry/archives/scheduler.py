"""Scheduled fixity audits: a worker that audits every stored package version
(:func:`registry.archives.auditing.run_audit`) every ``audit_interval_s`` seconds, counted
from the end of the last audit recorded in the database (so a restarted registry keeps the
schedule instead of auditing at once). Its findings are custody events, log lines, the
health answer and the webhook, as for an audit run by hand.

An audit the worker was stopped in (shutdown) or that a crash cut short leaves its
checkpoint in the store; the worker's next round continues it at once, from where it
stopped, whatever the schedule says. The registry runs the worker in the process holding
the workers lease, so one process audits at a time.

The same worker runs the audits of one package that departments ask for
(:mod:`registry.archives.audit_requests`), looking for them every
:data:`REQUEST_POLL_S` seconds, before the scheduled audit; with no ``audit_interval_s``
it runs those only. A requested audit stopped at shutdown is continued the same way."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from archives.audit import AuditResult
from archives.errors import AuditBusy, AuditInterrupted
from registry.archives.audit_requests import pending_audits, run_requested_audit
from registry.archives.auditing import CHECKPOINT_NAME, run_audit
from registry.archives.models import ArchiveAuditRow
from registry.archives.service import ArchiveService
from registry.archives.settings import ArchiveSettings
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.settings import RegistrySettings

logger = logging.getLogger(__name__)

LONGEST_WAIT_S = 60.0
"""Longest sleep between looks at the schedule (a new interval or a checkpoint left by a
command-line audit is seen within this)."""

RETRY_S = 30.0
"""Wait after an audit that failed (the store unreadable, the database away)."""

REQUEST_POLL_S = 1.0
"""Longest wait before an audit a department asked for is seen (in any process)."""

BUSY_WAIT_S = 5.0
"""Wait while another audit of the store (the command line's) holds its lock."""

STOP_WAIT_S = 5.0
"""Longest the registry's shutdown waits for a running audit to stop. An audit stops within
a fraction of a second (:data:`archives.audit.STOP_POLL_S`, its hashing workers ended);
this stays well inside a service manager's stop timeout (Docker's 10 s, systemd's 90 s)."""


class AuditWorker:
    """Audits ``service``'s store every ``interval_s`` seconds (never if None) and the
    packages departments ask for, in a thread of its own."""

    def __init__(
        self,
        service: ArchiveService,
        interval_s: float | None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """The worker of ``service``; ``progress`` is told (files, bytes) as an audit goes."""
        self.service = service
        self.interval_s = interval_s
        self.now = now
        self.progress = progress
        self.finished: list[AuditResult] = []
        """Audits this worker completed (scheduled and asked for), in order."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def last_finished(self) -> datetime | None:
        """When the last recorded audit ended (None if none did)."""
        with self.service.db.read_session() as session:
            last = session.scalar(select(func.max(ArchiveAuditRow.finished_at)))
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return last

    def due_in(self) -> float:
        """Seconds until the next audit is due: 0 with an interrupted audit to continue or
        none recorded yet; infinite without an interval."""
        if self.interval_s is None:
            return float("inf")
        if (self.service.store.root / CHECKPOINT_NAME).exists():
            return 0.0
        last = self.last_finished()
        if last is None:
            return 0.0
        return max(0.0, self.interval_s - (self.now() - last).total_seconds())

    def run_due(self) -> AuditResult | None:
        """Run the audit if it is due (None if not); raises AuditInterrupted when stopped
        in it."""
        if self.due_in() > 0:
            return None
        result = run_audit(self.service, progress=self.progress, now=self.now, stop=self._stop)
        self.finished.append(result)
        logger.info(
            "scheduled fixity audit %s: %d package versions, %d findings",
            result.audit_id,
            len(result.packages),
            len(result.findings),
        )
        return result

    def _round(self) -> bool:
        """One look: the oldest audit a department asked for, else the scheduled audit
        if it is due. Whether it ran one; raises AuditInterrupted when stopped in it."""
        pending = pending_audits(self.service)
        if pending:
            result = run_requested_audit(
                self.service, pending[0], now=self.now, progress=self.progress, stop=self._stop
            )
            if result is not None:
                self.finished.append(result)
            return True
        return self.run_due() is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._round():
                    self._stop.wait(min(self.due_in(), LONGEST_WAIT_S, REQUEST_POLL_S))
            except AuditInterrupted:
                logger.info("fixity audit stopped; the next round continues it")
                return
            except AuditBusy:
                logger.info("another fixity audit is running (the command line?); waiting")
                self._stop.wait(BUSY_WAIT_S)
            except Exception:
                logger.exception("scheduled fixity audit failed; trying again")
                self._stop.wait(RETRY_S)

    def start(self) -> None:
        """Start the worker's thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="archive-audits", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the worker to stop (a running audit ends within a fraction of a second), not
        waiting."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the worker and wait for its thread (``timeout`` seconds at most); whether it
        ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    @property
    def running(self) -> bool:
        """Whether the worker's thread is alive."""
        return self._thread is not None and self._thread.is_alive()


async def run_scheduled_audits(
    db: Database,
    gateway: ChainGateway,
    registry_settings: RegistrySettings,
    settings: ArchiveSettings | None = None,
) -> None:
    """Run the audit worker until cancelled (with no ``audit_interval_s``, for the
    audits departments ask for only); returns at once if the store cannot be opened
    (logged), so it never takes the registry's other workers down. On cancellation a
    running audit is stopped, its checkpoint kept, and waited for (:data:`STOP_WAIT_S` at
    most)."""
    settings = settings or ArchiveSettings()
    try:
        service = ArchiveService(db, gateway, registry_settings, settings)
    except OSError:
        logger.exception("the archive store cannot be opened: no scheduled fixity audits")
        return
    worker = AuditWorker(service, settings.audit_interval_s)
    worker.start()
    try:
        await asyncio.Event().wait()
    finally:
        # Waited for here, holding the event loop, not awaited in a thread: the registry's
        # workers are gathered (registry.app), and a cancelled gather ends as soon as one
        # of them has, without waiting for this one; uvicorn then ends the process by
        # raising the SIGTERM it caught again, which runs no more Python: no thread is
        # joined, no process pool shut down, and an audit still running would leave its
        # hashing workers behind.
        if not worker.stop(STOP_WAIT_S):
            logger.warning(
                "the fixity audit did not stop within %g s; its workers end with this process",
                STOP_WAIT_S,
            )


__all__ = [
    "BUSY_WAIT_S",
    "LONGEST_WAIT_S",
    "REQUEST_POLL_S",
    "STOP_WAIT_S",
    "AuditWorker",
    "run_scheduled_audits",
]
