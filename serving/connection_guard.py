"""What one HTTP connection, not yet authenticated, may hold of a service's process: the
protocol class uvicorn serves the registry and the explorer with (uvicorn's httptools
protocol, with four bounds added). Each service subclasses it with its own settings
(:meth:`GuardedHttpToolsProtocol.load_limits`) at module level, so that uvicorn's worker
processes import it by name.

Without them a client could open connections and never finish a request's head: uvicorn
keeps such a connection open for ever (its ``timeout_keep_alive`` runs only between
requests, and one byte resets it), and about a thousand of them took every file descriptor
of a process at the usual open-file limit of 1,024. Every request was then refused, and the
registry's database, node connection and batcher's lock file failed with EMFILE.

- **Request head deadline.** A connection whose request line and headers are not complete
  within ``header_timeout_s`` of its opening, or of its previous response being sent, is
  closed (no answer). A request body is not under it: uploads stream for minutes.
- **Request body pace.** A body is under no total deadline, for the same reason, but it must
  keep arriving: a connection is closed (no answer) when no byte of its body arrived for
  ``body_idle_timeout_s`` (nginx's ``client_body_timeout``), or when the body, counted from
  the end of its head, falls behind ``body_min_rate_bytes_s`` after an allowance of
  ``body_idle_timeout_s`` (Apache's ``mod_reqtimeout`` ``body=…,MinRate=…``): at ``t``
  seconds it must hold at least ``(t - body_idle_timeout_s) * body_min_rate_bytes_s``
  bytes. Otherwise a complete head with a large ``Content-Length`` (or a chunked body) and
  a byte now and then would hold the connection and its handler for ever. Only the time the
  server waits for the client counts: while uvicorn does not read the connection (its flow
  control pauses reading while more than 64 KiB of body wait for the application, or a
  pipelined request waits for the one before), and until a request that expects
  ``100 Continue`` has been sent it (the application asks for the body), the clock stands
  still, and the idle deadline starts again when it runs again. A body still arriving after
  its response was sent stays under the bound until it ends; then the next head's deadline
  runs.
- **Connections per client address.** At most ``max_connections_per_client`` open at once
  from one IP address; a further one is closed as soon as it is accepted. Loopback clients
  are exempt: a TLS proxy on the same host brings every client from 127.0.0.1, and the
  registry's own tools and benchmarks connect from there.
- **Connections in all.** At most ``max_connections`` open at once, and never more than the
  process's open-file soft limit less :data:`DESCRIPTOR_RESERVE` (read at each connection,
  so a limit lowered while running is followed); a further one is closed as soon as it is
  accepted, so the process keeps descriptors for its database, logs and node connection.

The counts are those of one process: with ``--workers N`` each API process enforces the
limits on the connections it accepted, so one client may hold up to N times
``max_connections_per_client`` connections on the port, and the port up to N times the
total. The limits are read (the services read their environment) at a process's first
connection."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

DESCRIPTOR_RESERVE = 256
"""File descriptors kept out of reach of connections (at most half the open-file soft limit):
the database's connections and files, logs, the node connection, archive and import files
being written, and the connections a burst brings in before they are refused."""

REPORT_INTERVAL_S = 60.0
"""Least time between two log lines counting refused and timed-out connections (an attack
would otherwise write one line per connection)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """The three bounds (see the module's docstring)."""

    header_timeout_s: float
    """Seconds a connection has to complete a request's head."""
    body_idle_timeout_s: float
    """Seconds a request body may go without a byte arriving, and the allowance before its
    minimum rate applies."""
    body_min_rate_bytes_s: int
    """Least average rate of a request body, in bytes per second, after the allowance (0:
    no minimum)."""
    max_connections_per_client: int
    """Most connections open at once from one non-loopback IP address."""
    max_connections: int
    """Most connections open at once, before the open-file limit's own bound."""


