"""Derived read index of the node: which blocks hold logs of which contracts and topics.

They live in their own LMDB environment next to the block store (``<data_dir>/index``) and are
derived data: everything in them can be rebuilt from the committed blocks and receipts. The
ledger writes a block's entries right after the block store commits it and, on start, indexes
every committed block above :meth:`LogIndex.indexed_height`, so a crash between the two writes
loses nothing.

Layout (heights are 8-byte big-endian so that key order is height order)::

    log_heights   height                      -> block hash (32 bytes); only blocks with logs
    log_address   address (20) || height      -> b""
    log_topic     topic (32) || height        -> b""   (a topic at any position)
    meta          b"indexed"                  -> height of the last indexed block
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import lmdb

from chain.primitives import Address, Hash32
from chain.types import Block, Receipt

_HEIGHT_SIZE = 8
_INDEXED = b"indexed"
_DATABASES = (b"log_heights", b"log_address", b"log_topic", b"meta")
_DEFAULT_MAP_SIZE = 4 << 30


def _height_key(height: int) -> bytes:
    return height.to_bytes(_HEIGHT_SIZE, "big")


class LogIndex:
    """Index of the blocks holding logs, by emitting contract and by topic."""

    def __init__(self, env: lmdb.Environment) -> None:
        """Wrap an opened environment; use :meth:`open`."""
        self._env = env
        self._db = {name: env.open_db(name) for name in _DATABASES}

    @classmethod
    def open(cls, path: Path, *, map_size: int = _DEFAULT_MAP_SIZE) -> LogIndex:
        """Open (creating if needed) the index environment in directory ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        # Derived data: a lost tail is rebuilt from the block store, so no fsync per block.
        env = lmdb.open(
            str(path),
            map_size=map_size,
            subdir=True,
            max_dbs=len(_DATABASES),
            sync=False,
            metasync=False,
            lock=True,
        )
        return cls(env)

    def close(self) -> None:
        """Flush and close the environment."""
        self._env.sync(True)
        self._env.close()

    def indexed_height(self) -> int | None:
        """Height of the last indexed block, or ``None`` when nothing is indexed."""
        with self._env.begin() as txn:
            raw = txn.get(_INDEXED, db=self._db[b"meta"])
        return None if raw is None else int.from_bytes(raw, "big")

    def add_block(self, block: Block, receipts: tuple[Receipt, ...]) -> None:
        """Index one committed block.

        Blocks must be added in height order; adding an already indexed height is a no-op."""
        height = block.header.height
        key = _height_key(height)
        with self._env.begin(write=True) as txn:
            raw = txn.get(_INDEXED, db=self._db[b"meta"])
            if raw is not None and int.from_bytes(raw, "big") >= height:
                return
            addresses: set[bytes] = set()
            topics: set[bytes] = set()
            for receipt in receipts:
                for log in receipt.logs:
                    addresses.add(log.address)
                    topics.update(log.topics)
            if addresses:
                txn.put(key, block.hash, db=self._db[b"log_heights"])
            for address in addresses:
                txn.put(address + key, b"", db=self._db[b"log_address"])
            for topic in topics:
                txn.put(topic + key, b"", db=self._db[b"log_topic"])
            txn.put(_INDEXED, key, db=self._db[b"meta"])

    def heights_with_logs(self, first: int, last: int) -> list[int]:
        """Heights in ``first..last`` whose blocks emitted at least one log, ascending."""
        return self._scan(b"log_heights", b"", first, last)

    def heights_for_addresses(
        self, addresses: Iterable[Address], first: int, last: int
    ) -> set[int]:
        """Heights in ``first..last`` where any of ``addresses`` emitted a log."""
        found: set[int] = set()
        for address in addresses:
            found.update(self._scan(b"log_address", address, first, last))
        return found

    def heights_for_topics(self, topics: Iterable[Hash32], first: int, last: int) -> set[int]:
        """Heights in ``first..last`` where a log carried any of ``topics`` (any position)."""
        found: set[int] = set()
        for topic in topics:
            found.update(self._scan(b"log_topic", topic, first, last))
        return found

    def _scan(self, db_name: bytes, prefix: bytes, first: int, last: int) -> list[int]:
        if first > last:
            return []
        heights: list[int] = []
        end = prefix + _height_key(last)
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._db[db_name])
            if not cursor.set_range(prefix + _height_key(first)):
                return heights
            for key in cursor.iternext(keys=True, values=False):
                if key > end:
                    break
                heights.append(int.from_bytes(key[len(prefix) :], "big"))
        return heights
