"""Per-client token buckets for the JSON-RPC methods that cost the node real work.

Each client address has a bucket of ``burst`` tokens that refills at ``rate`` tokens per
second; an expensive request takes one token, and a request that finds the bucket empty is
refused with the time after which a token will be there. Time is a parameter (``now``), so the
arithmetic is tested without sleeping.

The table of buckets is bounded: when it holds ``max_clients`` buckets, the least recently
used one is dropped (in constant time), so an attacker cycling through many source addresses
costs memory in proportion to ``max_clients`` only. A dropped client starts again with a full
bucket, which is what a new address gets anyway. :func:`client_key` groups IPv6 addresses by
their /64, the block one host is normally given, so that a host cannot mint fresh buckets
from its own prefix.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

MAX_TRACKED_CLIENTS = 10_000
"""Most client addresses whose buckets are kept at once."""


@functools.lru_cache(maxsize=MAX_TRACKED_CLIENTS)
def client_key(remote: str) -> str:
    """The key a client address is limited under: an IPv4 address itself, an IPv6 address's
    /64 network (an IPv4-mapped IPv6 address as its IPv4 address); anything else as is.
    Asked for every request, so the keys of the last MAX_TRACKED_CLIENTS addresses are kept
    (parsing an address costs about as much as answering eth_blockNumber)."""
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address.is_loopback:
            return str(address)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, client: str, now: float) -> float | None:
        """Take one token for ``client`` at time ``now`` (seconds, monotonic). Returns None
        when the request may go ahead, or the seconds until a token will be available."""
        if client in self.exempt:
            return None
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
            bucket = _Bucket(float(self.burst), now)
            self._buckets[client] = bucket
        else:
            self._buckets.move_to_end(client)
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate_per_s

    def __len__(self) -> int:
        """Number of clients tracked now."""
        return len(self._buckets)
