"""The RPC server's bounds on connections, against half-open connections held to use up
the node's descriptors (each sends a request line and never finishes its head): one over the
bound per client address, or in all, is closed on arrival; one whose first request head has
not arrived in time is closed, however its bytes trickle in; a connection that asked and was
answered is kept alive and answered again; after the held ones close, a client is served.

And on request bodies, with a node whose bodies must not go 0.5 s without a byte nor fall
behind 1,000 bytes a second after their first 0.5 s: a body trickled below that rate, with
``Content-Length`` or chunked, and a body that stops are closed; a slow body that keeps the
pace is answered, and so is a second request after a pause between the two."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from node_harness import make_chain, make_config, running_node

from node.rpc import connections
from node.rpc.server import RpcServer

HALF_HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
"""A request line and one header, the head never finished."""
BLOCK_NUMBER = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
).encode()
REQUEST = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(BLOCK_NUMBER)).encode() + b"\r\n\r\n" + BLOCK_NUMBER
)


@asynccontextmanager
async def _node(tmp_path: Path, **bounds: Any) -> AsyncIterator[tuple[RpcServer, int]]:
    config = make_config(tmp_path, rate_limit_exempt=(), **bounds)
    async with running_node(make_chain(), config) as (node, _):
        server = node.server
        assert server.port is not None
        yield server, server.port


async def _held(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    held = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HALF_HEAD)
        await writer.drain()
        held.append((reader, writer))
    return held


async def _closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bool:
    """Whether the server closed the connection within ``within_s`` (EOF or a reset)."""
    try:
        return await asyncio.wait_for(reader.read(1), within_s) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> dict[str, Any]:
    writer.write(REQUEST)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    answer: dict[str, Any] = json.loads(await reader.readexactly(length))
    return answer


PACE = {"rpc_body_idle_timeout_s": 0.5, "rpc_body_min_rate_bytes_s": 1_000}
"""A request body's pace in the tests on bodies."""
CLOSE_WAIT_S = 5.0
"""How long a test waits for a body's connection to be closed: ten idle deadlines."""


def _body_head(length: int | None) -> bytes:
    """A complete JSON-RPC request head announcing a ``length``-byte body (None: chunked)."""
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n\r\n"
    )


async def _trickled_until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, piece: bytes, interval_s: float
) -> bool:
    """Whether the server closes the connection within CLOSE_WAIT_S while ``piece`` is sent
    on it every ``interval_s``."""
    deadline = time.monotonic() + CLOSE_WAIT_S
    while time.monotonic() < deadline:
        try:
            writer.write(piece)
            await writer.drain()
        except ConnectionError:
            return True
        if await _closed_by_server(reader, interval_s):
            return True
    return False


