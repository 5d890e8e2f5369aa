"""Hostile input to the JSON-RPC server: random JSON, wrong parameter types, huge numbers,
oversize bodies and batches, invalid raw transactions. Every reply must be a JSON-RPC error
object with the right code (never an internal error), and the server must still answer
eth_blockNumber afterwards."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_harness import make_chain, make_config

from node.daemon import Node
from node.rpc.errors import ErrorCode

MAX_REQUEST_BYTES = 64 * 1024
MAX_BATCH = 20

SPEC_CODES = {
    ErrorCode.PARSE_ERROR,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.METHOD_NOT_FOUND,
    ErrorCode.INVALID_PARAMS,
}
# Codes a well-formed call with bad arguments may legitimately get (never INTERNAL_ERROR).
CALL_CODES = SPEC_CODES | {
    ErrorCode.NOT_FOUND,
    ErrorCode.LIMIT_EXCEEDED,
    ErrorCode.EXECUTION_REVERTED,
    ErrorCode.EXECUTION_TIMEOUT,
    *range(ErrorCode.TX_BAD_GAS_LIMIT, ErrorCode.TX_BAD_ENCODING + 1),
    ErrorCode.DEV_ONLY,
}


class ServerThread:
    """A node running on its own event loop in a background thread."""

    def __init__(self, data_dir: Path) -> None:
        chain = make_chain()
        config = make_config(
            data_dir, max_request_bytes=MAX_REQUEST_BYTES, max_batch=MAX_BATCH, receipt_wait_ms=0
        )
        self.node = Node(config, chain.genesis, chain.validator)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.node.start(), self.loop).result(30)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def post(self, body: bytes) -> tuple[int, Any]:
        """POST ``body`` on the keep-alive connection; (status, parsed reply or None)."""
        try:
            self.connection.request(
                "POST", "/", body=body, headers={"Content-Type": "application/json"}
            )
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            # The server may close a connection after an oversize body; reconnect once.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connection.request(
                "POST", "/", body=body, headers={"Content-Type": "application/json"}
            )
            response = self.connection.getresponse()
        text = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
        return response.status, (json.loads(text) if text else None)

    def call(self, method: str, params: Any) -> dict[str, Any]:
        status, reply = self.post(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        )
        assert status == 200
        assert isinstance(reply, dict)
        return reply

    def stop(self) -> None:
        self.connection.close()
        asyncio.run_coroutine_threadsafe(self.node.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = ServerThread(tmp_path_factory.mktemp("fuzz"))
    yield running
    running.stop()


def _assert_error(reply: Any, codes: set[int]) -> None:
    assert isinstance(reply, dict), reply
    assert reply.get("jsonrpc") == "2.0"
    assert "result" not in reply
    error = reply["error"]
    assert isinstance(error["message"], str)
    assert error["code"] in codes, reply


def _assert_alive(server: ServerThread) -> None:
    reply = server.call("eth_blockNumber", [])
    assert reply["result"].startswith("0x")


FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

hexish = st.one_of(
    st.text(alphabet="0123456789abcdefxX", max_size=80).map(lambda s: "0x" + s),
    st.integers(min_value=0, max_value=2**300).map(hex),
    st.sampled_from(["latest", "pending", "earliest", "0x", "0x-1", "", "0x" + "f" * 200]),
)
param_values = st.one_of(json_values, hexish, st.lists(hexish, max_size=4))


@FUZZ_SETTINGS
@given(body=json_values)
def test_random_json_is_never_a_valid_request(server: ServerThread, body: Any) -> None:
    status, reply = server.post(json.dumps(body).encode())
    assert status == 200
    if isinstance(body, list) and 0 < len(body) <= MAX_BATCH:
        assert isinstance(reply, list) and len(reply) == len(body)
        for item in reply:
            _assert_error(item, SPEC_CODES)
    else:
        _assert_error(reply, SPEC_CODES)


@FUZZ_SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_are_parse_errors(server: ServerThread, data: bytes) -> None:
    try:
        json.loads(data)
    except ValueError:
        is_json = False
    else:
        # Valid JSON that is not a request (``null``, ``1``) is -32600, not a parse error.
        is_json = True
    status, reply = server.post(data)
    assert status == 200
    if not is_json:
        _assert_error(reply, {ErrorCode.PARSE_ERROR})


@settings(FUZZ_SETTINGS, max_examples=400)
@given(data=st.data(), params=st.lists(param_values, max_size=4))
def test_wrong_params_never_cause_internal_errors(
    server: ServerThread, data: st.DataObject, params: list[Any]
) -> None:
    assert server.node.server is not None
    method = data.draw(st.sampled_from(sorted(server.node.server.api.table)))
    reply = server.call(method, params)
    if "error" in reply:
        _assert_error(reply, CALL_CODES)


@FUZZ_SETTINGS
@given(raw=st.binary(max_size=400))
def test_invalid_raw_transactions_are_refused(server: ServerThread, raw: bytes) -> None:
    reply = server.call("eth_sendRawTransaction", ["0x" + raw.hex()])
    _assert_error(reply, {ErrorCode.TX_BAD_ENCODING, ErrorCode.TX_OVERSIZE})


def test_huge_numbers(server: ServerThread) -> None:
    huge = 10**4000
    _status, reply = server.post(
        b'{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":['
        + str(huge).encode()
        + b"]}"
    )
    _assert_error(reply, {ErrorCode.PARSE_ERROR, ErrorCode.INVALID_PARAMS})
    for value in ["0x" + "f" * 65, hex(2**64), "0x1" + "0" * 63]:
        _assert_error(
            server.call("eth_getBlockByNumber", [value, False]), {ErrorCode.INVALID_PARAMS}
        )
    _assert_error(
        server.call("eth_getStorageAt", ["0x" + "11" * 20, "0x" + "f" * 65, "latest"]),
        {ErrorCode.INVALID_PARAMS},
    )
    assert server.call("eth_getBlockByNumber", [hex(2**63), False])["result"] is None
    _assert_alive(server)


def test_oversize_body_and_batches(server: ServerThread) -> None:
    big = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": ["x" * MAX_REQUEST_BYTES]}
    ).encode()
    status, reply = server.post(big)
    assert status == 413
    _assert_error(reply, {ErrorCode.INVALID_REQUEST})
    _assert_alive(server)

    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
    status, reply = server.post(json.dumps([request] * (MAX_BATCH + 1)).encode())
    _assert_error(reply, {ErrorCode.INVALID_REQUEST})
    status, reply = server.post(b"[]")
    _assert_error(reply, {ErrorCode.INVALID_REQUEST})
    status, reply = server.post(json.dumps([request] * MAX_BATCH).encode())
    assert len(reply) == MAX_BATCH and all("result" in item for item in reply)
    # Deep nesting is refused as an invalid request before parsing, not a crash.
    status, reply = server.post(b"[" * 50_000)
    _assert_error(reply, {ErrorCode.INVALID_REQUEST})
    assert reply["error"]["data"] == {"reason": "too_deep"}
    status, reply = server.post(b"[" * 5_000 + b"]" * 5_000)
    _assert_error(reply, {ErrorCode.INVALID_REQUEST})
    _assert_alive(server)


def test_spec_errors(server: ServerThread) -> None:
    _assert_error(server.call("no_such_method", []), {ErrorCode.METHOD_NOT_FOUND})
    _assert_error(server.call("eth_blockNumber", {"a": 1}), {ErrorCode.INVALID_PARAMS})
    _assert_error(server.call("eth_blockNumber", "x"), {ErrorCode.INVALID_REQUEST})
    _assert_error(server.call("eth_blockNumber", [1]), {ErrorCode.INVALID_PARAMS})
    status, reply = server.post(b'{"jsonrpc":"1.0","id":1,"method":"eth_blockNumber"}')
    _assert_error(reply, {ErrorCode.INVALID_REQUEST})
    status, reply = server.post(b'{"jsonrpc":"2.0","id":[1],"method":"eth_blockNumber"}')
    _assert_error(reply, {ErrorCode.INVALID_REQUEST})
    # A valid notification gets no reply at all.
    status, reply = server.post(b'{"jsonrpc":"2.0","method":"eth_blockNumber"}')
    assert status == 204 and reply is None
    _assert_error(server.call("eth_subscribe", ["newHeads"]), {ErrorCode.METHOD_NOT_FOUND})
    _assert_alive(server)
