"""An answer's status line, headers and body leave in one write (uvicorn writes them as two):
the registry's server writes through :class:`registry.server.CoalescedWrites`, which holds the
small writes of one turn of the event loop and hands them to the socket together, in order,
before the connection closes; large writes go out at once, so flow control is as before."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn

from registry import server
from registry.server import COALESCED_WRITE_BYTES, CoalescedWrites, CoalescingHttpProtocol


class FakeTransport:
    """Records what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


def test_writes_of_one_turn_reach_the_socket_as_one_in_order() -> None:
    async def scenario() -> FakeTransport:
        transport = FakeTransport()
        writes = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writes.write(b"{}")
        assert transport.writes == []
        assert writes.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        writes.write(b"next")
        await asyncio.sleep(0)
        return transport

    assert asyncio.run(scenario()).writes[1:] == [b"next"]


def test_held_bytes_are_written_before_the_connection_closes() -> None:
    async def scenario() -> FakeTransport:
        transport = FakeTransport()
        writes = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"head")
        writes.write(b"body")
        writes.close()
        await asyncio.sleep(0)
        return transport

    transport = asyncio.run(scenario())
    assert transport.writes == [b"headbody"]
    assert transport.events == ["write", "close"]


def test_a_large_write_goes_out_at_once_after_what_was_held() -> None:
    async def scenario() -> FakeTransport:
        transport = FakeTransport()
        writes = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"head")
        large = b"x" * COALESCED_WRITE_BYTES
        writes.write(large)
        assert transport.writes == [b"head" + large]
        writes.write(large)
        assert transport.writes[1:] == [large]
        await asyncio.sleep(0)
        return transport

    assert len(asyncio.run(scenario()).writes) == 2


def test_nothing_is_written_to_an_aborted_connection() -> None:
    async def scenario() -> FakeTransport:
        transport = FakeTransport()
        writes = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"head")
        writes.abort()
        await asyncio.sleep(0)
        return transport

    assert asyncio.run(scenario()).events == ["abort"]


BODY = b'{"status":"ok"}'
LARGE = b"y" * (3 * COALESCED_WRITE_BYTES + 17)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    body = LARGE if scope["path"] == "/large" else BODY
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if scope["path"] == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def read_answer(connection: socket.socket, buffer: bytearray) -> bytes:
    """One answer's body (by its Content-Length)."""
    while b"\r\n\r\n" not in buffer:
        chunk = connection.recv(65536)
        assert chunk, "connection closed before the headers"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    buffer[:] = rest
    while len(buffer) < length:
        chunk = connection.recv(65536)
        assert chunk, "connection closed before the body"
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return body


def test_a_server_on_the_protocol_answers_keep_alive_pipelined_large_and_closing() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=CoalescingHttpProtocol, log_level="warning"
    )
    uvicorn_server = uvicorn.Server(config)

    def client() -> list[bytes]:
        bodies = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            buffer = bytearray()
            request = b"GET /%s HTTP/1.1\r\nhost: x\r\n\r\n"
            connection.sendall(request % b"a")
            bodies.append(read_answer(connection, buffer))
            connection.sendall(request % b"b" + request % b"large" + request % b"c")
            bodies += [read_answer(connection, buffer) for _ in range(3)]
            connection.sendall(request % b"close")
            bodies.append(read_answer(connection, buffer))
            assert connection.recv(1) == b""  # closed after its answer
        return bodies

    async def scenario() -> list[bytes]:
        serving = asyncio.create_task(uvicorn_server.serve())
        while not uvicorn_server.started:
            await asyncio.sleep(0.01)
        try:
            return await asyncio.to_thread(client)
        finally:
            uvicorn_server.should_exit = True
            await serving

    assert asyncio.run(scenario()) == [BODY, BODY, LARGE, BODY, BODY]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_registry_is_served_on_the_coalescing_protocol(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda *_, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(server, "create_app", lambda _settings: object())
    monkeypatch.setattr(server, "RegistrySettings", lambda: object())
    monkeypatch.setattr(server, "tune_interpreter", lambda: None)
    server.serve("127.0.0.1", 8600, workers=workers, log_level="warning")
    assert calls[0]["http"] is CoalescingHttpProtocol
