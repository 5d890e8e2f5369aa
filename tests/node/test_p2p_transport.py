"""The p2p transport's protections over real sockets on 127.0.0.1, between two in-process
endpoints (one of them reached through a TCP proxy owned by the test): frames are encrypted
on the wire, strangers are held to a small frame limit, a deadline and caps on pending
handshakes, a silent link is detected by heartbeats, and the allow-list follows the
validator set handed to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chain.crypto import PrivateKey, sm3
from chain.limits import MAX_PREAUTH_FRAME_BYTES
from node.config import ConfigError, PeerConfig, config_from_mapping
from node.p2p import FrameKind, Network, TransportSettings, transport_settings
from node.p2p.handshake import perform_handshake

CHAIN_ID = 77
QUICK = TransportSettings(handshake_timeout_s=1.0, ping_interval_s=0.1, peer_timeout_s=0.6)


def make_key(index: int) -> PrivateKey:
    return PrivateKey.from_bytes(sm3(b"p2p-transport" + bytes([index])))


class Proxy:
    """Forwards one TCP port to another, recording what passes; ``silent`` stops forwarding
    without closing anything (a cut link that sends no FIN or RST)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.silent = False
        self.seen = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65_536):
                    if self.silent:
                        continue
                    self.seen += data
                    sink.write(data)
                    await sink.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@dataclass
class Pair:
    """``dialer`` reaches ``listener`` through ``proxy``; both keep what they receive."""

    dialer: Network
    listener: Network
    proxy: Proxy
    received: list[tuple[bytes, FrameKind, bytes]] = field(default_factory=list)


def _network(
    key: PrivateKey,
    peers: tuple[PeerConfig, ...],
    sink: list[tuple[bytes, FrameKind, bytes]],
    settings: TransportSettings,
) -> Network:
    return Network(
        key=key, chain_id=CHAIN_ID, peers=peers, host="127.0.0.1", port=0,
        max_frame_bytes=65_536, on_frame=lambda *frame: sink.append(frame), settings=settings,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def open_pair(
    settings: TransportSettings = QUICK, dialer_settings: TransportSettings | None = None
) -> AsyncIterator[Pair]:
    """Two endpoints; the one with the lower key dials the other through a proxy."""
    low, high = sorted((make_key(1), make_key(2)), key=lambda k: k.public_key.to_bytes())
    received: list[tuple[bytes, FrameKind, bytes]] = []
    listener = _network(
        high, (PeerConfig(low.public_key.to_bytes(), "127.0.0.1", 1, "dialer"),), received,
        settings,
    )  # fmt: skip
    proxy = Proxy(await listener.start())
    await proxy.start()
    dialer = _network(
        low, (PeerConfig(high.public_key.to_bytes(), "127.0.0.1", proxy.port, "listener"),),
        received, dialer_settings or settings,
    )  # fmt: skip
    await dialer.start()
    try:
        yield Pair(dialer, listener, proxy, received)
    finally:
        await dialer.stop()
        await listener.stop()
        await proxy.stop()


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def connected(pair: Pair) -> bool:
    return bool(pair.dialer.connected() and pair.listener.connected())


def test_frames_are_encrypted_on_the_wire() -> None:
    async def scenario() -> None:
        async with open_pair() as pair:
            await wait_for(lambda: connected(pair))
            secret = b"a confidential transaction payload " * 4
            pair.dialer.broadcast(FrameKind.TX, secret)
            pair.listener.broadcast(FrameKind.STATUS, secret)
            await wait_for(lambda: len([f for f in pair.received if f[2] == secret]) == 2)
            assert b"confidential" not in pair.proxy.seen
            assert len(pair.proxy.seen) > 2 * len(secret)

    asyncio.run(scenario())


def test_handshake_frames_are_held_to_the_preauthentication_limit() -> None:
    async def scenario() -> None:
        async with open_pair() as pair:
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.listener.port)
            # A HELLO of 2 KiB: far below the post-handshake frame limit, above the small one.
            body = bytes(2 * MAX_PREAUTH_FRAME_BYTES)
            writer.write((len(body) + 1).to_bytes(4, "big") + b"\x01" + body)
            await writer.drain()
            await wait_for(lambda: pair.listener.counters["oversize_frame"] == 1)
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(reader.read(), 5)  # the node's HELLO, then closed
            assert reader.at_eof() or reader.exception() is not None
            writer.close()

    asyncio.run(scenario())


def test_pending_handshakes_are_capped_and_time_out() -> None:
    async def scenario() -> None:
        async with open_pair() as pair:
            await wait_for(lambda: connected(pair))
            cap = QUICK.max_pending_per_address
            streams = [await asyncio.open_connection("127.0.0.1", pair.listener.port)
                       for _ in range(cap + 5)]  # fmt: skip
            await wait_for(lambda: pair.listener.counters["handshake_busy"] == 5)
            # The silent ones are closed at the deadline; the real peer stayed connected.
            await wait_for(lambda: pair.listener.counters["handshake_timeout"] == cap)
            assert connected(pair)
            for _, writer in streams:
                writer.close()
            # Once the stragglers are gone, new connections are accepted again.
            _, writer = await asyncio.open_connection("127.0.0.1", pair.listener.port)
            writer.write(b"\x00\x00\x00\x02\x63\x00")
            await wait_for(lambda: pair.listener.counters["bad_frame"] == 1)
            writer.close()

    asyncio.run(scenario())


