"""The p2p transport under attack, on a network of four real validator processes.

Every link between two validators runs through a man-in-the-middle proxy owned by the test
(the ``[[peers]]`` entries point at one proxy port per ordered pair). The proxy reads the
length-prefixed frames and, on command, flips a byte of one, injects a forged one, or replays
one: the receiving node drops the connection with a counted reason, the link is re-established
and the chain keeps committing. The proxy can also go silent on every link of one node without
closing anything: the others report it down within seconds (heartbeats). Then a flood of
unauthenticated connections pushing 4 MiB frame headers and trickling bytes leaves the node's
memory bounded; a frame of RLP nested as deep as fits under the frame limit is refused and the
node lives on; and a validator removed by governance is disconnected and refused by p2p.

The tests share one network and run in file order; the removal comes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import run_cli
from net_harness import Net, assert_agreement, free_port_block, new_net, start_net, wait_until
from test_consensus_partition import route_through_proxy

from chain import encoding as enc
from chain.limits import MAX_FRAME_BYTES
from node.p2p.frames import FrameKind
from node.p2p.handshake import perform_handshake
from node.rpc_client import rpc_call

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
EVERYONE = list(range(VALIDATORS))
DOWN_DEADLINE_S = 15.0
"""Longest the test waits for a silent peer to be reported down (detection takes about
``p2p_peer_timeout_ms`` + one ping interval: 6 s by default)."""
RSS_GROWTH_BOUND_BYTES = 30 * 1024 * 1024
"""Largest growth of a node's resident memory the flood may cause (it was +178 MB)."""
FLOOD_CONNECTIONS = 40
TRICKLE_CONNECTIONS = 10
FLOOD_FRAME_BYTES = 4 * 1024 * 1024


class MitmProxy:
    """One listening port per ordered pair of validators, forwarding frames to the target's
    p2p port; can tamper with the next frame after a handshake, or go silent for a node."""

    def __init__(self, size: int, p2p_base: int, proxy_base: int) -> None:
        self.size = size
        self.p2p_base = p2p_base
        self.proxy_base = proxy_base
        self.silenced: set[int] = set()
        self.armed: deque[str] = deque()
        self.tampered: list[tuple[tuple[int, int], str]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()

    def port(self, source: int, target: int) -> int:
        """The proxy port validator ``source`` dials to reach validator ``target``."""
        return self.proxy_base + source * self.size + target

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        for source in range(self.size):
            for target in range(self.size):
                if source == target:
                    continue

                async def handle(
                    reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter,
                    link: tuple[int, int] = (source, target),
                ) -> None:
                    await self._forward(link, reader, writer)

                server = await asyncio.start_server(handle, "127.0.0.1", self.port(source, target))
                self._servers.append(server)

    def _silent(self, link: tuple[int, int]) -> bool:
        return bool(self.silenced & set(link))

    async def _forward(
        self, link: tuple[int, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.p2p_base + link[1]
            )
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(link, reader, up_writer), self._pipe(link, up_reader, writer)
        )
        self._writers -= {writer, up_writer}

    async def _pipe(
        self, link: tuple[int, int], source: asyncio.StreamReader, sink: asyncio.StreamWriter
    ) -> None:
        index = 0
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while True:
                header = await source.readexactly(4)
                frame = header + await source.readexactly(int.from_bytes(header, "big"))
                index += 1
                if self._silent(link):
                    continue  # swallowed: no FIN, no RST, nothing
                # Frames 1 and 2 of each direction are the handshake (HELLO, AUTH).
                if index >= 3 and self.armed:
                    action = self.armed.popleft()
                    self.tampered.append((link, action))
                    if action == "flip":
                        frame = frame[:-1] + bytes([frame[-1] ^ 0x01])
                    elif action == "inject":
                        forged = enc.encode([b"\x01" * 32, b"forged vote"])
                        sink.write(len(forged).to_bytes(4, "big") + forged)
                    elif action == "replay":
                        sink.write(frame)
                sink.write(frame)
                await sink.drain()
        # A silent link passes nothing, not even the close of one end: otherwise the end that
        # gave up first (its own heartbeat saw the silence) would tell the other by closing,
        # and which of the two ends counts the timeout would be a race.
        if not self._silent(link):
            sink.close()

    async def _close_all(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()


@pytest.fixture(scope="module")
def proxied_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Net, MitmProxy]]:
    proxy_base = free_port_block(VALIDATORS * VALIDATORS)
    with new_net(tmp_path_factory.mktemp("p2p") / "net", VALIDATORS) as net:
        proxy = MitmProxy(VALIDATORS, net.p2p_base, proxy_base)
        route_through_proxy(net, proxy)  # type: ignore[arg-type]
        proxy.start()
        try:
            start_net(net)
            wait_until(
                "first blocks through the proxy", lambda: min(net.head(i) for i in EVERYONE) >= 3
            )
            yield net, proxy
        finally:
            net.kill_all()
            proxy.stop()


