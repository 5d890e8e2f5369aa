"""One authenticated, encrypted connection per peer, and the frames that flow over them.

Connections: the node with the lower public key dials, the other accepts, so each pair has
one connection; a dial that fails is retried with exponential backoff. An accepted
connection from a peer that already has one replaces it (the peer restarted and the old
socket is dead). Every connection is authenticated and keyed (:mod:`node.p2p.handshake`)
before a frame of any other kind is read; from then on every frame is sealed
(:mod:`node.p2p.channel`).

Who may connect: the keys of the on-chain validator set, which the node hands over with
:meth:`Network.follow_validator_set` after every commit, plus the peers configured as
observers. A key that leaves the set is refused at the handshake and its open connection is
closed. Until the node first hands over a set, the configured peers are allowed.

Before authentication a stranger holds little: handshake frames are at most
:data:`chain.limits.MAX_PREAUTH_FRAME_BYTES`, a handshake must finish within
:attr:`TransportSettings.handshake_timeout_s`, and at most
:attr:`TransportSettings.max_pending_handshakes` accepted connections (and
:attr:`TransportSettings.max_pending_per_address` per remote address) may be handshaking at
once; more are closed at once.

Liveness: each side sends a PING every :attr:`TransportSettings.ping_interval_s` (answered
by a PONG); a connection on which nothing arrived for
:attr:`TransportSettings.peer_timeout_s`, or whose writes have been blocked for
:attr:`TransportSettings.write_timeout_s`, is closed (a silent link or a stalled peer), and
the dialling side reconnects. A heartbeat that wakes long after the previous one (the node
itself was stopped, off the CPU, or blocked) does not judge: a resumed event loop runs its
overdue timers before it reads a socket, so the frames that arrived meanwhile are still
unread; the next heartbeat judges.

Sending never blocks the caller: each connection has a bounded queue drained by its own
writer task; when the queue is full (a stalled peer) the frame is dropped and counted, since
consensus re-sends what matters.

Everything refused or closed is counted in :attr:`Network.counters` under its reason:
``wrong_chain``, ``unknown_key``, ``bad_signature``, ``bad_frame``, ``oversize_frame``,
``encryption_mismatch``, ``frame_auth_failed``, ``handshake_timeout``, ``handshake_busy``,
``peer_timeout``, ``write_timeout``, ``peer_removed``, ``dropped_frames``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chain.crypto import PrivateKey, PublicKey
from chain.crypto.channel import native_available
from chain.crypto.native import NativeUnavailable
from node.config import NodeConfig, PeerConfig

from .channel import Channel
from .frames import FrameError, FrameKind
from .handshake import HandshakeError, perform_handshake

log = logging.getLogger(__name__)

SEND_QUEUE_FRAMES = 1024
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0
MAX_PING_BYTES = 8
HELD_UP_TICKS = 2
"""A heartbeat that wakes more than this many ping intervals after the previous one finds
its own node held up, and leaves judging the link to the next."""

FrameHandler = Callable[[bytes, FrameKind, bytes], None]
"""Called on the event loop with (peer public key, kind, body) for every received frame."""


@dataclass(frozen=True)
class TransportSettings:
    """Timeouts, caps and the encryption switch of the transport (see the module docstring
    for what each guards against)."""

    encrypted: bool = True
    """Seal every frame after the handshake. Off only for benchmarks and tests."""
    handshake_timeout_s: float = 5.0
    """A connection not authenticated by then is closed."""
    max_pending_handshakes: int = 64
    """Most accepted connections handshaking at once."""
    max_pending_per_address: int = 8
    """Most accepted connections handshaking at once from one remote address."""
    ping_interval_s: float = 1.0
    """Period of heartbeats on every connection."""
    peer_timeout_s: float = 5.0
    """A connection on which nothing arrived for this long is closed."""
    write_timeout_s: float = 10.0
    """A connection whose writes have been blocked this long is closed."""


@dataclass(frozen=True)
class PeerInfo:
    """A configured peer and its connection state."""

    name: str
    public_key: bytes
    address: bytes
    host: str
    port: int
    connected: bool
    since: float | None


class _Connection:
    def __init__(self, peer_key: bytes, channel: Channel) -> None:
        self.peer_key = peer_key
        self.channel = channel
        self.queue: asyncio.Queue[tuple[FrameKind, bytes]] = asyncio.Queue(SEND_QUEUE_FRAMES)
        self.since = time.time()
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.write_blocked_since: float | None = None
        self.pings_sent = 0

    def close(self) -> None:
        self.closed.set()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            self.channel.writer.close()


class Network:
    """The p2p endpoint of one node."""

    def __init__(
        self,
        *,
        key: PrivateKey,
        chain_id: int,
        peers: tuple[PeerConfig, ...],
        host: str,
        port: int,
        max_frame_bytes: int,
        on_frame: FrameHandler,
        settings: TransportSettings | None = None,
    ) -> None:
        """Nothing is opened until :meth:`start`."""
        self.key = key
        self.own_key = key.public_key.to_bytes()
        self.chain_id = chain_id
        self.peers = {p.public_key: p for p in peers if p.public_key != self.own_key}
        self.host = host
        self.port = port
        self.max_frame_bytes = max_frame_bytes
        self.on_frame = on_frame
        self.settings = settings if settings is not None else TransportSettings()
        self.counters: Counter[str] = Counter()
        self.frames: Counter[tuple[str, str]] = Counter()
        """Frames by (direction "in"/"out", kind name), after the handshake."""
        self.frame_bytes: Counter[tuple[str, str]] = Counter()
        """Payload bytes of those frames, by the same key."""
        self._validator_keys: frozenset[bytes] | None = None
        self._connections: dict[bytes, _Connection] = {}
        self._pending = 0
        self._pending_by_address: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def allowed(self) -> frozenset[bytes]:
        """The node keys that may connect now."""
        observers = {key for key, peer in self.peers.items() if peer.observer}
        base = frozenset(self.peers) if self._validator_keys is None else self._validator_keys
        return (base | observers) - {self.own_key}

    def follow_validator_set(self, public_keys: Iterable[bytes]) -> None:
        """Allow the validators with ``public_keys`` (and the configured observers) from now
        on; close the connections of keys that are no longer allowed."""
        self._validator_keys = frozenset(public_keys)
        allowed = self.allowed
        for connection in list(self._connections.values()):
            if connection.peer_key not in allowed:
                self.counters["peer_removed"] += 1
                log.warning("p2p: %s left the allow-list", self._name(connection.peer_key))
                self._drop(connection)

    async def start(self) -> int:
        """Listen and start dialling; returns the bound port. Raises NativeUnavailable where
        OpenSSL cannot provide the channel's cryptography."""
        if not native_available():
            raise NativeUnavailable("p2p needs OpenSSL 3 with SM2-curve ECDH and SM4-CTR")
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        for peer in self.peers.values():
            if self.own_key < peer.public_key:
                self._tasks.append(asyncio.ensure_future(self._dial_loop(peer)))
        return self.port

    async def stop(self) -> None:
        """Close the listener and every connection."""
        # A cancellation can be lost inside ``wait_for`` on Python 3.11 when the wrapped
        # call finishes at the same moment; the dial loops also watch this flag.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for connection in list(self._connections.values()):
            connection.close()
        self._connections.clear()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # -- sending -----------------------------------------------------------------------

    def connected(self) -> list[bytes]:
        """Public keys of the peers connected now."""
        return list(self._connections)

    def send(self, peer_key: bytes, kind: FrameKind, body: bytes) -> None:
        """Queue a frame to one peer (dropped if it is not connected or its queue is full)."""
        connection = self._connections.get(peer_key)
        if connection is not None:
            self._enqueue(connection, kind, body)

    def broadcast(self, kind: FrameKind, body: bytes) -> None:
        """Queue a frame to every connected peer."""
        for connection in self._connections.values():
            self._enqueue(connection, kind, body)

    def _enqueue(self, connection: _Connection, kind: FrameKind, body: bytes) -> None:
        try:
            connection.queue.put_nowait((kind, body))
        except asyncio.QueueFull:
            self.counters["dropped_frames"] += 1

    def peer_info(self) -> list[PeerInfo]:
        """Every configured peer with its connection state."""
        result = []
        for peer in self.peers.values():
            connection = self._connections.get(peer.public_key)
            result.append(
                PeerInfo(
                    name=peer.name,
                    public_key=peer.public_key,
                    address=PublicKey.from_bytes(peer.public_key).address,
                    host=peer.host,
                    port=peer.port,
                    connected=connection is not None,
                    since=None if connection is None else connection.since,
                )
            )
        return result

    # -- connections -------------------------------------------------------------------

    async def _dial_loop(self, peer: PeerConfig) -> None:
        backoff = BACKOFF_START_S
        while not self._stopping:
            existing = self._connections.get(peer.public_key)
            if existing is not None:
                await existing.closed.wait()
                backoff = BACKOFF_START_S
                continue
            if peer.public_key not in self.allowed:
                await asyncio.sleep(BACKOFF_MAX_S)
                continue
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(peer.host, peer.port),
                    self.settings.handshake_timeout_s,
                )
            except (OSError, TimeoutError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            connection = await self._authenticate(reader, writer, initiator=True)
            if connection is None:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if isinstance(peername, tuple) and peername else "?"
        settings = self.settings
        if (
            self._pending >= settings.max_pending_handshakes
            or self._pending_by_address[address] >= settings.max_pending_per_address
        ):
            self.counters["handshake_busy"] += 1
            writer.close()
            return
        self._pending += 1
        self._pending_by_address[address] += 1
        try:
            await self._authenticate(reader, writer, initiator=False)
        finally:
            self._pending -= 1
            self._pending_by_address[address] -= 1
            if self._pending_by_address[address] <= 0:
                del self._pending_by_address[address]

    async def _authenticate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, initiator: bool
    ) -> _Connection | None:
        try:
            session = await asyncio.wait_for(
                perform_handshake(
                    reader,
                    writer,
                    key=self.key,
                    chain_id=self.chain_id,
                    allowed=self.allowed,
                    initiator=initiator,
                    max_bytes=self.max_frame_bytes,
                    encrypted=self.settings.encrypted,
                ),
                self.settings.handshake_timeout_s,
            )
        except HandshakeError as exc:
            self.counters[exc.reason] += 1
            log.warning("p2p: rejected connection: %s", exc)
            writer.close()
            return None
        except TimeoutError:
            self.counters["handshake_timeout"] += 1
            writer.close()
            return None
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            writer.close()
            return None
        if session.peer_key not in self.allowed:  # the set changed during the handshake
            self.counters["unknown_key"] += 1
            writer.close()
            return None
        old = self._connections.pop(session.peer_key, None)
        if old is not None:
            old.close()
        connection = _Connection(session.peer_key, session.channel)
        self._connections[session.peer_key] = connection
        connection.tasks = [
            asyncio.ensure_future(self._read_loop(connection)),
            asyncio.ensure_future(self._write_loop(connection)),
            asyncio.ensure_future(self._heartbeat_loop(connection)),
        ]
        log.info("p2p: connected to %s", self._name(session.peer_key))
        return connection

    def _name(self, peer_key: bytes) -> str:
        peer = self.peers.get(peer_key)
        return peer.name if peer is not None and peer.name else peer_key.hex()[:16]

    def _drop(self, connection: _Connection) -> None:
        if self._connections.get(connection.peer_key) is connection:
            del self._connections[connection.peer_key]
            log.info("p2p: disconnected from %s", self._name(connection.peer_key))
        connection.close()

    def _fail(self, connection: _Connection, reason: str, detail: object) -> None:
        self.counters[reason] += 1
        log.warning("p2p: %s: %s: %s", self._name(connection.peer_key), reason, detail)
        self._drop(connection)

    async def _read_loop(self, connection: _Connection) -> None:
        channel = connection.channel
        try:
            while True:
                kind, body = await channel.read()
                self.frames["in", kind.name] += 1
                self.frame_bytes["in", kind.name] += len(body)
                if kind is FrameKind.PING:
                    if len(body) > MAX_PING_BYTES:
                        raise FrameError("oversize PING")
                    self._enqueue(connection, FrameKind.PONG, body)
                    continue
                if kind is FrameKind.PONG:
                    continue
                if kind in (FrameKind.HELLO, FrameKind.AUTH):
                    raise FrameError(f"{kind.name} after the handshake")
                try:
                    self.on_frame(connection.peer_key, kind, body)
                except Exception:
                    log.exception("p2p: handling a %s frame failed", kind.name)
        except FrameError as exc:
            self._fail(connection, exc.reason, exc)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self._drop(connection)

    async def _write_loop(self, connection: _Connection) -> None:
        channel = connection.channel
        writer = channel.writer
        try:
            while True:
                kind, body = await connection.queue.get()
                batch = [self._sealed(channel, kind, body)]
                while not connection.queue.empty() and len(batch) < 64:
                    batch.append(self._sealed(channel, *connection.queue.get_nowait()))
                writer.writelines(batch)
                connection.write_blocked_since = time.monotonic()
                await writer.drain()
                connection.write_blocked_since = None
        except (ConnectionError, OSError):
            self._drop(connection)

    def _sealed(self, channel: Channel, kind: FrameKind, body: bytes) -> bytes:
        self.frames["out", kind.name] += 1
        self.frame_bytes["out", kind.name] += len(body)
        return channel.encode(kind, body)

    async def _heartbeat_loop(self, connection: _Connection) -> None:
        settings = self.settings
        tick = time.monotonic()
        held_up = False
        while True:
            await asyncio.sleep(settings.ping_interval_s)
            now = time.monotonic()
            # A tick this late means this node did not run meanwhile (stopped, off the CPU,
            # a blocking call), and a resumed loop serves its overdue timers before it reads
            # a socket: what the peer sent is still unread, and the writes not yet drained.
            # Judge the link at the next tick, once they were; a late tick right after one
            # that waited is judged, so a loop that is always late still detects dead links.
            held_up = not held_up and now - tick > HELD_UP_TICKS * settings.ping_interval_s
            tick = now
            if not held_up and self._judge(connection, now):
                return
            connection.pings_sent += 1
            self._enqueue(connection, FrameKind.PING, connection.pings_sent.to_bytes(8, "big"))

    def _judge(self, connection: _Connection, now: float) -> bool:
        """Close ``connection`` if nothing arrived on it for the peer timeout or its writes
        have been blocked for the write timeout; whether it was closed."""
        settings = self.settings
        silent = now - connection.channel.last_received
        if silent > settings.peer_timeout_s:
            self._fail(connection, "peer_timeout", f"nothing received for {silent:.1f} s")
            return True
        blocked = connection.write_blocked_since
        if blocked is not None and now - blocked > settings.write_timeout_s:
            self._fail(connection, "write_timeout", f"writes blocked for {now - blocked:.1f} s")
            return True
        return False


def transport_settings(config: NodeConfig) -> TransportSettings:
    """The transport settings a node's configuration asks for."""
    return TransportSettings(
        encrypted=config.p2p_encryption,
        ping_interval_s=config.p2p_ping_interval_ms / 1000,
        peer_timeout_s=config.p2p_peer_timeout_ms / 1000,
    )
