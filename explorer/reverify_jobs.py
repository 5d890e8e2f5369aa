"""Re-verification jobs started from a page: each runs in its own thread against the node,
records its progress in ``verification_jobs`` as it goes, and ends with its report there."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from sqlalchemy import desc, insert, select, update

from explorer import store_schema as t
from explorer.block_rows import set_change_of
from explorer.node_feed import NodeFeed, NodeUnavailable
from explorer.reverify import reverify
from explorer.settings import ExplorerSettings
from explorer.store import Store

PROGRESS_EVERY_S = 0.5
"""Least time between two progress writes of one job."""
MAX_RUNNING = 2
"""Jobs that may run at once (each reads the whole range from the node)."""


class JobRefused(Exception):
    """A job that cannot start now."""


class JobRunner:
    """Starts jobs and lets them finish or stop with the server."""

    def __init__(self, store: Store, settings: ExplorerSettings) -> None:
        self.store = store
        self.settings = settings
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, *, first: int, last: int | None, reexecute: bool, auditor: str | None) -> int:
        """Start a job; returns its id."""
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        if len(self._threads) >= MAX_RUNNING:
            raise JobRefused("two re-verifications are running already")
        with self.store.engine.begin() as c:
            head = c.execute(select(t.cursor.c.height)).scalar() or 0
            job_id = c.execute(
                insert(t.verification_jobs).values(
                    started_ms=int(time.time() * 1000),
                    auditor=auditor,
                    from_height=max(0, first),
                    to_height=head if last is None else max(0, last),
                    reexecute=reexecute,
                    state="running",
                )
            ).inserted_primary_key
        assert job_id is not None
        thread = threading.Thread(
            target=self._run, args=(int(job_id[0]), first, last, reexecute), daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return int(job_id[0])

    def _run(self, job_id: int, first: int, last: int | None, reexecute: bool) -> None:
        feed = NodeFeed(self.settings.node_url)
        written = [0.0]

        def progress(height: int, _last: int) -> None:
            now = time.monotonic()
            if now - written[0] >= PROGRESS_EVERY_S:
                written[0] = now
                self._update(job_id, done_height=height)

        def indexed_hash(height: int) -> str | None:
            with self.store.read() as c:
                found = c.execute(
                    select(t.blocks.c.hash).where(t.blocks.c.height == height)
                ).scalar()
            return None if found is None else str(found)

        try:
            report = reverify(
                feed,
                self.settings.genesis(),
                first=first,
                last=last,
                reexecute=reexecute,
                indexed_hash=indexed_hash,
                known_changes=[set_change_of(row) for row in self.store.set_changes()],
                progress=progress,
                should_stop=self._stop.is_set,
            )
            self._update(
                job_id,
                state="passed" if report.ok else "fault",
                done_height=report.verified_to,
                to_height=report.last,
                report=json.dumps(report.to_json(), ensure_ascii=False),
            )
        except NodeUnavailable as exc:
            self._update(job_id, state="unavailable", report=json.dumps({"error": str(exc)}))
        finally:
            feed.close()

    def _update(self, job_id: int, **values: Any) -> None:
        with self.store.engine.begin() as c:
            c.execute(
                update(t.verification_jobs)
                .where(t.verification_jobs.c.id == job_id)
                .values(**values)
            )

    def job(self, job_id: int) -> dict[str, Any] | None:
        """One job's row, with its report parsed."""
        with self.store.read() as c:
            row = c.execute(
                select(t.verification_jobs).where(t.verification_jobs.c.id == job_id)
            ).first()
        if row is None:
            return None
        found = dict(row._mapping)
        found["report"] = None if not found["report"] else json.loads(found["report"])
        return found

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest jobs."""
        with self.store.read() as c:
            rows = c.execute(
                select(t.verification_jobs).order_by(desc(t.verification_jobs.c.id)).limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]

    def wait(self, timeout: float) -> None:
        """Wait for the running jobs (tests and shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def close(self) -> None:
        """Stop the running jobs."""
        self._stop.set()
        self.wait(10)
