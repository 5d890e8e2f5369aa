"""Links across a node that was stopped and resumed (SIGSTOP and SIGCONT, or a process held
off the CPU): the process is modelled in-process by an event loop whose clock jumps and whose
next poll returns nothing, as Linux's epoll_wait does when a stopped process is continued
(it fails with EINTR, and by then its timeout has passed). The loop then serves its overdue
timers before it reads a socket, so the heartbeats run before the frames that arrived
meanwhile are read; a link is judged silent only once they had the chance."""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from chain.crypto import PrivateKey, sm3
from node.config import PeerConfig
from node.p2p import Network, TransportSettings

CHAIN_ID = 78
SETTINGS = TransportSettings(handshake_timeout_s=2.0, ping_interval_s=0.1, peer_timeout_s=0.5)
STOPPED_S = 1.5
"""How long the modelled process is stopped: three peer timeouts."""


class Clock:
    """``time.monotonic`` plus the time this process spent stopped."""

    def __init__(self) -> None:
        self.stopped = 0.0
        self.real = time.monotonic

    def __call__(self) -> float:
        return self.real() + self.stopped


class ResumableLoop(asyncio.SelectorEventLoop):
    """An event loop whose process can be stopped and resumed: :meth:`stop_process` moves
    the clock on and makes the next poll return no events, as a poll interrupted by the
    stop does."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(selectors.DefaultSelector())
        self.clock = clock
        self.polls_interrupted = 0
        poll = self._selector.select

        def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            if self.polls_interrupted:
                self.polls_interrupted -= 1
                return []
            return poll(timeout)

        self._selector.select = select  # type: ignore[method-assign]

    def stop_process(self, seconds: float) -> None:
        self.clock.stopped += seconds
        self.polls_interrupted = 1


@dataclass
class Link:
    low: Network
    high: Network
    loop: ResumableLoop

    def connections(self) -> tuple[object, object]:
        return (
            self.low._connections.get(self.high.own_key),
            self.high._connections.get(self.low.own_key),
        )

    def up(self) -> bool:
        return all(connection is not None for connection in self.connections())


def make_key(index: int) -> PrivateKey:
    return PrivateKey.from_bytes(sm3(b"p2p-reconnect" + bytes([index])))


def _network(key: PrivateKey, peer: PeerConfig) -> Network:
    return Network(
        key=key, chain_id=CHAIN_ID, peers=(peer,), host="127.0.0.1", port=0,
        max_frame_bytes=65_536, on_frame=lambda *frame: None, settings=SETTINGS,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def open_link() -> AsyncIterator[Link]:
    """Two endpoints on this loop; the lower key dials the higher."""
    low_key, high_key = sorted((make_key(1), make_key(2)), key=lambda k: k.public_key.to_bytes())
    high = _network(high_key, PeerConfig(low_key.public_key.to_bytes(), "127.0.0.1", 1, "low"))
    port = await high.start()
    low = _network(low_key, PeerConfig(high_key.public_key.to_bytes(), "127.0.0.1", port, "high"))
    await low.start()
    loop = asyncio.get_running_loop()
    assert isinstance(loop, ResumableLoop)
    try:
        await wait_for(lambda: low.connected() != [] and high.connected() != [])
        yield Link(low, high, loop)
    finally:
        await low.stop()
        await high.stop()


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def ticks(count: int) -> None:
    """Let ``count`` heartbeat periods pass."""
    await asyncio.sleep(count * SETTINGS.ping_interval_s)


def run_resumable(scenario: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    with asyncio.Runner(loop_factory=lambda: ResumableLoop(clock)) as runner:
        runner.run(scenario())  # type: ignore[arg-type]


def test_a_resumed_node_reads_its_peers_frames_before_judging_them_silent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        async with open_link() as link:
            await ticks(3)
            before = link.connections()
            link.loop.stop_process(STOPPED_S)
            # Both heartbeats wake long overdue, before either end read the PINGs and PONGs
            # that crossed when the process resumed; these answer and keep the link.
            await ticks(6)
            assert link.low.counters["peer_timeout"] == 0
            assert link.high.counters["peer_timeout"] == 0
            assert link.connections() == before

    run_resumable(scenario, monkeypatch)


def test_a_peer_still_silent_after_the_resume_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with open_link() as link:
            await ticks(3)
            # The high end stops reading and answering: its read loop and heartbeat end, and
            # nothing it sends reaches the low end any more.
            high_connection = link.high._connections[link.low.own_key]
            for task in high_connection.tasks:
                task.cancel()
            link.loop.stop_process(STOPPED_S)
            await wait_for(lambda: link.low.counters["peer_timeout"] >= 1)
            assert link.low._connections.get(link.high.own_key) is not high_connection

    run_resumable(scenario, monkeypatch)
