"""The caps on what one JSON-RPC client may cost the node, each on a real server (in-process
node, real sockets): Host and Origin allow-lists (DNS rebinding), WebSocket connections in
total and per client address, subscriptions per connection, the per-client rate limit on
expensive methods, and the gas cap and wall-clock limit of eth_call / eth_estimateGas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from node_harness import RpcClient, RpcFailure, make_chain, make_config, running_node

from node.rpc.errors import ErrorCode
from node.rpc.rate_limit import RateLimiter, client_key

ENDLESS_INIT_CODE = "0x5b600056"
"""Init code that loops for ever (JUMPDEST; PUSH1 0; JUMP): an eth_call without ``to`` runs
it until its gas or its deadline ends it."""
POLL_TIMEOUT_S = 10.0


def _run(tmp_path: Path, body: Callable[[RpcClient, str], Awaitable[None]], **config: Any) -> None:
    """Run ``body(client, url)`` against a fresh node configured with ``config``."""

    async def main() -> None:
        chain = make_chain()
        async with running_node(chain, make_config(tmp_path, **config)) as (_, client):
            await body(client, client.url)

    asyncio.run(main())


async def _post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, Any]:
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    async with session.post(url, json=request, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def test_foreign_host_and_origin_are_refused(tmp_path: Path) -> None:
    async def body(client: RpcClient, url: str) -> None:
        session = client.session
        port = url.rsplit(":", 1)[1].rstrip("/")
        # DNS rebinding: the browser connects to 127.0.0.1 but names the attacker's host.
        status, reply = await _post(session, url, {"Host": f"evil.example:{port}"})
        assert status == 403 and reply["error"]["code"] == ErrorCode.FORBIDDEN
        status, reply = await _post(session, url, {"Origin": "https://evil.example"})
        assert status == 403 and reply["error"]["code"] == ErrorCode.FORBIDDEN
        status, reply = await _post(session, url, {"Origin": "null"})
        assert status == 403
        # The same for a WebSocket upgrade from a foreign page.
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url + "ws", headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403
        # Local pages, local host names and non-browser clients (no Origin) are served.
        for headers in (
            {"Origin": "http://localhost:3000"},
            {"Host": f"localhost:{port}"},
            {},
        ):
            status, reply = await _post(session, url, headers)
            assert status == 200 and "result" in reply, (headers, reply)

    _run(tmp_path, body)


def test_an_allow_list_admits_the_operators_names(tmp_path: Path) -> None:
    async def body(client: RpcClient, url: str) -> None:
        port = url.rsplit(":", 1)[1].rstrip("/")
        status, _ = await _post(
            client.session,
            url,
            {"Host": f"node.gov.example:{port}", "Origin": "https://explorer.gov.example"},
        )
        assert status == 200
        status, _ = await _post(client.session, url, {"Host": f"localhost:{port}"})
        assert status == 403
        # The address the server is bound to always names it.
        status, _ = await _post(client.session, url, {"Host": f"127.0.0.1:{port}"})
        assert status == 200

    _run(
        tmp_path,
        body,
        rpc_allowed_hosts=("node.gov.example",),
        rpc_allowed_origins=("explorer.gov.example",),
    )


async def _wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    deadline = asyncio.get_running_loop().time() + POLL_TIMEOUT_S
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_websocket_connections_are_capped_per_client_and_in_total(tmp_path: Path) -> None:
    async def body(client: RpcClient, url: str) -> None:
        session = client.session
        first = await session.ws_connect(url + "ws")
        second = await session.ws_connect(url + "ws")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url + "ws")
        assert refused.value.status == 429
        await first.close()

        async def accepted_again() -> bool:
            try:
                socket = await session.ws_connect(url + "ws")
            except aiohttp.WSServerHandshakeError:
                return False
            await socket.close()
            return True

        # A closed connection frees its place.
        await _wait_until(accepted_again)
        await second.close()

    _run(tmp_path, body, ws_max_connections_per_client=2)

    async def total(client: RpcClient, url: str) -> None:
        sockets = [await client.session.ws_connect(url + "ws") for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.session.ws_connect(url + "ws")
        assert refused.value.status == 503
        for socket in sockets:
            await socket.close()

    _run(tmp_path / "total", total, ws_max_connections=3)


def test_subscriptions_per_connection_are_capped(tmp_path: Path) -> None:
    async def body(client: RpcClient, url: str) -> None:
        async with client.session.ws_connect(url + "ws") as socket:
            replies = []
            for index in range(3):
                await socket.send_str(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": index,
                            "method": "eth_subscribe",
                            "params": ["newHeads"],
                        }
                    )
                )
                replies.append(json.loads(await socket.receive_str(timeout=10)))
            assert all("result" in reply for reply in replies[:2]), replies
            assert replies[2]["error"]["code"] == ErrorCode.LIMIT_EXCEEDED

    _run(tmp_path, body, ws_max_subscriptions=2)


def test_expensive_methods_are_rate_limited_per_client(tmp_path: Path) -> None:
    async def body(client: RpcClient, url: str) -> None:
        call = {"to": "0x" + "00" * 19 + "aa", "data": "0x"}
        for _ in range(3):
            await client.call("eth_call", call, "latest")
        with pytest.raises(RpcFailure) as limited:
            await client.call("eth_call", call, "latest")
        assert limited.value.code == ErrorCode.RATE_LIMITED
        assert limited.value.data["retryAfterMs"] > 0
        with pytest.raises(RpcFailure) as limited:
            await client.call("eth_getLogs", {"fromBlock": "0x0"})
        assert limited.value.code == ErrorCode.RATE_LIMITED
        # Cheap methods are not limited.
        assert int(await client.call("eth_blockNumber"), 16) >= 0

    # The loopback address is exempt by default; an empty list limits it like any client.
    _run(tmp_path, body, rate_limit_exempt=(), rate_limit_per_s=0.001, rate_limit_burst=3)


def test_token_buckets_refill_and_stay_bounded() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=2, exempt=frozenset({"10.0.0.9"}), max_clients=3)
    assert limiter.acquire("10.0.0.1", 0.0) is None
    assert limiter.acquire("10.0.0.1", 0.0) is None
    assert limiter.acquire("10.0.0.1", 0.0) == pytest.approx(0.5)
    assert limiter.acquire("10.0.0.1", 0.5) is None
    assert all(limiter.acquire("10.0.0.9", 0.0) is None for _ in range(10))
    for index in range(2, 50):
        limiter.acquire(f"10.0.0.{index}", 1.0 + index)
    assert len(limiter) == 3
    # One IPv6 host's /64 is one client; IPv4-mapped addresses are their IPv4 address.
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert client_key("::1") == "::1"


def test_a_call_past_its_deadline_is_stopped(tmp_path: Path) -> None:
    async def body(client: RpcClient, url: str) -> None:
        for method in ("eth_call", "eth_estimateGas"):
            with pytest.raises(RpcFailure) as stopped:
                await client.call(method, {"data": ENDLESS_INIT_CODE, "gas": hex(30_000_000)})
            assert stopped.value.code == ErrorCode.EXECUTION_TIMEOUT, stopped.value
            # Stopped part-way (30M gas of this 3-opcode loop is 7.5M steps, many seconds).
            assert 0 < stopped.value.data["steps"] < 30_000_000 // 4
        # The reader threads are free again: a call that ends on its own is answered.
        assert await client.call("eth_call", {"to": "0x" + "00" * 19 + "aa"}) == "0x"

    _run(tmp_path, body, gas_cap=30_000_000, call_timeout_ms=200)


def test_the_gas_cap_bounds_a_call_that_asks_for_more(tmp_path: Path) -> None:
    # The default: about 5 s of the cheapest-per-gas EVM loop on this kind of machine.
    assert make_config(tmp_path).gas_cap == 10_000_000

    async def body(client: RpcClient, url: str) -> None:
        # Asked for 30M gas, the call gets the 100,000 of the cap and runs out of it long
        # before the (default, seconds-long) deadline.
        with pytest.raises(RpcFailure) as failed:
            await client.call(
                "eth_estimateGas", {"data": ENDLESS_INIT_CODE, "gas": hex(30_000_000)}
            )
        assert failed.value.code == ErrorCode.EXECUTION_REVERTED

    _run(tmp_path, body, gas_cap=100_000)