def descriptor_bound(soft_limit: int) -> int:
    """Most connections a process with open-file soft limit ``soft_limit`` may hold: the
    limit less :data:`DESCRIPTOR_RESERVE`, or less half of it when it is that small."""
    return max(1, soft_limit - min(DESCRIPTOR_RESERVE, soft_limit // 2))


def connection_bound(limits: ConnectionLimits) -> int:
    """Most connections this process may hold now: ``limits.max_connections``, or less
    under its current open-file soft limit (an unlimited one sets no bound)."""
    soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY:
        return limits.max_connections
    return min(limits.max_connections, descriptor_bound(soft_limit))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a client's IP address as the socket gives it) is a loopback address,
    IPv4-mapped ones included."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class ConnectionCounts:
    """The connections one process holds, in all and by client address, and what was
    refused or closed since the last log line about it."""

    def __init__(self) -> None:
        self.total = 0
        """Connections admitted and not yet lost."""
        self.by_client: dict[str, int] = {}
        """Of those, the ones from each non-loopback address (only addresses with some)."""
        self._unreported: dict[str, int] = {}
        self._reported_at = float("-inf")
        self._report_pending = False

    def admit(self, host: str | None, limits: ConnectionLimits) -> str | None:
        """Count a new connection from ``host`` (None: no IP address, e.g. a Unix socket,
        counted in all only) and give None, or give why it is refused, counting nothing."""
        if self.total >= connection_bound(limits):
            return "connections in all at their limit"
        client = None if host is None or is_loopback(host) else host
        if client is not None:
            held = self.by_client.get(client, 0)
            if held >= limits.max_connections_per_client:
                return "connections from one address at their limit"
            self.by_client[client] = held + 1
        self.total += 1
        return None

    def release(self, host: str | None) -> None:
        """Forget a connection :meth:`admit` counted."""
        self.total -= 1
        if host is not None and host in self.by_client:
            left = self.by_client[host] - 1
            if left:
                self.by_client[host] = left
            else:
                del self.by_client[host]

    def note(self, what: str) -> None:
        """Count one refused or timed-out connection (``what`` happened to it) for the next
        log line: now if none was written in the last :data:`REPORT_INTERVAL_S`, else when
        that much time has passed (called on the event loop)."""
        self._unreported[what] = self._unreported.get(what, 0) + 1
        if self._report_pending:
            return
        wait = self._reported_at + REPORT_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._report()
        else:
            self._report_pending = True
            asyncio.get_running_loop().call_later(wait, self._report)

    def _report(self) -> None:
        logger.warning(
            "connections closed by the connection guard: %s",
            ", ".join(f"{count} ({reason})" for reason, count in self._unreported.items()),
        )
        self._unreported.clear()
        self._reported_at = time.monotonic()
        self._report_pending = False


BODY_STALLED = "request body stalled"
"""Why a connection whose body had no byte for ``body_idle_timeout_s`` was closed."""
BODY_TOO_SLOW = "request body below its minimum rate"
"""Why a connection whose body fell behind ``body_min_rate_bytes_s`` was closed."""


class BodyPace:
    """How one request body keeps pace with ``body_idle_timeout_s`` and
    ``body_min_rate_bytes_s`` (see the module's docstring): the bytes received and the time
    spent waiting for them, which stands still while the server does not wait for the client.
    Times are the event loop's clock."""

    def __init__(self, limits: ConnectionLimits, now: float, *, waiting: bool) -> None:
        self._idle_s = limits.body_idle_timeout_s
        self._min_rate = limits.body_min_rate_bytes_s
        self.received = 0
        """Body bytes received."""
        self._spent = 0.0
        """Time spent waiting before the current stretch of waiting."""
        self._since: float | None = now if waiting else None
        """When the current stretch of waiting began; None while the clock stands still."""
        self._last = 0.0
        """Time spent waiting when the last byte arrived or the clock last started again."""

    @property
    def waiting(self) -> bool:
        """Whether the clock runs: the server is waiting for the client."""
        return self._since is not None

    def waited(self, now: float) -> float:
        """Time spent waiting for the body up to ``now``."""
        return self._spent + (now - self._since if self._since is not None else 0.0)

    def arrived(self, count: int, now: float) -> None:
        """Count ``count`` bytes of the body, received at ``now``."""
        self.received += count
        self._last = self.waited(now)

    def pause(self, now: float) -> None:
        """The server stopped waiting for the client at ``now``: the clock stands still."""
        if self._since is not None:
            self._spent += now - self._since
            self._since = None

    def resume(self, now: float) -> None:
        """The server waits for the client again from ``now``: the clock runs, and the idle
        deadline starts again."""
        if self._since is None:
            self._since = now
            self._last = self._spent

    def left(self, now: float) -> tuple[float, str]:
        """Waiting time left at ``now`` before the body is late (0 or less: it is), and what
        it would be late for."""
        waited = self.waited(now)
        idle_left = self._last + self._idle_s - waited
        if self._min_rate <= 0:
            return idle_left, BODY_STALLED
        rate_left = self._idle_s + self.received / self._min_rate - waited
        if rate_left < idle_left:
            return rate_left, BODY_TOO_SLOW
        return idle_left, BODY_STALLED


class PacedFlowControl(FlowControl):
    """uvicorn's flow control of one connection, telling its protocol when reading pauses
    and when it may resume: the application calls :meth:`resume_reading` each time it asks
    for more of a body (after sending ``100 Continue`` when the request expects it), and
    uvicorn when a response is complete."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def pause_reading(self) -> None:
        if not self.read_paused:
            super().pause_reading()
            self._protocol.reading_changed()

    def resume_reading(self) -> None:
        super().resume_reading()
        self._protocol.reading_changed()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the request head deadline, the request body's pace
    and the connection limits (see the module's docstring). A service subclasses it with
    :meth:`load_limits` and its own :attr:`counts`, and gives the subclass to uvicorn as its
    ``http`` protocol class."""

    limits: ClassVar[ConnectionLimits | None] = None
    """This process's limits; None until its first connection loads them."""
    counts: ClassVar[ConnectionCounts]
    """This process's connections (each subclass has its own)."""

    _admitted = False
    _head_deadline: asyncio.TimerHandle | None = None
    _body: BodyPace | None = None
    """The pace of the request body being received; None between a body's end and the
    next head's end."""
    _body_deadline: asyncio.TimerHandle | None = None

    @classmethod
    def load_limits(cls) -> ConnectionLimits:
        """The service's limits, from its settings (read once per process)."""
        raise NotImplementedError

    @classmethod
    def process_limits(cls) -> ConnectionLimits:
        """:attr:`limits`, loaded the first time."""
        if cls.limits is None:
            cls.limits = cls.load_limits()
        return cls.limits

    def _host(self) -> str | None:
        return self.client[0] if self.client else None

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        """Admit the connection and start its head deadline, or close it at once when a
        limit is reached."""
        super().connection_made(transport)
        self.flow = PacedFlowControl(transport, self)
        limits = self.process_limits()
        refused = self.counts.admit(self._host(), limits)
        if refused is not None:
            self.counts.note(refused)
            transport.close()
            return
        self._admitted = True
        self._arm_head_deadline(limits)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._cancel_head_deadline()
        self._end_body()
        if self._admitted:
            self._admitted = False
            self.counts.release(self._host())
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; then, if a body is still to come and the server waits for it,
        make sure its deadline runs (not for a request whose body came with its head)."""
        super().data_received(data)
        if self._body is not None and self._body.waiting and self._body_deadline is None:
            self._arm_body_deadline()

    def on_headers_complete(self) -> None:
        """The head is in: its deadline no longer runs, the body's pace is counted from now
        (a WebSocket upgrade has no body)."""
        self._cancel_head_deadline()
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._end_body()
            self._body = BodyPace(
                self.process_limits(), self.loop.time(), waiting=self._waiting_for_client()
            )

    def on_body(self, body: bytes) -> None:
        """Count the body's bytes (those of a request already answered too: they still
        hold the connection)."""
        if self._body is not None:
            self._body.arrived(len(body), self.loop.time())
        super().on_body(body)

    def on_message_complete(self) -> None:
        """End the body's pace, and start the next head's deadline if the request was
        answered before its body was all in (the rest of a body was under the body's pace,
        not the head deadline)."""
        self._end_body()
        answered = self.cycle is not None and self.cycle.response_complete
        super().on_message_complete()
        if answered and not self.transport.is_closing():
            self._arm_head_deadline(self.process_limits())

    def on_response_complete(self) -> None:
        """Start the next head's deadline when the connection stays open, the request's body
        is all in and no request already read is waiting (uvicorn then starts its keep-alive
        timeout)."""
        super().on_response_complete()
        if (
            not self.transport.is_closing()
            and self.timeout_keep_alive_task is not None
            and not self.cycle.more_body
        ):
            self._arm_head_deadline(self.process_limits())

    def handle_websocket_upgrade(self) -> None:
        """A connection upgraded to a WebSocket leaves this protocol, and its count (the
        registry serves no WebSocket: the application closes it at once)."""
        self._end_body()
        if self._admitted:
            self._admitted = False
            self.counts.release(self._host())
        super().handle_websocket_upgrade()

    def _arm_head_deadline(self, limits: ConnectionLimits) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(limits.header_timeout_s, self._head_late)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.counts.note("request head not complete in time")
            self.transport.close()

    def _waiting_for_client(self) -> bool:
        """Whether the server waits for the client to send the body: it reads the
        connection, and has sent ``100 Continue`` if the request expects it."""
        if self.flow.read_paused:
            return False
        return self.cycle is None or not self.cycle.waiting_for_100_continue

    def reading_changed(self) -> None:
        """Flow control paused reading, or may have resumed it: the body's clock stands
        still while the server does not wait for the client, and runs again (its idle
        deadline from now) once it does."""
        body = self._body
        if body is None:
            return
        if self._waiting_for_client():
            body.resume(self.loop.time())
            if self._body_deadline is None:
                self._arm_body_deadline()
        else:
            body.pause(self.loop.time())
            self._cancel_body_deadline()

    def _arm_body_deadline(self) -> None:
        assert self._body is not None
        left, _ = self._body.left(self.loop.time())
        self._body_deadline = self.loop.call_later(max(left, 0.0), self._body_check)

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _end_body(self) -> None:
        self._cancel_body_deadline()
        self._body = None

    def _body_check(self) -> None:
        """The body's deadline as last computed has come: close the connection if the body
        is late, else wait for its deadline as the bytes received since have moved it."""
        self._body_deadline = None
        body = self._body
        if body is None or not body.waiting or self.transport.is_closing():
            return
        left, late_for = body.left(self.loop.time())
        if left <= 0:
            self._end_body()
            self.counts.note(late_for)
            self.transport.close()
            return
        self._arm_body_deadline()
