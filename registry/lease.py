"""Which registry process runs the background workers (batcher, anchorer, nonce purge).

Several API processes may serve one database (``registry start --workers N``), but sealing
must be done by one process at a time: two sealers could take the same accepted records.
The process that holds the *workers lease* runs them; the others only serve requests and
try again every few seconds, so when the holder dies (even by SIGKILL) another one takes
over. The lease is a lock the operating system or the database server drops by itself
when its holder dies, never a row with a timeout that a paused holder could outlive:

- SQLite: an exclusive ``flock`` on ``<database file>.workers.lock`` (one machine, as the
  database file is); the file holds the holder's process id;
- PostgreSQL: a session advisory lock held on a connection of its own (any number of
  machines).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text

LEASE_NAME = "lianxin-registry-workers"
"""What the lease is called (the advisory lock key is derived from it)."""


class WorkersLease(Protocol):
    """A lease that at most one process holds at a time."""

    def try_acquire(self) -> bool:
        """Take the lease if it is free (or already ours); never waits."""
        ...

    def release(self) -> None:
        """Give the lease back (also done by the OS or the server if the process dies)."""
        ...


class FileLease:
    """An exclusive ``flock`` on a file next to the SQLite database."""

    def __init__(self, path: Path) -> None:
        """Lock ``path`` (created if missing)."""
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """See :class:`WorkersLease`."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # Tell operators who holds it: `cat registry.db.workers.lock`.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """See :class:`WorkersLease`."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def advisory_key(name: str = LEASE_NAME) -> int:
    """A signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class AdvisoryLease:
    """A PostgreSQL session advisory lock on a connection kept for it."""

    def __init__(self, engine: Engine, key: int | None = None) -> None:
        """Lock ``key`` (default: :func:`advisory_key`) on a connection of ``engine``."""
        self.engine = engine
        self.key = advisory_key() if key is None else key
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        """See :class:`WorkersLease`."""
        if self._connection is not None:
            return True
        connection = self.engine.connect()
        try:
            held = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
                ).scalar()
            )
            connection.commit()
        except Exception:
            connection.close()
            raise
        if not held:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        """See :class:`WorkersLease`."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                connection.commit()
            finally:
                connection.close()


def workers_lease(engine: Engine) -> WorkersLease:
    """The lease for the database of ``engine``."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("an in-memory SQLite database is private to one process")
        return FileLease(Path(url.database + ".workers.lock"))
    if url.get_backend_name() == "postgresql":
        return AdvisoryLease(engine)
    raise ValueError(f"no workers lease for {url.get_backend_name()} databases")
