"""The p2p transport over real sockets on 127.0.0.1: two configured nodes connect and
exchange frames; a wrong chain id, an unknown key, a bad handshake signature, garbage bytes
and an oversize frame are rejected and counted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from chain.crypto import PrivateKey, sm3
from node.config import PeerConfig
from node.p2p import FrameKind, Network
from node.p2p.frames import encode_frame
from node.p2p.handshake import HandshakeError, perform_handshake

CHAIN_ID = 99


def make_key(index: int) -> PrivateKey:
    return PrivateKey.from_bytes(sm3(b"p2p-test" + bytes([index])))


@dataclass
class Pair:
    a: Network
    b: Network
    a_key: PrivateKey
    b_key: PrivateKey
    received: list[tuple[bytes, FrameKind, bytes]]


def network(key: PrivateKey, peers: tuple[PeerConfig, ...], sink: list) -> Network:
    return Network(
        key=key,
        chain_id=CHAIN_ID,
        peers=peers,
        host="127.0.0.1",
        port=0,
        max_frame_bytes=65_536,
        on_frame=lambda peer, kind, body: sink.append((peer, kind, body)),
    )


@contextlib.asynccontextmanager
async def open_pair() -> AsyncIterator[Pair]:
    a_key, b_key = make_key(1), make_key(2)
    received: list[tuple[bytes, FrameKind, bytes]] = []
    # b listens first, then a (which knows b's port); b learns a's port afterwards and
    # dials it itself if key order makes b the dialling side.
    b = network(b_key, (), received)
    b_port = await b.start()
    a = network(a_key, (PeerConfig(b_key.public_key.to_bytes(), "127.0.0.1", b_port, "b"),),
                received)  # fmt: skip
    a_port = await a.start()
    b.peers = {a_key.public_key.to_bytes(): PeerConfig(a_key.public_key.to_bytes(),
                                                       "127.0.0.1", a_port, "a")}  # fmt: skip
    if b.own_key < a_key.public_key.to_bytes():
        b._tasks.append(asyncio.ensure_future(b._dial_loop(b.peers[a.own_key])))
    try:
        yield Pair(a, b, a_key, b_key, received)
    finally:
        await a.stop()
        await b.stop()


def run_with_pair(scenario: Callable[[Pair], Awaitable[None]]) -> None:
    async def main() -> None:
        async with open_pair() as pair:
            await scenario(pair)

    asyncio.run(main())


async def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class _AnyKey(frozenset[bytes]):
    def __contains__(self, item: object) -> bool:
        return True


async def client_handshake(port: int, key: object, chain_id: int = CHAIN_ID) -> tuple:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await perform_handshake(
        reader, writer, key=key, chain_id=chain_id, allowed=_AnyKey(),  # type: ignore[arg-type]
        initiator=True, max_bytes=65_536,
    )  # fmt: skip
    return reader, writer


async def closed(reader: asyncio.StreamReader) -> bool:
    try:
        while await asyncio.wait_for(reader.read(4096), 5):
            pass
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    return True


def test_configured_peers_connect_and_exchange_frames() -> None:
    run_with_pair(_test_configured_peers_connect_and_exchange_frames)


async def _test_configured_peers_connect_and_exchange_frames(pair: Pair) -> None:
    await wait_for(lambda: pair.a.connected() and pair.b.connected())
    pair.a.broadcast(FrameKind.TX, b"hello")
    pair.b.send(pair.a.own_key, FrameKind.STATUS, b"there")
    await wait_for(lambda: len(pair.received) == 2)
    assert {(kind, body) for _, kind, body in pair.received} == {
        (FrameKind.TX, b"hello"),
        (FrameKind.STATUS, b"there"),
    }
    assert [info.connected for info in pair.a.peer_info()] == [True]


def test_wrong_chain_is_rejected() -> None:
    run_with_pair(_test_wrong_chain_is_rejected)


async def _test_wrong_chain_is_rejected(pair: Pair) -> None:
    with contextlib.suppress(HandshakeError, asyncio.IncompleteReadError, ConnectionError):
        _, writer = await client_handshake(pair.b.port, pair.a_key, CHAIN_ID + 1)
        writer.close()
    await wait_for(lambda: pair.b.counters["wrong_chain"] == 1)


def test_unknown_key_is_rejected() -> None:
    run_with_pair(_test_unknown_key_is_rejected)


async def _test_unknown_key_is_rejected(pair: Pair) -> None:
    with contextlib.suppress(HandshakeError, asyncio.IncompleteReadError, ConnectionError):
        await client_handshake(pair.b.port, make_key(9))
    await wait_for(lambda: pair.b.counters["unknown_key"] == 1)


class Impostor:
    """Claims a configured node's public key but signs with another key."""

    def __init__(self, claimed: PrivateKey, signer: PrivateKey) -> None:
        self.public_key = claimed.public_key
        self._signer = signer

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)


def test_bad_handshake_signature_is_rejected() -> None:
    run_with_pair(_test_bad_handshake_signature_is_rejected)


async def _test_bad_handshake_signature_is_rejected(pair: Pair) -> None:
    with contextlib.suppress(HandshakeError, asyncio.IncompleteReadError, ConnectionError):
        await client_handshake(pair.b.port, Impostor(pair.a_key, make_key(9)))
    await wait_for(lambda: pair.b.counters["bad_signature"] == 1)


def test_garbage_bytes_are_rejected() -> None:
    run_with_pair(_test_garbage_bytes_are_rejected)


async def _test_garbage_bytes_are_rejected(pair: Pair) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pair.b.port)
    writer.write(b"\x00\x00\x00\x08GET / HT")
    await writer.drain()
    assert await closed(reader)
    writer.close()
    await wait_for(lambda: pair.b.counters["bad_frame"] == 1)


def test_oversize_frame_before_handshake_is_rejected() -> None:
    run_with_pair(_test_oversize_frame_before_handshake_is_rejected)


async def _test_oversize_frame_before_handshake_is_rejected(pair: Pair) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pair.b.port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    assert await closed(reader)
    writer.close()
    await wait_for(lambda: pair.b.counters["oversize_frame"] == 1)


def test_oversize_frame_after_handshake_drops_the_connection() -> None:
    run_with_pair(_test_oversize_frame_after_handshake_drops_the_connection)


async def _test_oversize_frame_after_handshake_drops_the_connection(pair: Pair) -> None:
    await wait_for(lambda: pair.b.connected())
    # Connect as a: the new connection replaces a's, then it sends an oversize frame.
    reader, writer = await client_handshake(pair.b.port, pair.a_key)
    writer.write((1 << 20).to_bytes(4, "big") + b"\x04")
    writer.write(encode_frame(FrameKind.TX, b"never delivered"))
    await writer.drain()
    assert await closed(reader)
    writer.close()
    await wait_for(lambda: pair.b.counters["oversize_frame"] == 1)
    assert all(body != b"never delivered" for _, _, body in pair.received)
