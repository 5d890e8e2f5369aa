"""One writer thread that commits what requests hand it in groups: the pattern behind the
registry's intake (nonces and records, :mod:`registry.intake`) and the gateway's access log
(:mod:`registry.authorizations.access`).

A request hands an entry to the :class:`GroupWriter` and waits. The writer thread takes
every entry waiting at that moment (up to ``max_group``, and up to ``max_weight`` by the
entries' weights: a heavy entry closes the group but is never split), commits them with the
domain's ``commit`` function — ONE transaction, one outcome per entry, in order — and only
then answers each waiter. So the flush is paid once per group, not once per request.

Should the group's commit raise one of ``retry_alone`` (a conflicting row written by another
process meanwhile), its entries are committed one by one with ``commit_alone``, each answered
on its own (its outcome, or its own error). Any other error answers every entry of the group
with ``failed(error)``. After :meth:`GroupWriter.stop` (which commits what waits first),
submitting raises ``stopped()`` (a 503); if the thread dies, nobody is left waiting.

The domain's functions are its own: what a group checks and writes, and what an outcome is,
are not this module's business.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError

logger = logging.getLogger(__name__)

E = TypeVar("E")
O = TypeVar("O")  # noqa: E741


class GroupWriter(Generic[E, O]):
    """A writer thread committing groups of entries ``E`` into outcomes ``O`` (see the
    module docstring); started by :meth:`start`, stopped by :meth:`stop`. Entries may be
    submitted from any thread or event loop."""

    def __init__(
        self,
        commit: Callable[[Sequence[E]], Sequence[O]],
        *,
        name: str,
        max_group: int,
        stopped: Callable[[], Exception],
        commit_alone: Callable[[E], O] | None = None,
        failed: Callable[[Exception], Exception] | None = None,
        retry_alone: tuple[type[Exception], ...] = (IntegrityError,),
        weight: Callable[[E], int] | None = None,
        max_weight: int | None = None,
    ) -> None:
        """Commit groups with ``commit`` (one outcome per entry, in order), at most
        ``max_group`` entries (and ``max_weight`` by ``weight``) at once, in a thread named
        ``name``. ``commit_alone`` commits one entry after its group raised one of
        ``retry_alone`` (default: ``commit`` of that entry alone); ``failed`` turns any
        other error into what each waiter gets (default: the error itself); ``stopped``
        makes the error of a submission after :meth:`stop`."""
        if max_group < 1:
            raise ValueError("a group holds at least one entry")
        self._commit_group = commit
        self._commit_alone = commit_alone or (lambda entry: commit([entry])[0])
        self._failed = failed or (lambda error: error)
        self._stopped = stopped
        self._retry_alone = retry_alone
        self._weight = weight
        self._max_weight = max_weight
        self.name = name
        self.max_group = max_group
        self._waiting: list[tuple[E, Future[O]]] = []
        self._condition = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether entries are accepted now."""
        with self._condition:
            return self._thread is not None and not self._stopping

    def start(self) -> None:
        """Start the writer thread."""
        with self._condition:
            if self._thread is not None:
                raise RuntimeError(f"the {self.name} writer runs already")
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is waiting, then stop the writer thread; later submissions raise
        ``stopped()``."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def submit_nowait(self, entry: E) -> Future[O]:
        """Queue ``entry``; the future gets its outcome once its group is committed."""
        future: Future[O] = Future()
        with self._condition:
            if self._stopping or self._thread is None:
                raise self._stopped()
            self._waiting.append((entry, future))
            self._condition.notify()
        return future

    async def submit(self, entry: E) -> O:
        """Queue ``entry`` and wait (without blocking the event loop) for its outcome."""
        return await asyncio.wrap_future(self.submit_nowait(entry))

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            # Never leave a request waiting for a writer that is gone.
            logger.exception("the %s writer stopped", self.name)
            with self._condition:
                self._stopping = True
                waiting, self._waiting = self._waiting, []
            for _, future in waiting:
                if future.set_running_or_notify_cancel():
                    future.set_exception(self._stopped())
            if not isinstance(exc, Exception):
                raise

    def _take(self) -> list[tuple[E, Future[O]]]:
        """The next group (the condition is held)."""
        taken = min(len(self._waiting), self.max_group)
        if self._weight is not None and self._max_weight is not None:
            total = 0
            for index, (entry, _) in enumerate(self._waiting[:taken]):
                total += self._weight(entry)
                if total >= self._max_weight:
                    taken = index + 1
                    break
        group = self._waiting[:taken]
        del self._waiting[:taken]
        return group

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._waiting and not self._stopping:
                    self._condition.wait()
                if not self._waiting:
                    return
                group = self._take()
            self._commit(group)

    def _commit(self, group: list[tuple[E, Future[O]]]) -> None:
        try:
            try:
                outcomes: Sequence[O | _Failure] = self._commit_group([entry for entry, _ in group])
            except self._retry_alone:
                logger.info(
                    "%s: a group of %d met a conflicting row; committing one by one",
                    self.name,
                    len(group),
                )
                outcomes = [self._one(entry) for entry, _ in group]
        except Exception as exc:
            logger.exception("%s: committing %d entries failed", self.name, len(group))
            error = self._failed(exc)
            for _, future in group:
                if future.set_running_or_notify_cancel():
                    future.set_exception(error)
            return
        except BaseException:
            # The thread dies (see _run): nothing more is accepted, and the group it held
            # is answered too.
            with self._condition:
                self._stopping = True
            for _, future in group:
                if future.set_running_or_notify_cancel():
                    future.set_exception(self._stopped())
            raise
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if not future.set_running_or_notify_cancel():
                continue
            if isinstance(outcome, _Failure):
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome)

    def _one(self, entry: E) -> O | _Failure:
        try:
            return self._commit_alone(entry)
        except Exception as exc:
            logger.exception("%s: committing one entry failed", self.name)
            return _Failure(self._failed(exc))


class _Failure:
    """An entry whose commit alone raised (only that entry's waiter gets the error)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


__all__ = ["GroupWriter"]