def counter(net: Net, index: int, name: str) -> int:
    return int(net.status(index)["counters"].get(name, 0))


def total(net: Net, name: str, nodes: list[int] = EVERYONE) -> int:
    return sum(counter(net, i, name) for i in nodes)


def fully_connected(net: Net, nodes: list[int] = EVERYONE) -> bool:
    return all(net.status(i)["peers"] == len(nodes) - 1 for i in nodes)


def keeps_committing(net: Net, nodes: list[int] = EVERYONE, blocks: int = 3) -> None:
    base = max(net.head(i) for i in nodes)
    wait_until(f"{blocks} more blocks", lambda: min(net.head(i) for i in nodes) >= base + blocks)
    assert_agreement(net, nodes)


@pytest.mark.parametrize("action", ["flip", "inject", "replay"])
def test_a_tampered_frame_drops_the_link_and_consensus_goes_on(
    proxied_net: tuple[Net, MitmProxy], action: str
) -> None:
    net, proxy = proxied_net
    wait_until("all links up", lambda: fully_connected(net))
    before = total(net, "p2p_frame_auth_failed")
    proxy.armed.append(action)
    wait_until(f"a {action} refused", lambda: total(net, "p2p_frame_auth_failed") > before)
    assert proxy.tampered[-1][1] == action
    wait_until("the link is re-established", lambda: fully_connected(net))
    keeps_committing(net)


def test_a_silent_link_is_reported_down_within_seconds(
    proxied_net: tuple[Net, MitmProxy],
) -> None:
    net, proxy = proxied_net
    wait_until("all links up", lambda: fully_connected(net))
    others = [0, 1, 2]
    before = total(net, "p2p_peer_timeout", others)
    proxy.silenced.add(3)
    try:
        cut_at = time.monotonic()
        wait_until(
            "node 3 reported down",
            lambda: all(net.status(i)["peers"] == 2 for i in others),
            timeout=DOWN_DEADLINE_S,
        )
        print(f"silent link detected after {time.monotonic() - cut_at:.1f} s")
        # Each of the others saw the silence itself: three timeouts, one a link.
        assert total(net, "p2p_peer_timeout", others) >= before + len(others)
        keeps_committing(net, others)
    finally:
        # The module's later tests share this network: give them back their links whatever
        # happened here.
        proxy.silenced.clear()
    wait_until("node 3 back", lambda: fully_connected(net))
    keeps_committing(net)


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _push_large_frame(port: int, stop: threading.Event) -> None:
    """Announce a 4 MiB HELLO and push its bytes, as fast as the node takes them."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(FLOOD_FRAME_BYTES.to_bytes(4, "big") + bytes([FrameKind.HELLO]))
        chunk = os.urandom(64 * 1024)
        sent = 0
        while sent < FLOOD_FRAME_BYTES and not stop.is_set():
            sock.sendall(chunk)
            sent += len(chunk)
        stop.wait(3)


def _trickle(port: int, stop: threading.Event) -> None:
    """Announce a 100-byte HELLO, then send one byte of it every 200 ms."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall((100).to_bytes(4, "big") + bytes([FrameKind.HELLO]))
        while not stop.wait(0.2):
            sock.sendall(b"\x00")