def _sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """``test`` run to its end on a loop of its own (its fixtures as its own arguments)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def _close(held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.1)


@_sync
async def test_a_connection_over_the_bound_per_client_is_closed_on_arrival(
    tmp_path: Path,
) -> None:
    async with _node(tmp_path, rpc_max_connections_per_client=4) as (server, port):
        held = await _held(port, 4)
        reader, _ = (await _held(port, 1))[0]
        assert await _closed_by_server(reader, 2.0)
        assert not await _closed_by_server(held[0][0], 0.2)
        assert server.connections.refused["per_client"] == 1
        assert server.connections.by_client["127.0.0.1"] == 4
        await _close(held)
        assert server.connections.open_total == 0
        answer = await _answer(*await asyncio.open_connection("127.0.0.1", port))
        assert answer["result"].startswith("0x")


@_sync
async def test_a_connection_over_the_bound_in_all_is_closed_on_arrival(tmp_path: Path) -> None:
    async with _node(tmp_path, rpc_max_connections=6) as (server, port):
        held = await _held(port, 6)
        reader, _ = (await _held(port, 1))[0]
        assert await _closed_by_server(reader, 2.0)
        assert server.connections.refused["total"] == 1
        await _close(held[:1])
        answer = await _answer(*await asyncio.open_connection("127.0.0.1", port))
        assert answer["result"].startswith("0x")
        await _close(held[1:])


@_sync
async def test_a_head_that_does_not_arrive_in_time_is_closed_however_it_trickles(
    tmp_path: Path,
) -> None:
    async with _node(tmp_path, rpc_head_timeout_s=0.5) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        asked_reader, asked_writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await _answer(asked_reader, asked_writer))["result"].startswith("0x")
        writer.write(b"POST / HTTP/1.1\r\n")
        closed = False
        for _ in range(20):  # a header byte every 0.1 s: 2 s in all, the deadline 0.5 s
            try:
                writer.write(b"X")
                await writer.drain()
            except ConnectionResetError:
                closed = True
                break
            if await _closed_by_server(reader, 0.1):
                closed = True
                break
        assert closed
        assert server.connections.refused["head_timeout"] == 1
        # The connection that asked in time is kept alive past the deadline, and answered.
        await asyncio.sleep(0.8)
        assert (await _answer(asked_reader, asked_writer))["result"].startswith("0x")
        asked_writer.close()


@_sync
async def test_the_bound_in_all_stays_within_the_open_file_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(connections.resource, "getrlimit", lambda _: (1_024, 4_096))
    assert connections.descriptor_bound() == 1_024 - connections.DESCRIPTOR_RESERVE
    async with _node(tmp_path) as (server, _):
        assert server.connections.max_connections == 1_024 - connections.DESCRIPTOR_RESERVE


@_sync
async def test_a_body_trickled_below_its_minimum_rate_is_closed(tmp_path: Path) -> None:
    async with _node(tmp_path, **PACE) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_body_head(60_000))
        # 20 bytes every 0.05 s: never near the idle deadline, but 400 bytes a second
        assert await _trickled_until_closed(reader, writer, b" " * 20, 0.05)
        refused = server.connections.refused
        assert refused["body_too_slow"] + refused["body_stalled"] == 1
        assert (await _answer(*await asyncio.open_connection("127.0.0.1", port)))["result"]


@_sync
async def test_a_chunked_body_trickled_below_its_minimum_rate_is_closed(tmp_path: Path) -> None:
    async with _node(tmp_path, **PACE) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_body_head(None))
        assert await _trickled_until_closed(reader, writer, b"14\r\n" + b" " * 20 + b"\r\n", 0.05)
        refused = server.connections.refused
        assert refused["body_too_slow"] + refused["body_stalled"] == 1


@_sync
async def test_a_body_that_stops_is_closed_at_its_idle_deadline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with _node(tmp_path, **PACE) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_body_head(1_000) + b"{")
        assert await _closed_by_server(reader, CLOSE_WAIT_S)
        assert server.connections.refused["body_stalled"] == 1
        await asyncio.sleep(0.1)
        assert server.connections.open_total == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@_sync
async def test_a_slow_steady_body_above_the_minimum_rate_is_answered(tmp_path: Path) -> None:
    body = BLOCK_NUMBER + b" " * (10_000 - len(BLOCK_NUMBER))
    async with _node(tmp_path, **PACE) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_body_head(len(body)))
        # 500 bytes every 0.1 s: 2 s in all, four idle deadlines, at five times the rate
        for start in range(0, len(body), 500):
            await asyncio.sleep(0.1)
            writer.write(body[start : start + 500])
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        assert not server.connections.refused
        writer.close()


@_sync
async def test_between_two_requests_the_body_pace_does_not_run(tmp_path: Path) -> None:
    async with _node(tmp_path, **PACE) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await _answer(reader, writer))["result"].startswith("0x")
        await asyncio.sleep(1.5)  # three idle deadlines of a body
        assert (await _answer(reader, writer))["result"].startswith("0x")
        assert not server.connections.refused
        writer.close()


def test_a_body_s_deadline_is_the_sooner_of_idle_and_rate() -> None:
    pace = connections.BodyPace(idle_timeout_s=0.5, min_rate_bytes_s=1_000)
    assert pace.deadline(100.0, 100.0, 0) == (100.5, "body_stalled")
    assert pace.deadline(100.0, 100.3, 2_000) == (100.8, "body_stalled")
    assert pace.deadline(100.0, 101.9, 1_200) == pytest.approx((101.7, "body_too_slow"))
    unbounded = connections.BodyPace(idle_timeout_s=0.5, min_rate_bytes_s=0)
    assert unbounded.deadline(100.0, 150.0, 0) == (150.5, "body_stalled")


@_sync
async def test_a_later_head_must_arrive_within_the_keepalive_deadline_however_it_trickles(
    tmp_path: Path,
) -> None:
    async with _node(tmp_path, rpc_keepalive_timeout_s=0.5) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await _answer(reader, writer))["result"].startswith("0x")
        # A second request's head, a header byte every 0.1 s: the keep-alive deadline runs
        # from the first answer and the bytes do not reset it.
        writer.write(b"POST / HTTP/1.1\r\nX")
        assert await _trickled_until_closed(reader, writer, b"X", 0.1)
        assert not server.connections.refused
        # A kept-alive connection that asks in time is answered again.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await _answer(reader, writer))["result"].startswith("0x")
        await asyncio.sleep(0.2)
        assert (await _answer(reader, writer))["result"].startswith("0x")
        writer.close()
