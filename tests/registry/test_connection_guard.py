"""What an unauthenticated connection may hold of a real registry process (``python -m registry``,
:mod:`registry.connection_guard` over :mod:`serving.connection_guard`), with small limits: a
request head must be complete within 0.5 s of the connection opening or of the previous
response, a request body has no such deadline, one non-loopback address holds at most 8
connections and the process at most 32. The server listens on every address for this module's
few seconds, so that the per-address limit can be tried from this host's own non-loopback
address (loopback clients are exempt from it); that test is skipped on a host with no such
address.

A request body's pace is tried on a second registry process, whose body must not go 0.5 s
without a byte nor fall behind 1,000 bytes a second after its first 0.5 s (its head deadline
is 5 s, so that the two are told apart), and on a server of the same protocol in this process
whose application takes its time before reading a body (flow control, ``100 Continue``)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import resource
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import uvicorn
from registry_harness import (
    TrustChain,
    free_port,
    registry_environment,
    registry_settings,
    start_registry,
)

from serving.connection_guard import (
    BODY_STALLED,
    BODY_TOO_SLOW,
    DESCRIPTOR_RESERVE,
    BodyPace,
    ConnectionCounts,
    ConnectionLimits,
    GuardedHttpToolsProtocol,
    connection_bound,
    descriptor_bound,
    is_loopback,
)

pytestmark = pytest.mark.no_database

HEADER_TIMEOUT_S = 0.5
PER_CLIENT = 8
IN_ALL = 32
LOOPBACK = "127.0.0.1"
ANSWER_WAIT_S = 5.0
"""How long a client waits for an answer or the end of its connection before failing."""
HALF_OPEN_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"
"""A request head that is never finished."""
PENDING_BODY_HEAD = (
    b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n"
)
"""A complete head whose 100-byte body is then sent slowly or never: the registry reads a
body before it answers, so the connection stays open past the head deadline."""
BODY = b"{" + b" " * 98 + b"}"
PACED_HEADER_TIMEOUT_S = 5.0
BODY_IDLE_S = 0.5
BODY_MIN_RATE = 1_000
"""Bytes a second of the second process's request bodies, after their first BODY_IDLE_S."""
CLOSE_WAIT_S = 5.0
"""How long a test waits for a body's connection to be closed: ten idle deadlines."""


@dataclass(frozen=True)
class Served:
    """The registry process under test."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def descriptors(self) -> int:
        """File descriptors the process has open now."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


