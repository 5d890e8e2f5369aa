"""Whose turn it is to write to an SQLite database: every writer of the registry (record
intake, the access-log writer, the credit check log, the batcher, the anchorer) takes the
turn at its transaction's begin and gives it back when the transaction commits, rolls back
or its connection closes (see :func:`registry.db.create_registry_engine`).

Without it, a writer that finds the database locked sleeps in SQLite's busy handler and
looks again after 1, 2, 5, 10 ... 100 ms: whoever commits most often wins, and a writer that
commits rarely (the batcher, the anchorer) keeps missing the moments the lock is free.
With it, the writers of one process wait in the order they came (a FIFO on a condition),
and the one at the head of each process takes an exclusive ``flock`` on a file beside the
database, looking again every few milliseconds while another process holds it (the kernel
lets go of it when its holder closes it or dies, even by SIGKILL), and gives up after the
busy timeout as SQLite would. SQLite's busy timeout stays as the backstop for writers that
take no turn (another program, a raw connection).

Reentrant by thread: a thread that holds the turn and begins another write transaction
(a nested session, or a coroutine of the same event loop) is let through, and then waits
for SQLite's lock in the busy handler exactly as it did before there were turns — never
on itself."""

from __future__ import annotations

import fcntl
import itertools
import os
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path

from sqlalchemy.exc import OperationalError

WRITE_TURN_SUFFIX = ".write-turn.lock"
"""Beside an SQLite database file, the lock file its processes take turns on."""

FLOCK_POLL_MIN_S = 0.0005
FLOCK_POLL_MAX_S = 0.004
"""How often the waiter of a process looks again at another process's turn: from half a
millisecond, doubling, to 4 ms."""


class WriteTurnTimeout(OperationalError):
    """A writer waited longer than the busy timeout for its turn: the error SQLite's busy
    handler gives up with ("database is locked"), so that it is handled as that is."""

    def __init__(self, timeout_s: float) -> None:
        """No turn came within ``timeout_s``."""
        super().__init__(
            "BEGIN IMMEDIATE",
            None,
            sqlite3.OperationalError(f"database is locked (no write turn within {timeout_s:g} s)"),
        )


class WriteTurn:
    """The turn of the writers of one SQLite database, for the threads of this process and
    (with ``lock_path``) across the processes that share the file."""

    def __init__(self, lock_path: Path | None, timeout_s: float) -> None:
        """Take turns on the lock file ``lock_path`` (created, mode 0600, on first use;
        None: within this process only); give up waiting after ``timeout_s``."""
        self.lock_path = lock_path
        self.timeout_s = timeout_s
        self._condition = threading.Condition()
        self._tickets = itertools.count()
        self._queue: deque[int] = deque()
        self._depth = 0
        """Transactions holding the turn: 0 (free), or 1 and more of :attr:`_owner`'s."""
        self._owner: int | None = None
        """The thread that took the turn."""
        self._descriptor: int | None = None
        """The lock file, open and locked while the turn is this process's."""

    @property
    def waiting(self) -> int:
        """Writers of this process waiting for the turn."""
        with self._condition:
            return len(self._queue)

    @property
    def held(self) -> bool:
        """Whether a transaction of this process holds the turn."""
        with self._condition:
            return self._depth > 0

    def take(self) -> None:
        """Wait for the turn, first in this process (in the order of arrival), then across
        processes. Raises :class:`WriteTurnTimeout` after ``timeout_s`` in this process."""
        me = threading.get_ident()
        with self._condition:
            if self._depth and self._owner == me:
                self._depth += 1
                return
            ticket = next(self._tickets)
            self._queue.append(ticket)
            deadline = time.monotonic() + self.timeout_s
            while self._depth or self._queue[0] != ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._queue.remove(ticket)
                    self._condition.notify_all()
                    raise WriteTurnTimeout(self.timeout_s)
                self._condition.wait(remaining)
            self._queue.popleft()
            self._depth = 1
            self._owner = me
        try:
            self._lock_file(deadline)
        except BaseException:
            self.give_back()
            raise

    def give_back(self) -> None:
        """Give back one :meth:`take` (the turn passes on when the last is given back)."""
        with self._condition:
            if not self._depth:
                return
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            self._unlock_file()
            self._condition.notify_all()

    def _lock_file(self, deadline: float) -> None:
        if self.lock_path is None:
            return
        # Opened for each turn (a few microseconds, against a commit's WAL sync): a process
        # forked with it open would share the lock, and nothing is left open between turns.
        descriptor = os.open(self.lock_path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            self._flock_by(descriptor, deadline)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor

    def _flock_by(self, descriptor: int, deadline: float) -> None:
        """Lock ``descriptor`` before ``deadline`` or raise WriteTurnTimeout. A blocking
        ``flock`` cannot time out, and another process's transaction may last minutes (an
        import of a large file is one transaction), so the one waiter of this process looks
        again every millisecond or few (at most :data:`FLOCK_POLL_MAX_S`): a hand-over within
        milliseconds, where SQLite's busy handler sleeps up to 100 ms, and a thread that
        gives up after the busy timeout instead of hanging with its request."""
        pause = FLOCK_POLL_MIN_S
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WriteTurnTimeout(self.timeout_s)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, FLOCK_POLL_MAX_S)

    def _unlock_file(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)  # closing the file lets go of its lock


def write_turn_path(database: Path) -> Path:
    """The lock file beside the SQLite database file ``database``."""
    return database.with_name(database.name + WRITE_TURN_SUFFIX)


__all__ = ["WRITE_TURN_SUFFIX", "WriteTurn", "WriteTurnTimeout", "write_turn_path"]
