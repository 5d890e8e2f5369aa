"""The boundary on a real server process (uvicorn, started by the registry's own start
command): an unauthenticated 400,000-level nesting bomb is answered 422 and the process
lives on; a chunked body past the size limit is answered 413, not 400; a body refused for a
lone surrogate leaves its keep-alive connection usable for the next request."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from registry_harness import TrustChain, free_port, registry_environment, registry_settings
from test_license_e2e import registry_process

from chain.limits import MIB

BOMB_LEVELS = 400_000
SOCKET_TIMEOUT_S = 30.0


def read_answer(connection: http.client.HTTPConnection) -> tuple[int, Any]:
    response = connection.getresponse()
    body = response.read()
    return response.status, json.loads(body) if body else None


def chunked_post(port: int, path: str, total: int, chunk: int = 64 * 1024) -> tuple[int, Any]:
    """POST ``total`` bytes of JSON-looking data with Transfer-Encoding: chunked over a raw
    socket; the status and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        while sent < total:
            piece = b"1" * min(chunk, total - sent)
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}") or b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_real_server_survives_bombs_and_keeps_its_connections(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(
        trust_chain, tmp_path / "registry", database_url, max_upload_bytes=MIB
    )
    port = free_port()
    with registry_process(registry_environment(settings), port, tmp_path / "registry.log"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT_S)
        bomb = b"[" * BOMB_LEVELS + b"]" * BOMB_LEVELS
        assert len(bomb) < MIB
        for path in ("/v1/records", "/v1/verify", "/v1/licenses", "/v/x"):
            connection.request(
                "POST", path, body=bomb, headers={"Content-Type": "application/json"}
            )
            status, answer = read_answer(connection)
            assert status == 422, (path, answer)
            assert answer["error"]["code"] == "invalid_json"
            assert answer["error"]["details"]["reason"] == "too_deep"

        status, answer = chunked_post(port, "/v1/records", MIB + MIB // 2)
        assert status == 413, answer
        assert answer["error"]["code"] == "payload_too_large"

        surrogate = b'{"digest": "' + b"0" * 64 + b'", "metadata": {"x": "\\ud800"}}'
        connection.request(
            "POST", "/v1/records", body=surrogate, headers={"Content-Type": "application/json"}
        )
        status, answer = read_answer(connection)
        assert status == 422 and answer["error"]["details"]["reason"] == "lone_surrogate"
        kept = connection.sock
        connection.request("GET", "/healthz")
        assert read_answer(connection) == (200, {"status": "ok"})
        assert connection.sock is kept and kept is not None  # the same connection
        connection.request("GET", "/readyz")
        status, answer = read_answer(connection)
        assert status == 200 and answer["ready"], answer
        connection.close()