@contextlib.contextmanager
def _registry_process(
    trust_chain: TrustChain, root: Path, *, every_address: bool, **limits: Any
) -> Iterator[Served]:
    """A registry process with ``limits`` as its settings, on loopback or every address,
    stopped at the end."""
    settings = registry_settings(trust_chain, root / "registry", None, **limits)
    port = free_port()
    environment = registry_environment(settings)
    if every_address:
        environment["LIANXIN_REGISTRY_HOST"] = "0.0.0.0"
    environment["LIANXIN_REGISTRY_PORT"] = str(port)
    process = start_registry(environment, root / "registry.log")
    try:
        yield Served(process, port, root / "registry.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def served(trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A registry process with the module's small limits, on every address."""
    root = tmp_path_factory.mktemp("connection-guard")
    with _registry_process(
        trust_chain,
        root,
        every_address=True,
        header_timeout_s=HEADER_TIMEOUT_S,
        max_connections_per_client=PER_CLIENT,
        max_connections=IN_ALL,
    ) as process:
        yield process
    assert "Too many open files" not in process.log.read_text()


@pytest.fixture(scope="module")
def paced(trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A registry process whose request bodies must keep BODY_IDLE_S and BODY_MIN_RATE, and
    whose head deadline is PACED_HEADER_TIMEOUT_S, on loopback."""
    with _registry_process(
        trust_chain,
        tmp_path_factory.mktemp("body-pace"),
        every_address=False,
        header_timeout_s=PACED_HEADER_TIMEOUT_S,
        body_idle_timeout_s=BODY_IDLE_S,
        body_min_rate_bytes_s=BODY_MIN_RATE,
    ) as process:
        yield process


def body_head(length: int, path: str = "/v1/records", *extra: bytes) -> bytes:
    """A complete ``POST`` head announcing a ``length``-byte body."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
        + b"".join(line + b"\r\n" for line in extra)
        + f"Content-Length: {length}\r\n\r\n".encode()
    )


def json_body(length: int) -> bytes:
    """A JSON object of ``length`` bytes (white space inside)."""
    return b"{" + b" " * (length - 2) + b"}"


def trickled_until_closed(sock: socket.socket, piece: bytes, interval_s: float) -> bool:
    """Whether the server closes ``sock`` within CLOSE_WAIT_S while ``piece`` is sent on it
    every ``interval_s``."""
    deadline = time.monotonic() + CLOSE_WAIT_S
    while time.monotonic() < deadline:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return True
        if closed_within(sock, interval_s):
            return True
    return False


def own_address() -> str | None:
    """A non-loopback IPv4 address of this host, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if is_loopback(address) or address == "0.0.0.0" else address


def connect(host: str, port: int, head: bytes = b"") -> socket.socket:
    """A connection to ``host`` (from that same address) on which ``head`` was sent."""
    sock = socket.create_connection((host, port), timeout=ANSWER_WAIT_S, source_address=(host, 0))
    if head:
        sock.sendall(head)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds``, sending nothing."""
    sock.settimeout(seconds)
    try:
        data = sock.recv(1)
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    assert not data, f"unexpected bytes: {data!r}"
    return True


def time_to_close(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (at most ANSWER_WAIT_S, else it fails)."""
    start = time.monotonic()
    assert closed_within(sock, ANSWER_WAIT_S), "the connection stayed open"
    return time.monotonic() - start


def answered(host: str, port: int) -> bool:
    """Whether ``GET /healthz`` sent from ``host`` on a new connection is answered 200
    (False: the connection is closed without an answer)."""
    try:
        with connect(host, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") as sock:
            data = sock.recv(64)
    except (ConnectionResetError, BrokenPipeError):
        return False
    if not data:
        return False
    assert data.startswith(b"HTTP/1.1 200 "), data
    return True


def eventually_answered(host: str, port: int) -> bool:
    """:func:`answered`, tried until ANSWER_WAIT_S passes (the server forgets closed
    connections as it reads their end)."""
    deadline = time.monotonic() + ANSWER_WAIT_S
    while time.monotonic() < deadline:
        if answered(host, port):
            return True
        time.sleep(0.05)
    return False


def get(connection: http.client.HTTPConnection) -> int:
    """The status of ``GET /healthz`` on ``connection`` (its body read)."""
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    return response.status


def test_a_head_never_finished_is_closed_at_its_deadline(served: Served) -> None:
    with connect(LOOPBACK, served.port, HALF_OPEN_HEAD) as late:
        start = time.monotonic()
        assert answered(LOOPBACK, served.port)
        elapsed = (time.monotonic() - start) + time_to_close(late)
    assert HEADER_TIMEOUT_S * 0.8 <= elapsed < HEADER_TIMEOUT_S + 2.0


def test_a_slow_body_is_not_under_the_head_deadline(served: Served) -> None:
    with connect(LOOPBACK, served.port, PENDING_BODY_HEAD) as sock:
        pieces = [BODY[i : i + 20] for i in range(0, len(BODY), 20)]
        for piece in pieces:
            time.sleep(HEADER_TIMEOUT_S * 0.6)
            sock.sendall(piece)
        # the body took 3 head deadlines; it is answered (401: the request is unsigned)
        sock.settimeout(ANSWER_WAIT_S)
        assert sock.recv(64).startswith(b"HTTP/1.1 401 ")


def test_one_address_holds_at_most_its_share(served: Served) -> None:
    address = own_address()
    if address is None:
        pytest.skip("this host has no non-loopback address to connect from")
    with contextlib.ExitStack() as stack:
        for _ in range(PER_CLIENT):
            stack.enter_context(connect(address, served.port, PENDING_BODY_HEAD))
        time.sleep(0.1)
        assert not answered(address, served.port)
        assert answered(LOOPBACK, served.port)
    assert eventually_answered(address, served.port)


def test_the_process_holds_at_most_its_connections_in_all(served: Served) -> None:
    pid = served.process.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    limit = 128  # room for 32 connections and the process's own files, not for the burst
    assert descriptor_bound(limit) >= IN_ALL
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
    try:
        with contextlib.ExitStack() as stack:
            for _ in range(IN_ALL):
                stack.enter_context(connect(LOOPBACK, served.port, PENDING_BODY_HEAD))
            time.sleep(0.1)
            assert not answered(LOOPBACK, served.port)
            burst = [connect(LOOPBACK, served.port, HALF_OPEN_HEAD) for _ in range(4 * limit)]
            most = served.descriptors()
            for sock in burst:
                assert closed_within(sock, ANSWER_WAIT_S)
                most = max(most, served.descriptors())
                sock.close()
            assert most < limit
            assert served.process.poll() is None
        assert eventually_answered(LOOPBACK, served.port)
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    assert "Too many open files" not in served.log.read_text()


def test_a_kept_alive_connection_has_a_deadline_for_its_next_head(served: Served) -> None:
    idle = http.client.HTTPConnection(LOOPBACK, served.port, timeout=ANSWER_WAIT_S)
    prompt = http.client.HTTPConnection(LOOPBACK, served.port, timeout=ANSWER_WAIT_S)
    started = http.client.HTTPConnection(LOOPBACK, served.port, timeout=ANSWER_WAIT_S)
    try:
        assert get(idle) == 200
        assert get(prompt) == 200
        assert get(started) == 200
        assert started.sock is not None
        started.sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # a head begun, never ended
        time.sleep(HEADER_TIMEOUT_S * 0.4)
        assert get(prompt) == 200  # its next request in time: served, on the same socket
        # uvicorn's own keep-alive timeout (5 s) would close ``idle`` only much later, and
        # ``started`` never
        assert idle.sock is not None
        assert time_to_close(idle.sock) < HEADER_TIMEOUT_S + 2.0
        assert time_to_close(started.sock) < HEADER_TIMEOUT_S + 2.0
    finally:
        for connection in (idle, prompt, started):
            connection.close()


def test_the_descriptor_bound_keeps_a_reserve() -> None:
    assert descriptor_bound(1024) == 1024 - DESCRIPTOR_RESERVE
    assert descriptor_bound(65536) == 65536 - DESCRIPTOR_RESERVE
    assert descriptor_bound(128) == 64
    assert descriptor_bound(1) == 1


def test_the_bound_in_all_is_the_lower_of_the_setting_and_the_open_file_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = ConnectionLimits(
        header_timeout_s=10,
        body_idle_timeout_s=30,
        body_min_rate_bytes_s=1024,
        max_connections_per_client=2,
        max_connections=4096,
    )
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    assert connection_bound(limits) == 768
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1 << 20, 1 << 20))
    assert connection_bound(limits) == 4096
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert connection_bound(limits) == 4096


def test_counts_by_address_leave_loopback_out() -> None:
    limits = ConnectionLimits(
        header_timeout_s=10,
        body_idle_timeout_s=30,
        body_min_rate_bytes_s=1024,
        max_connections_per_client=2,
        max_connections=5,
    )
    counts = ConnectionCounts()
    assert counts.admit("10.0.0.1", limits) is None
    assert counts.admit("10.0.0.1", limits) is None
    assert counts.admit("10.0.0.1", limits) is not None
    assert counts.admit("::ffff:127.0.0.1", limits) is None
    assert counts.admit("127.0.0.1", limits) is None
    assert counts.admit("::1", limits) is None
    assert counts.admit("10.0.0.2", limits) is not None  # five in all
    assert counts.by_client == {"10.0.0.1": 2}
    counts.release("10.0.0.1")
    counts.release("127.0.0.1")
    assert counts.admit("10.0.0.1", limits) is None
    for host in ("10.0.0.1", "10.0.0.1", "::ffff:127.0.0.1", "::1"):
        counts.release(host)
    assert counts.total == 0
    assert counts.by_client == {}


def test_a_body_trickled_below_its_minimum_rate_is_closed(paced: Served) -> None:
    with connect(LOOPBACK, paced.port, body_head(60_000)) as sock:
        # 50 bytes every 0.1 s: never near the idle deadline, but 500 bytes a second
        assert trickled_until_closed(sock, b" " * 50, 0.1)


def test_a_body_that_stops_is_closed_at_its_idle_deadline(paced: Served) -> None:
    with connect(LOOPBACK, paced.port, body_head(1_000) + b"{") as sock:
        assert closed_within(sock, CLOSE_WAIT_S)


def test_a_slow_steady_upload_above_the_minimum_rate_is_answered(paced: Served) -> None:
    body = json_body(10_000)
    with connect(LOOPBACK, paced.port, body_head(len(body))) as sock:
        # 500 bytes every 0.1 s: 2 s in all, four idle deadlines, at five times the rate
        for start in range(0, len(body), 500):
            time.sleep(0.1)
            sock.sendall(body[start : start + 500])
        sock.settimeout(ANSWER_WAIT_S)
        assert sock.recv(64).startswith(b"HTTP/1.1 401 ")  # unsigned, read whole


def test_a_request_sent_whole_is_answered(paced: Served) -> None:
    with connect(LOOPBACK, paced.port, body_head(len(BODY)) + BODY) as sock:
        assert sock.recv(64).startswith(b"HTTP/1.1 401 ")
    assert answered(LOOPBACK, paced.port)


def test_between_two_requests_the_body_pace_does_not_run(paced: Served) -> None:
    connection = http.client.HTTPConnection(LOOPBACK, paced.port, timeout=ANSWER_WAIT_S)
    try:
        connection.request(
            "POST", "/v1/records", body=BODY, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 401
        first = connection.sock
        assert first is not None
        # three idle deadlines of a body, within the head deadline and uvicorn's keep-alive
        time.sleep(BODY_IDLE_S * 3)
        assert get(connection) == 200
        assert connection.sock is first  # the same connection, kept alive
    finally:
        connection.close()


READ_AFTER_S = 2.0
"""How long the application of :func:`read_late` waits before it reads a body: four of its
idle deadlines."""


async def read_late(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI application that reads a request's body only READ_AFTER_S after its head,
    then answers the body's length."""
    await asyncio.sleep(READ_AFTER_S)
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    answer = str(received).encode()
    headers = [(b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


class LateReaderProtocol(GuardedHttpToolsProtocol):
    """The guarded protocol with a body's idle deadline of BODY_IDLE_S."""

    counts: ClassVar[ConnectionCounts] = ConnectionCounts()
    limits: ClassVar[ConnectionLimits | None] = ConnectionLimits(
        header_timeout_s=PACED_HEADER_TIMEOUT_S,
        body_idle_timeout_s=BODY_IDLE_S,
        body_min_rate_bytes_s=BODY_MIN_RATE,
        max_connections_per_client=PER_CLIENT,
        max_connections=IN_ALL,
    )


@pytest.fixture(scope="module")
def late_reader() -> Iterator[int]:
    """The port of a server of :func:`read_late` over :class:`LateReaderProtocol`, run by
    uvicorn on a thread of this process."""
    config = uvicorn.Config(
        read_late,
        host=LOOPBACK,
        port=free_port(),
        http=LateReaderProtocol,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + ANSWER_WAIT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield config.port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def answer_of(sock: socket.socket) -> bytes:
    """What the server sends on ``sock`` up to the end of an answer's body (its
    ``Content-Length``), or until it closes the connection."""
    sock.settimeout(READ_AFTER_S + ANSWER_WAIT_S)
    data = b""
    while True:
        head, ended, body = data.partition(b"\r\n\r\n")
        if ended:
            length = next(
                int(line.partition(b":")[2])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            if len(body) >= length:
                return data
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece


def test_a_body_the_application_does_not_read_yet_is_not_cut_off(late_reader: int) -> None:
    body = b"x" * (1 << 20)  # far more than uvicorn holds before it stops reading
    with connect(LOOPBACK, late_reader, body_head(len(body), "/")) as sock:
        sender = threading.Thread(target=sock.sendall, args=(body,))
        sender.start()
        answer = answer_of(sock)
        sender.join(timeout=ANSWER_WAIT_S)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.endswith(b"\r\n\r\n" + str(len(body)).encode())


def test_a_body_waiting_for_100_continue_is_not_cut_off(late_reader: int) -> None:
    body = b"x" * 1_000
    head = body_head(len(body), "/", b"Expect: 100-continue")
    with connect(LOOPBACK, late_reader, head) as sock:
        sock.settimeout(READ_AFTER_S + ANSWER_WAIT_S)
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"  # after READ_AFTER_S
        sock.sendall(body)
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.endswith(b"\r\n\r\n1000")


def test_a_body_that_stops_is_closed_though_the_application_has_not_read(
    late_reader: int,
) -> None:
    # uvicorn reads on (100 bytes wait for the application): the server waits for the client
    with connect(LOOPBACK, late_reader, body_head(100_000, "/") + b"x" * 100) as sock:
        assert closed_within(sock, CLOSE_WAIT_S)


def test_a_body_keeps_pace_by_its_waiting_time_only() -> None:
    limits = LateReaderProtocol.limits
    assert limits is not None
    pace = BodyPace(limits, 100.0, waiting=True)
    assert pace.left(100.0) == (BODY_IDLE_S, BODY_STALLED)
    pace.arrived(2_000, 100.4)  # the rate's deadline moves 2 s on
    assert pace.left(100.4) == pytest.approx((BODY_IDLE_S, BODY_STALLED))
    pace.pause(100.5)  # the application holds the connection: the clock stands still
    assert pace.left(150.0) == pytest.approx((BODY_IDLE_S - 0.1, BODY_STALLED))
    pace.resume(150.0)  # the idle deadline starts again
    assert pace.left(150.0) == pytest.approx((BODY_IDLE_S, BODY_STALLED))
    for second in range(1, 5):  # a byte every 0.4 s: never idle, soon too slow
        pace.arrived(1, 150.0 + 0.4 * second)
    left, late_for = pace.left(151.6)
    assert late_for == BODY_TOO_SLOW
    assert left == pytest.approx(BODY_IDLE_S + 2_004 / BODY_MIN_RATE - 2.1)
    unbounded = BodyPace(
        ConnectionLimits(
            header_timeout_s=1,
            body_idle_timeout_s=1,
            body_min_rate_bytes_s=0,
            max_connections_per_client=1,
            max_connections=1,
        ),
        0.0,
        waiting=True,
    )
    assert unbounded.left(0.5) == (0.5, BODY_STALLED)