def test_a_flood_of_unauthenticated_connections_leaves_memory_bounded(
    proxied_net: tuple[Net, MitmProxy],
) -> None:
    net, _ = proxied_net
    wait_until("all links up", lambda: fully_connected(net))
    pid = net.pid(0)
    port = net.p2p_base  # node 0's own listener, not a proxy
    reasons = ("oversize_frame", "handshake_busy", "handshake_timeout")
    refused_before = sum(counter(net, 0, f"p2p_{reason}") for reason in reasons)
    baseline = resident_bytes(pid)
    stop = threading.Event()
    threads = [
        threading.Thread(target=_push_large_frame, args=(port, stop), daemon=True)
        for _ in range(FLOOD_CONNECTIONS)
    ] + [
        threading.Thread(target=_trickle, args=(port, stop), daemon=True)
        for _ in range(TRICKLE_CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    peak = baseline
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        peak = max(peak, resident_bytes(pid))
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(10)
    peak = max(peak, resident_bytes(pid))
    print(f"node 0 RSS {baseline / 2**20:.0f} MiB, peak during the flood {peak / 2**20:.0f} MiB")
    assert peak - baseline < RSS_GROWTH_BOUND_BYTES
    wait_until(
        "every flooding connection refused",
        lambda: (
            sum(counter(net, 0, f"p2p_{reason}") for reason in reasons) - refused_before
            >= FLOOD_CONNECTIONS + TRICKLE_CONNECTIONS
        ),
    )
    wait_until("all links up after the flood", lambda: fully_connected(net))
    keeps_committing(net)


def deeply_nested_rlp(max_bytes: int) -> bytes:
    """Singleton lists nested as deep as fits in ``max_bytes`` (over a million levels)."""
    headers: list[bytes] = []
    size = 1
    while True:
        if size <= 55:
            header = bytes([0xC0 + size])
        else:
            width = (size.bit_length() + 7) // 8
            header = bytes([0xF7 + width]) + size.to_bytes(width, "big")
        if size + len(header) > max_bytes:
            break
        headers.append(header)
        size += len(header)
    return b"".join(reversed(headers)) + b"\xc0"


async def _send_as_validator(net: Net, target: int, sender: int, body: bytes) -> None:
    chain_id = int(rpc_call(net.url(target), "eth_chainId", []), 16)
    reader, writer = await asyncio.open_connection("127.0.0.1", net.p2p_base + target)
    session = await perform_handshake(
        reader, writer, key=net.key(sender), chain_id=chain_id, allowed=_ANY_KEY,
        initiator=True, max_bytes=1 << 20,
    )  # fmt: skip
    writer.write(session.channel.encode(FrameKind.CONSENSUS, body))
    await writer.drain()
    await asyncio.sleep(1.0)
    writer.close()


class _AnyKey(frozenset[bytes]):
    def __contains__(self, item: object) -> bool:
        return True


_ANY_KEY = _AnyKey()


def test_a_frame_of_deeply_nested_rlp_is_refused_and_the_node_lives(
    proxied_net: tuple[Net, MitmProxy],
) -> None:
    net, _ = proxied_net
    wait_until("all links up", lambda: fully_connected(net))
    body = deeply_nested_rlp(MAX_FRAME_BYTES - 1)  # the node's default frame limit
    # The frame comes over a connection authenticated with another validator's key, which
    # replaces that validator's own link. Of two peers only the one with the smaller key
    # dials, so the target is the validator with the smallest key: the validator impersonated
    # never redials it, and its redial cannot replace the connection before the frame is read.
    keys = {index: net.key(index).public_key.to_bytes() for index in range(4)}
    target = min(keys, key=keys.__getitem__)
    sender = next(index for index in range(4) if index != target)
    before = counter(net, target, "malformed_messages")
    asyncio.run(_send_as_validator(net, target, sender, body))
    wait_until("the frame refused", lambda: counter(net, target, "malformed_messages") > before)
    os.kill(net.pid(target), 0)  # still alive
    wait_until("all links up", lambda: fully_connected(net))
    keeps_committing(net)


def validators_cli(net: Net, *args: str) -> dict[str, object]:
    result = run_cli("validators", *args, "--dir", str(net.root), "--json")
    assert result.code == 0, result
    answer = result.json()
    assert isinstance(answer, dict)
    return answer


def test_a_validator_removed_by_governance_is_refused_by_p2p(
    proxied_net: tuple[Net, MitmProxy],
) -> None:
    net, _ = proxied_net
    wait_until("all links up", lambda: fully_connected(net))
    # Of two peers, the one with the smaller node key dials. The validator removed is the one
    # with the smallest key, so it is the dialling side of every link and its retries must
    # reach the others' handshakes (with the largest key it would only wait to be dialled).
    keys = {index: net.key(index).public_key.to_bytes() for index in range(4)}
    removed = min(keys, key=keys.__getitem__)
    others = [index for index in range(4) if index != removed]
    refused_before = total(net, "p2p_unknown_key", others)
    proposed = validators_cli(
        net, "propose", "--node", str(others[0]), "--target-node", str(removed), "--power", "0"
    )
    proposal = str(proposed["proposal"])
    assert not validators_cli(net, "vote", proposal, "--node", str(others[1])).get("executed")
    passed = validators_cli(net, "vote", proposal, "--node", str(others[2]))
    assert passed["executed"], passed
    effective = int(str(passed["effectiveHeight"]))
    wait_until("the removal rules", lambda: min(net.head(i) for i in others) >= effective)
    wait_until(
        "the removed validator disconnected",
        lambda: (
            net.status(removed)["peers"] == 0 and all(net.status(i)["peers"] == 2 for i in others)
        ),
    )
    # It keeps dialling (its configuration still lists the others); each try is refused.
    wait_until(
        "its connections refused at the handshake",
        lambda: total(net, "p2p_unknown_key", others) > refused_before,
    )
    keeps_committing(net, others)
    assert net.status(removed)["peers"] == 0
    assert net.head(removed) < min(net.head(i) for i in others)
