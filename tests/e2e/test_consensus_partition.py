"""A network partition between real validator processes on 127.0.0.1.

Every p2p connection between two validators runs through a TCP proxy owned by the test: the
``[[peers]]`` entries of each ``node.toml`` point at a proxy port per ordered pair, which
forwards to the peer's real listener. Cutting the proxy between the halves {0, 1} and {2, 3}
leaves neither side a quorum: the chain halts and no node commits a height for which another
node holds a different block. Healing the cut lets consensus resume, and all four agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import run_cli
from net_harness import Net, assert_agreement, free_port_block, new_net, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
HALVES = ({0, 1}, {2, 3})


class PartitionProxy:
    """One listening port per ordered pair of validators, forwarding to the target's p2p
    port, with a switch that cuts every pair across the two halves."""

    def __init__(self, size: int, p2p_base: int, proxy_base: int) -> None:
        self.size = size
        self.p2p_base = p2p_base
        self.proxy_base = proxy_base
        self.cut = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._links: dict[tuple[int, int], set[asyncio.StreamWriter]] = {}

    def port(self, source: int, target: int) -> int:
        """The proxy port validator ``source`` dials to reach validator ``target``."""
        return self.proxy_base + source * self.size + target

    def crosses(self, source: int, target: int) -> bool:
        return any(source in half and target not in half for half in HALVES)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def partition(self) -> None:
        """Cut the halves apart: drop open connections across them and refuse new ones."""
        self.cut = True
        asyncio.run_coroutine_threadsafe(self._drop_crossing(), self._loop).result(10)

    def heal(self) -> None:
        self.cut = False

    async def _listen(self) -> None:
        for source in range(self.size):
            for target in range(self.size):
                if source == target:
                    continue
                self._links[(source, target)] = set()

                async def handle(
                    reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter,
                    pair: tuple[int, int] = (source, target),
                ) -> None:
                    await self._forward(pair, reader, writer)

                server = await asyncio.start_server(handle, "127.0.0.1", self.port(source, target))
                self._servers.append(server)

    async def _forward(
        self, pair: tuple[int, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.cut and self.crosses(*pair):
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.p2p_base + pair[1]
            )
        except OSError:
            writer.close()
            return
        links = self._links[pair]
        links.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65_536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        links.difference_update((writer, upstream_writer))

    async def _drop_crossing(self) -> None:
        for pair, links in self._links.items():
            if self.crosses(*pair):
                for writer in list(links):
                    writer.close()

    async def _close_all(self) -> None:
        for server in self._servers:
            server.close()
        for links in self._links.values():
            for writer in list(links):
                writer.close()


def route_through_proxy(net: Net, proxy: PartitionProxy) -> None:
    """Point every ``[[peers]]`` entry of every validator at the proxy of that pair."""
    for source in range(net.size):
        path = net.folder(source) / "node.toml"
        text = path.read_text(encoding="utf-8")
        for target in range(net.size):
            if target == source:
                continue
            pattern = re.compile(
                rf'(name = "node-{target}"\npublic_key = "[0-9a-f]+"\nhost = "127.0.0.1"\n'
                rf")port = {net.p2p_base + target}\n"
            )
            text, replaced = pattern.subn(rf"\g<1>port = {proxy.port(source, target)}\n", text)
            assert replaced == 1, f"node-{source}: no peer entry for node-{target}"
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def proxied_net(tmp_path: Path) -> Iterator[tuple[Net, PartitionProxy]]:
    proxy_base = free_port_block(VALIDATORS * VALIDATORS)
    with new_net(tmp_path / "net", VALIDATORS) as net:
        proxy = PartitionProxy(VALIDATORS, net.p2p_base, proxy_base)
        route_through_proxy(net, proxy)
        proxy.start()
        try:
            yield net, proxy
        finally:
            net.kill_all()
            proxy.stop()


def assert_no_fork(net: Net, nodes: list[int]) -> None:
    """Every height held by two or more of ``nodes`` has one block hash among them."""
    heads = {i: net.head(i) for i in nodes}
    top = max(heads.values())
    for height in range(max(1, top - 40), top + 1):
        holders = [i for i in nodes if heads[i] >= height]
        hashes = {net.block_hash(i, height) for i in holders}
        assert len(hashes) <= 1, f"fork at height {height}: {hashes}"


def test_partition_halts_without_fork_and_heals(
    proxied_net: tuple[Net, PartitionProxy],
) -> None:
    net, proxy = proxied_net
    started = time.monotonic()
    everyone = list(range(VALIDATORS))
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert result.code == 0, result
    wait_until("first blocks through the proxy", lambda: min(net.head(i) for i in everyone) >= 3)
    # Three validators commit without the fourth, and a node that started later syncs its
    # first blocks over the first link it has, while its other peers' dials still wait out
    # their backoff (up to BACKOFF_MAX_S): the links are polled for, not checked at once.
    wait_until(
        "every link through the proxy",
        lambda: all(net.status(i)["peers"] == VALIDATORS - 1 for i in everyone),
    )
    assert_agreement(net, everyone)

    proxy.partition()
    # Blocks already precommitted when the cut fell may still land; then nothing moves.
    time.sleep(1.5)
    halted = [net.head(i) for i in everyone]
    time.sleep(3.0)
    assert [net.head(i) for i in everyone] == halted, "committed without a quorum"
    assert max(halted) - min(halted) <= 1
    assert_no_fork(net, everyone)
    for index in everyone:
        assert net.status(index)["peers"] == 1

    proxy.heal()
    wait_until(
        "consensus resumes after the heal",
        lambda: min(net.head(i) for i in everyone) >= max(halted) + 3,
    )
    assert_agreement(net, everyone)
    assert_no_fork(net, everyone)
    print(f"partition test took {time.monotonic() - started:.1f} s")
