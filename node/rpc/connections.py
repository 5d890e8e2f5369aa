"""What a connection to the RPC server may hold before it has asked anything: bounds on
open connections, per client address and in all, enforced as each is accepted.

A network attacker could hold the node's file descriptors with half-open HTTP connections
(each sending a request line and never finishing its headers): aiohttp closes such a
connection only at its keep-alive deadline, 75 s by default, so a thousand new connections
every minute kept the RPC answering no one, under the usual 1,024 open-file limit, and with
it everything else in the process that needs a descriptor (p2p connections from the other
validators, the ledger's files). So:

- a connection whose first request head (up to the blank line that ends the headers) has
  not arrived within ``rpc_head_timeout_s`` of its opening is closed, however the bytes
  trickle in; later requests on a kept-alive connection are under aiohttp's keep-alive
  deadline, and under the bound per client below;
- at most ``rpc_max_connections_per_client`` connections are open from one client address
  (an IPv6 /64 counts as one, as for the rate limit; the rate-limit-exempt addresses, the
  node's own host, are not counted); beyond it a new one is closed at once;
- at most ``rpc_max_connections`` are open in all, never more than the process's open-file
  limit less :data:`DESCRIPTOR_RESERVE`; beyond it a new one is closed at once, so the
  process never runs out of descriptors on their account.

:class:`AdmittedProtocol` wraps the protocol aiohttp's server makes for each connection
(``web.Server`` is a protocol factory) and only forwards the connection to it once admitted.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from node.rpc.rate_limit import client_key

__all__ = [
    "DESCRIPTOR_RESERVE",
    "AdmittedProtocol",
    "ConnectionLimits",
    "admitting",
    "descriptor_bound",
]

DESCRIPTOR_RESERVE = 256
"""Descriptors kept for everything but RPC connections: the ledger's and log files, the p2p
listener and a connection to each peer, the WebSocket subscriptions' tasks, a backup."""


def descriptor_bound() -> int:
    """The most RPC connections the process's open-file limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(1, soft - DESCRIPTOR_RESERVE)


@dataclass
class ConnectionLimits:
    """The connections open now, by client key, against the bounds."""

    max_connections: int
    """Most connections open in all (already within :func:`descriptor_bound`)."""
    max_per_client: int
    """Most connections open from one client key, the exempt ones aside."""
    exempt: frozenset[str]
    """Client keys not counted per client (the node's own host)."""
    open_total: int = 0
    """Connections open now."""
    by_client: Counter[str] = field(default_factory=Counter)
    """Connections open now per counted client key."""
    refused: Counter[str] = field(default_factory=Counter)
    """Connections closed by these bounds, by reason (``total``, ``per_client`` on arrival;
    ``head_timeout`` later)."""

    def admit(self, key: str | None) -> bool:
        """Count a new connection from ``key`` (None: an address of no known kind) if the
        bounds allow it."""
        if self.open_total >= self.max_connections:
            self.refused["total"] += 1
            return False
        if key is not None and key not in self.exempt:
            if self.by_client[key] >= self.max_per_client:
                self.refused["per_client"] += 1
                return False
            self.by_client[key] += 1
        self.open_total += 1
        return True

    def release(self, key: str | None) -> None:
        """Forget a connection :meth:`admit` counted."""
        self.open_total -= 1
        if key is not None and key not in self.exempt:
            self.by_client[key] -= 1
            if self.by_client[key] <= 0:
                del self.by_client[key]


def _client_of(transport: asyncio.BaseTransport) -> str | None:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return client_key(peer[0])
    return None


_HEAD_END = b"\r\n\r\n"
"""The blank line that ends an HTTP/1.1 request head."""


class AdmittedProtocol(asyncio.Protocol):
    """The protocol of one accepted connection: closed at once if the bounds refuse it,
    or once ``head_timeout_s`` passed without a whole first request head; everything is
    forwarded to ``inner`` (aiohttp's request handler)."""

    def __init__(
        self, inner: asyncio.Protocol, limits: ConnectionLimits, head_timeout_s: float
    ) -> None:
        self._inner = inner
        self._limits = limits
        self._head_timeout_s = head_timeout_s
        self._admitted = False
        self._key: str | None = None
        self._transport: asyncio.Transport | None = None
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # a TCP server's transports
        self._key = _client_of(stream)
        if not self._limits.admit(self._key):
            stream.abort()
            return
        self._admitted = True
        self._transport = stream
        self._head_deadline = asyncio.get_running_loop().call_later(
            self._head_timeout_s, self._head_overdue
        )
        self._inner.connection_made(transport)

    def _head_overdue(self) -> None:
        self._head_deadline = None
        if self._admitted and self._transport is not None:
            self._limits.refused["head_timeout"] += 1
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        if not self._admitted:
            return
        self._admitted = False
        self._transport = None
        self._limits.release(self._key)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._head_deadline is not None:
            seen = self._head_tail + data
            if _HEAD_END in seen:
                self._head_deadline.cancel()
                self._head_deadline = None
                self._head_tail = b""
            else:
                self._head_tail = seen[-(len(_HEAD_END) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()


def admitting(
    factory: Callable[[], Any], limits: ConnectionLimits, head_timeout_s: float
) -> Callable[[], AdmittedProtocol]:
    """A protocol factory for ``loop.create_server``: ``factory``'s protocols (aiohttp's
    ``web.Server``), each behind :class:`AdmittedProtocol`."""

    def make() -> AdmittedProtocol:
        return AdmittedProtocol(factory(), limits, head_timeout_s)

    return make