def test_a_silent_link_is_detected_by_heartbeats_and_reconnects() -> None:
    async def scenario() -> None:
        async with open_pair() as pair:
            await wait_for(lambda: connected(pair))
            await asyncio.sleep(3 * QUICK.ping_interval_s)
            assert connected(pair)  # heartbeats keep an idle link up
            pair.proxy.silent = True
            await wait_for(lambda: not pair.dialer.connected() and not pair.listener.connected())
            assert pair.dialer.counters["peer_timeout"] >= 1
            assert pair.listener.counters["peer_timeout"] >= 1
            pair.proxy.silent = False
            await wait_for(lambda: connected(pair))

    asyncio.run(scenario())


def test_the_allow_list_follows_the_validator_set() -> None:
    async def scenario() -> None:
        async with open_pair() as pair:
            await wait_for(lambda: connected(pair))
            dialer_key = pair.dialer.own_key
            pair.listener.follow_validator_set([pair.listener.own_key])  # the dialer is out
            await wait_for(lambda: not pair.listener.connected())
            assert pair.listener.counters["peer_removed"] == 1
            await wait_for(lambda: pair.listener.counters["unknown_key"] >= 1)  # redial refused
            assert not pair.listener.connected()
            pair.listener.follow_validator_set([pair.listener.own_key, dialer_key])
            await wait_for(lambda: connected(pair))

    asyncio.run(scenario())


def test_configured_observers_stay_allowed_outside_the_validator_set() -> None:
    async def scenario() -> None:
        async with open_pair() as pair:
            await wait_for(lambda: connected(pair))
            dialer_key = pair.dialer.own_key
            pair.listener.peers[dialer_key] = PeerConfig(dialer_key, "127.0.0.1", 1, "obs", True)
            pair.listener.follow_validator_set([pair.listener.own_key])
            assert dialer_key in pair.listener.allowed
            assert pair.listener.counters["peer_removed"] == 0
            assert connected(pair)

    asyncio.run(scenario())


def test_peers_that_disagree_on_encryption_do_not_connect() -> None:
    async def scenario() -> None:
        plain = TransportSettings(encrypted=False, handshake_timeout_s=1.0)
        async with open_pair(QUICK, dialer_settings=plain) as pair:
            await wait_for(lambda: pair.listener.counters["encryption_mismatch"] >= 1)
            assert not pair.listener.connected()

    asyncio.run(scenario())


def test_with_encryption_off_frames_travel_in_clear() -> None:
    async def scenario() -> None:
        plain = TransportSettings(encrypted=False, ping_interval_s=0.1, peer_timeout_s=0.6)
        async with open_pair(plain) as pair:
            await wait_for(lambda: connected(pair))
            pair.dialer.broadcast(FrameKind.TX, b"visible payload")
            await wait_for(lambda: any(f[2] == b"visible payload" for f in pair.received))
            assert b"visible payload" in pair.proxy.seen

    asyncio.run(scenario())


def test_a_node_refuses_plaintext_p2p_without_the_dev_flag(tmp_path: Path) -> None:
    base = {"data_dir": "data", "genesis": "genesis.toml"}
    assert config_from_mapping(base, tmp_path).p2p_encryption
    with pytest.raises(ConfigError, match="p2p_allow_plaintext_dev"):
        config_from_mapping({**base, "p2p_encryption": False}, tmp_path)
    relaxed = {**base, "p2p_encryption": False, "p2p_allow_plaintext_dev": True}
    assert not transport_settings(config_from_mapping(relaxed, tmp_path)).encrypted
    with pytest.raises(ConfigError, match="p2p_encryption"):
        config_from_mapping({**base, "p2p_encryption": "no"}, tmp_path)


def test_observer_peers_are_read_from_the_configuration(tmp_path: Path) -> None:
    key = make_key(3).public_key.to_bytes().hex()
    peer = {"public_key": key, "host": "127.0.0.1", "port": 26656}
    values = {"data_dir": "data", "genesis": "genesis.toml"}
    config = config_from_mapping({**values, "peers": [peer, {**peer, "observer": True}]}, tmp_path)
    assert [p.observer for p in config.peers] == [False, True]
    with pytest.raises(ConfigError, match="observer"):
        config_from_mapping({**values, "peers": [{**peer, "observer": 1}]}, tmp_path)


def test_a_peer_that_stops_reading_is_closed_at_the_write_timeout() -> None:
    settings = TransportSettings(ping_interval_s=0.1, peer_timeout_s=30.0, write_timeout_s=0.5)

    async def scenario() -> None:
        async with open_pair(settings) as pair:
            await wait_for(lambda: connected(pair))
            # Connect as the dialer (replacing its connection), keep sending, never read.
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.listener.port)
            dialer_key = next(
                k
                for k in (make_key(1), make_key(2))
                if k.public_key.to_bytes() == pair.dialer.own_key
            )
            session = await perform_handshake(
                reader, writer, key=dialer_key, chain_id=CHAIN_ID,
                allowed=frozenset({pair.listener.own_key}), initiator=True, max_bytes=65_536,
            )  # fmt: skip
            for _ in range(400):
                if pair.listener.counters["write_timeout"]:
                    break
                pair.listener.send(dialer_key.public_key.to_bytes(), FrameKind.TX, bytes(60_000))
                writer.write(session.channel.encode(FrameKind.PING, b"alive"))
                await asyncio.sleep(0.02)
            await wait_for(lambda: pair.listener.counters["write_timeout"] == 1)
            writer.close()

    asyncio.run(scenario())
