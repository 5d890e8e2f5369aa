"""Where the mempool keeps its transactions across a restart: a small LMDB environment of its
own (``<data_dir>/mempool``), apart from the block store so that its writes never share a
transaction with a block commit.

Each pooled transaction is one record, keyed by an 8-byte arrival sequence number (so a
scan returns arrival order) and holding the transaction's canonical encoding. Writes are not
fsynced one by one (admission would wait on the disk): a record reaches the operating
system with its write transaction, so it survives the node process being killed, and
:meth:`MempoolStore.close` syncs it to disk; only a power loss can take the last ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lmdb

from chain.errors import StorageError
from chain.limits import MAX_MEMPOOL_BYTES

_MAP_SIZE = 2 * MAX_MEMPOOL_BYTES
"""Room for a full pool twice over (LMDB reuses freed pages, but not at once)."""


class MempoolStore:
    """The persisted pool: append, remove, and read back in arrival order."""

    def __init__(self, env: lmdb.Environment) -> None:
        """Wrap an opened environment; prefer :meth:`open`."""
        self._env = env
        with env.begin() as txn:
            cursor = txn.cursor()
            last = int.from_bytes(cursor.key(), "big") if cursor.last() else 0
        self._next = last + 1

    @classmethod
    def open(cls, path: Path) -> MempoolStore:
        """Open (creating if needed) the store in directory ``path``. Raises StorageError."""
        try:
            path.mkdir(parents=True, exist_ok=True)
            env = lmdb.open(
                str(path),
                map_size=_MAP_SIZE,
                subdir=True,
                max_dbs=0,
                sync=False,
                metasync=False,
                map_async=False,
                writemap=False,
            )
        except (OSError, lmdb.Error) as exc:
            raise StorageError(f"cannot open the mempool store in {path}: {exc}") from exc
        return cls(env)

    def append(self, raw: bytes) -> int:
        """Store one transaction's encoding; returns its key (pass it to :meth:`remove`)."""
        key = self._next
        self._next += 1
        with self._env.begin(write=True) as txn:
            txn.put(key.to_bytes(8, "big"), raw)
        return key

    def remove(self, keys: list[int]) -> None:
        """Forget the transactions stored under ``keys`` (one write transaction)."""
        if not keys:
            return
        with self._env.begin(write=True) as txn:
            for key in keys:
                txn.delete(key.to_bytes(8, "big"))

    def records(self) -> Iterator[tuple[int, bytes]]:
        """Every stored (key, encoding), in arrival order."""
        with self._env.begin() as txn:
            for key, value in txn.cursor():
                yield int.from_bytes(key, "big"), bytes(value)

    def close(self) -> None:
        """Sync to disk and close."""
        self._env.sync(True)
        self._env.close()
