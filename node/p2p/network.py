"""One authenticated connection per configured peer, and the frames that flow over them.

Connections: the node with the lower public key dials, the other accepts, so each pair has
one connection; a dial that fails is retried with exponential backoff. An accepted
connection from a peer that already has one replaces it (the peer restarted and the old
socket is dead). Every connection is authenticated (:mod:`node.p2p.handshake`) before a
frame of any other kind is read. Sending never blocks the caller: each connection has a
bounded queue drained by its own writer task; when the queue is full (a stalled peer) the
frame is dropped and counted, since consensus re-sends what matters.

Rejections are counted in :attr:`Network.counters` under the handshake's reason
(``wrong_chain``, ``unknown_key``, ``bad_signature``, ``bad_frame``, ``oversize_frame``),
plus ``handshake_timeout`` and ``dropped_frames``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from chain.crypto import PrivateKey, PublicKey
from node.config import PeerConfig

from .frames import FrameError, FrameKind, OversizeFrame, encode_frame, read_frame
from .handshake import HandshakeError, perform_handshake

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 5.0
SEND_QUEUE_FRAMES = 1024
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0

FrameHandler = Callable[[bytes, FrameKind, bytes], None]
"""Called on the event loop with (peer public key, kind, body) for every received frame."""


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
    def __init__(self, peer_key: bytes, writer: asyncio.StreamWriter) -> None:
        self.peer_key = peer_key
        self.writer = writer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(SEND_QUEUE_FRAMES)
        self.since = time.time()
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        self.closed.set()
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()


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
        self.counters: Counter[str] = Counter()
        self._connections: dict[bytes, _Connection] = {}
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def allowed(self) -> frozenset[bytes]:
        return frozenset(self.peers)

    async def start(self) -> int:
        """Listen and start dialling; returns the bound port."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        for peer in self.peers.values():
            if self.own_key < peer.public_key:
                self._tasks.append(asyncio.ensure_future(self._dial_loop(peer)))
        return self.port

    async def stop(self) -> None:
        """Close the listener and every connection."""
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
            self._enqueue(connection, encode_frame(kind, body))

    def broadcast(self, kind: FrameKind, body: bytes) -> None:
        """Queue a frame to every connected peer."""
        frame = encode_frame(kind, body)
        for connection in self._connections.values():
            self._enqueue(connection, frame)

    def _enqueue(self, connection: _Connection, frame: bytes) -> None:
        try:
            connection.queue.put_nowait(frame)
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
        while True:
            existing = self._connections.get(peer.public_key)
            if existing is not None:
                await existing.closed.wait()
                backoff = BACKOFF_START_S
                continue
            try:
                reader, writer = await asyncio.open_connection(peer.host, peer.port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            connection = await self._authenticate(reader, writer, initiator=True)
            if connection is None:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._authenticate(reader, writer, initiator=False)

    async def _authenticate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, initiator: bool
    ) -> _Connection | None:
        try:
            peer_key = await asyncio.wait_for(
                perform_handshake(
                    reader,
                    writer,
                    key=self.key,
                    chain_id=self.chain_id,
                    allowed=self.allowed,
                    initiator=initiator,
                    max_bytes=self.max_frame_bytes,
                ),
                HANDSHAKE_TIMEOUT_S,
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
        old = self._connections.pop(peer_key, None)
        if old is not None:
            old.close()
        connection = _Connection(peer_key, writer)
        self._connections[peer_key] = connection
        connection.tasks = [
            asyncio.ensure_future(self._read_loop(connection, reader)),
            asyncio.ensure_future(self._write_loop(connection)),
        ]
        log.info("p2p: connected to %s", self._name(peer_key))
        return connection

    def _name(self, peer_key: bytes) -> str:
        peer = self.peers.get(peer_key)
        return peer.name if peer is not None and peer.name else peer_key.hex()[:16]

    def _drop(self, connection: _Connection) -> None:
        if self._connections.get(connection.peer_key) is connection:
            del self._connections[connection.peer_key]
            log.info("p2p: disconnected from %s", self._name(connection.peer_key))
        connection.close()

    async def _read_loop(self, connection: _Connection, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, body = await read_frame(reader, self.max_frame_bytes)
                if kind in (FrameKind.HELLO, FrameKind.AUTH):
                    raise FrameError(f"{kind.name} after the handshake")
                try:
                    self.on_frame(connection.peer_key, kind, body)
                except Exception:
                    log.exception("p2p: handling a %s frame failed", kind.name)
        except OversizeFrame as exc:
            self.counters["oversize_frame"] += 1
            log.warning("p2p: %s: %s", self._name(connection.peer_key), exc)
        except FrameError as exc:
            self.counters["bad_frame"] += 1
            log.warning("p2p: %s: %s", self._name(connection.peer_key), exc)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._drop(connection)

    async def _write_loop(self, connection: _Connection) -> None:
        try:
            while True:
                frame = await connection.queue.get()
                connection.writer.write(frame)
                await connection.writer.drain()
        except (ConnectionError, OSError):
            self._drop(connection)
