"""In-process caches of the registry: a bounded least-recently-used map for values that never
change once written (Merkle trees of sealed batches, proof bundles of anchored records), and
a short-lived map for live chain reads (status, issuer), which loads each key once however
many requests ask for it at the same moment.

Neither caches a failure: a read that raised (e.g. the node is unreachable) is tried again by
the next request, so "unavailable" is never remembered, let alone turned into an answer.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A thread-safe map of at most ``capacity`` entries; the least recently used goes first.
    Only for values that never change once known."""

    def __init__(self, capacity: int) -> None:
        """Keep at most ``capacity`` entries."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value of ``key``, or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key``."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class KeptPerOwner(Generic[K, V]):
    """One :class:`LruCache` of ``capacity`` entries per owner object (a database) in this
    process, dropped with its owner."""

    def __init__(self, capacity: int) -> None:
        """Keep at most ``capacity`` entries per owner."""
        self.capacity = capacity
        self._caches: weakref.WeakKeyDictionary[object, LruCache[K, V]] = (
            weakref.WeakKeyDictionary()
        )

    def of(self, owner: object) -> LruCache[K, V]:
        """The cache of ``owner``, made on first use."""
        cache = self._caches.get(owner)
        if cache is None:
            cache = self._caches.setdefault(owner, LruCache(self.capacity))
        return cache


class _Flight(Generic[V]):
    """One load in progress; callers that asked meanwhile share its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None


class TtlCache(Generic[K, V]):
    """A thread-safe map whose entries live ``ttl`` seconds (monotonic clock). Concurrent
    callers of :meth:`get_or_load` for one missing key share a single load, and its failure:
    a failed load is never kept for later callers."""

    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Entries live ``ttl`` seconds; past ``max_entries`` the oldest are dropped."""
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._flights: dict[K, _Flight[V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The value of ``key`` if loaded less than ``ttl`` seconds ago, else ``load()``'s
        (stored only if it returned; an exception reaches the callers of this one load and
        is not kept)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > self._clock():
                return entry[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]
        try:
            value = load()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            with self._lock:
                self._entries[key] = (self._clock() + self.ttl, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return value
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def drop(self, key: K) -> None:
        """Forget ``key`` (after a write that changed it)."""
        with self._lock:
            self._entries.pop(key, None)
