"""What a connection to the RPC server may hold before it has asked anything, or while it
asks: bounds on open connections, per client address and in all, enforced as each is
accepted, on the time its first request head takes, and on the pace of a request body.

A network attacker could hold the node's file descriptors with half-open HTTP connections
(each sending a request line and never finishing its headers): aiohttp closes such a
connection only at its keep-alive deadline (an hour by default for an ``AppRunner``), so a
thousand new connections every minute kept the RPC answering no one, under the usual 1,024
open-file limit, and with it everything else in the process that needs a descriptor (p2p
connections from the other validators, the ledger's files). So:

- a connection whose first request head (up to the blank line that ends the headers) has
  not arrived within ``rpc_head_timeout_s`` of its opening is closed, however the bytes
  trickle in; a later request's head on a kept-alive connection must arrive within
  ``rpc_keepalive_timeout_s`` of the previous answer (aiohttp's keep-alive deadline, given
  to the server: bytes arriving do not reset it), under the bound per client below;
- at most ``rpc_max_connections_per_client`` connections are open from one client address
  (an IPv6 /64 counts as one, as for the rate limit; the rate-limit-exempt addresses, the
  node's own host, are not counted); beyond it a new one is closed at once;
- at most ``rpc_max_connections`` are open in all, never more than the process's open-file
  limit less :data:`DESCRIPTOR_RESERVE`; beyond it a new one is closed at once, so the
  process never runs out of descriptors on their account;
- a request body must keep arriving, or the connection is closed (no answer): a complete
  head with a large ``Content-Length`` (or a chunked body) followed by a byte now and then
  would otherwise hold the connection, and a handler awaiting the body, for ever. No byte
  for ``rpc_body_idle_timeout_s`` (as nginx's ``client_body_timeout``) is too slow, and so
  is falling behind ``rpc_body_min_rate_bytes_s`` once that allowance has passed (as
  Apache's ``mod_reqtimeout`` ``MinRate``): ``t`` seconds after reading began the body must
  hold ``(t - rpc_body_idle_timeout_s) * rpc_body_min_rate_bytes_s`` bytes.

:class:`AdmittedProtocol` wraps the protocol aiohttp's server makes for each connection
(``web.Server`` is a protocol factory) and only forwards the connection to it once admitted.

The body's pace is kept by :func:`read_body`, which the JSON-RPC handler reads its body with,
rather than by that wrapper, although the wrapper sees every byte: it would have to find
where each body ends (``Content-Length``, chunked framing, pipelined requests) as aiohttp's
parser does, and any disagreement would either close a kept-alive connection waiting between
two requests or leave a body unbounded; and it could not tell the time aiohttp waits for the
client from the time aiohttp has stopped reading because the handler has not taken what came
(flow control pauses reading at 128 KiB), which must not count. :func:`read_body` waits only
when aiohttp has nothing more of the body to give, that is while it reads the connection and
nothing comes: exactly the time to count. Between two requests no body is read, so the
keep-alive deadline applies and the body's does not. A body no handler reads (a request
refused for its host or origin, or its size, or sent to no route) is read and dropped by
aiohttp for at most its ``lingering_time`` (10 s), then the connection is closed.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web

from node.rpc.rate_limit import client_key

__all__ = [
    "DESCRIPTOR_RESERVE",
    "AdmittedProtocol",
    "BodyPace",
    "BodyTooLarge",
    "BodyTooSlow",
    "ConnectionLimits",
    "admitting",
    "descriptor_bound",
    "read_body",
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
    ``head_timeout``, ``body_stalled`` and ``body_too_slow`` later)."""

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


@dataclass(frozen=True)
class BodyPace:
    """The pace a request body must keep (see the module's docstring)."""

    idle_timeout_s: float
    """Most seconds without a byte of the body, and the allowance before the minimum rate."""
    min_rate_bytes_s: int
    """Least average rate after the allowance, bytes per second (0: none)."""

    def deadline(self, started: float, last_byte: float, received: int) -> tuple[float, str]:
        """When a body whose reading began at ``started``, whose last byte came at
        ``last_byte`` and which holds ``received`` bytes is late if no more comes, and what
        for (``body_stalled`` or ``body_too_slow``)."""
        stalled = last_byte + self.idle_timeout_s
        if self.min_rate_bytes_s <= 0:
            return stalled, "body_stalled"
        too_slow = started + self.idle_timeout_s + received / self.min_rate_bytes_s
        if too_slow < stalled:
            return too_slow, "body_too_slow"
        return stalled, "body_stalled"


class BodyTooLarge(Exception):
    """A request body longer than its limit."""


class BodyTooSlow(Exception):
    """A request body that did not keep its pace; its connection is closed."""


async def read_body(
    request: web.Request, pace: BodyPace, max_bytes: int, limits: ConnectionLimits
) -> bytes:
    """The body of ``request``, read as it comes while it keeps ``pace``: raises
    :class:`BodyTooLarge` past ``max_bytes``, and :class:`BodyTooSlow` when it is late,
    having counted that in ``limits.refused`` and closed the connection (no answer)."""
    content = request.content
    loop = asyncio.get_running_loop()
    started = last_byte = loop.time()
    body = bytearray()
    while True:
        chunk = content.read_nowait()  # what has come already, with no wait and no timer
        if not chunk:
            if content.at_eof():
                return bytes(body)
            deadline, late_for = pace.deadline(started, last_byte, len(body))
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await content.readany()
            except TimeoutError:
                # what came as the deadline passed (a loop that was busy reads before timers)
                chunk = content.read_nowait()
                if not chunk and not content.at_eof():
                    limits.refused[late_for] += 1
                    if request.transport is not None:
                        request.transport.abort()
                    raise BodyTooSlow(late_for) from None
            if not chunk:
                return bytes(body)
            last_byte = loop.time()
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(f"request body larger than {max_bytes} bytes")
