"""Per-client token buckets for the JSON-RPC methods that cost the node real work.

Each client address has a bucket of ``burst`` tokens that refills at ``rate`` tokens per
second; an expensive request takes one token, and a request that finds the bucket empty is
refused with the time after which a token will be there. Time is a parameter (``now``), so the
arithmetic is tested without sleeping.

The table of buckets is bounded: when it holds ``max_clients`` buckets, the ones that have
refilled completely (clients that have been quiet long enough to be indistinguishable from new
ones) are dropped first; if none has, the oldest-touched is dropped. So an attacker cycling
through many source addresses costs memory in proportion to ``max_clients`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TRACKED_CLIENTS = 10_000
"""Most client addresses whose buckets are kept at once."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client address."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        exempt: frozenset[str] = frozenset(),
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        """``rate_per_s`` tokens per second up to ``burst`` per client; clients in ``exempt``
        are never limited."""
        if rate_per_s <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate_per_s > 0, burst >= 1 and max_clients >= 1 are required")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.exempt = exempt
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, client: str, now: float) -> float | None:
        """Take one token for ``client`` at time ``now`` (seconds, monotonic). Returns None
        when the request may go ahead, or the seconds until a token will be available."""
        if client in self.exempt:
            return None
        bucket = self._buckets.get(client)
        if bucket is None:
            self._make_room(now)
            bucket = _Bucket(float(self.burst), now)
            self._buckets[client] = bucket
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate_per_s

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_clients:
            return
        full_after = self.burst / self.rate_per_s
        idle = [
            client for client, bucket in self._buckets.items() if now - bucket.updated >= full_after
        ]
        for client in idle:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:
            oldest = min(self._buckets, key=lambda client: self._buckets[client].updated)
            del self._buckets[oldest]

    def __len__(self) -> int:
        """Number of clients tracked now."""
        return len(self._buckets)
