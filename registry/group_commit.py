"""One writer thread that commits what requests hand it in groups: the pattern behind the
registry's intake (nonces and records, :mod:`registry.intake`) and the gateway's access log
(:mod:`registry.authorizations.access`).

A request hands an entry to the :class:`GroupWriter` and waits. The writer thread takes
every entry waiting at that moment (up to ``max_group``, and up to ``max_weight`` by the
entries' weights: a heavy entry closes the group but is never split), commits them with the
domain's ``commit`` function — ONE transaction, one outcome per entry, in order — and only
then answers each waiter. So the flush is paid once per group, not once per request. The
waiters of one event loop are answered together, by one callback handed to that loop per
group (not a thread-safe future and a wake-up of the loop for each).

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
import contextlib
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
        self._waiting: list[tuple[E, _Waiter[O]]] = []
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
        self._queue(entry, future)
        return future

    async def submit(self, entry: E) -> O:
        """Queue ``entry`` and wait (without blocking the event loop) for its outcome."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[O] = loop.create_future()
        self._queue(entry, _LoopWaiter(loop, future))
        return await future

    def _queue(self, entry: E, waiter: _Waiter[O]) -> None:
        with self._condition:
            if self._stopping or self._thread is None:
                raise self._stopped()
            self._waiting.append((entry, waiter))
            self._condition.notify()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            # Never leave a request waiting for a writer that is gone.
            logger.exception("the %s writer stopped", self.name)
            with self._condition:
                self._stopping = True
                waiting, self._waiting = self._waiting, []
            _answer([waiter for _, waiter in waiting], [_Failure(self._stopped()) for _ in waiting])
            if not isinstance(exc, Exception):
                raise

    def _take(self) -> list[tuple[E, _Waiter[O]]]:
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

    def _commit(self, group: list[tuple[E, _Waiter[O]]]) -> None:
        waiters = [waiter for _, waiter in group]
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
            _answer(waiters, [_Failure(error) for _ in waiters])
            return
        except BaseException:
            # The thread dies (see _run): nothing more is accepted, and the group it held
            # is answered too.
            with self._condition:
                self._stopping = True
            _answer(waiters, [_Failure(self._stopped()) for _ in waiters])
            raise
        _answer(waiters, list(outcomes))

    def _one(self, entry: E) -> O | _Failure:
        try:
            return self._commit_alone(entry)
        except Exception as exc:
            logger.exception("%s: committing one entry failed", self.name)
            return _Failure(self._failed(exc))


class _Failure:
    """An entry whose commit alone raised (only that entry's waiter gets the error)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _LoopWaiter(Generic[O]):
    """A waiter in an event loop: its future is answered in that loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[O]) -> None:
        self.loop = loop
        self.future = future


_Waiter = Future[O] | _LoopWaiter[O]
"""Who waits for an entry's outcome: a thread (a future of its own), or a coroutine."""


def _answer(waiters: Sequence[_Waiter[O]], outcomes: Sequence[O | _Failure]) -> None:
    """Give each waiter its outcome (or error): a thread's future at once, the waiters of
    each event loop in one callback on that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[O], O | _Failure]]] = {}
    for waiter, outcome in zip(waiters, outcomes, strict=True):
        if isinstance(waiter, _LoopWaiter):
            by_loop.setdefault(waiter.loop, []).append((waiter.future, outcome))
        elif waiter.set_running_or_notify_cancel():
            if isinstance(outcome, _Failure):
                waiter.set_exception(outcome.error)
            else:
                waiter.set_result(outcome)
    for loop, answers in by_loop.items():
        # A closed loop (RuntimeError) has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[tuple[asyncio.Future[O], O | _Failure]]) -> None:
    """Answer waiting coroutines, in their event loop (a cancelled one is skipped)."""
    for future, outcome in answers:
        if future.done():
            continue
        if isinstance(outcome, _Failure):
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome)


__all__ = ["GroupWriter"]
