"""A real node process (``lianxin init --dev`` + ``lianxin node start``) receives JSON nested
about 400,000 levels deep, sized to fit under its 1 MiB request limit so that only the depth
check can refuse it, over HTTP and over WebSocket. It answers -32600 each time and keeps
answering ``eth_blockNumber``."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from node.config import NodeConfig
from node.rpc.errors import ErrorCode

BOMB_LEVELS = 400_000
"""Levels of ``[`` (and as many ``]``): 800,000 bytes, under the default 1 MiB body limit."""


def _e2e_harness() -> ModuleType:
    """The end-to-end harness (real ``lianxin`` processes), shared with tests/e2e."""
    path = Path(__file__).parents[1] / "e2e" / "e2e_harness.py"
    spec = importlib.util.spec_from_file_location("e2e_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("e2e_harness", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def node_url(tmp_path: Path) -> Iterator[str]:
    """A dev chain's node running as its own process; killed when the test ends."""
    harness = _e2e_harness()
    root = tmp_path / "chain"
    port = harness.free_port()
    result = harness.run_cli("init", str(root), "--dev", "--rpc-port", str(port), "--json")
    assert result.code == 0, result
    chain = harness.DevChain(root=root, port=port, accounts=result.json()["accounts"])
    try:
        process = chain.start_foreground()
        yield chain.url
        assert process.poll() is None, "the node process died"
    finally:
        chain.kill_leftovers()


def _bomb() -> bytes:
    body = b"[" * BOMB_LEVELS + b"]" * BOMB_LEVELS
    assert len(body) < NodeConfig.max_request_bytes, "a bomb over the size limit proves nothing"
    return body


def _assert_too_deep(reply: dict[str, Any]) -> None:
    assert reply["error"]["code"] == ErrorCode.INVALID_REQUEST, reply
    assert reply["error"]["data"] == {"reason": "too_deep"}, reply


async def _block_number(session: aiohttp.ClientSession, url: str) -> int:
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    async with session.post(url, json=request) as response:
        return int((await response.json())["result"], 16)


async def _attack(url: str) -> None:
    bomb = _bomb()
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url, data=bomb, headers={"Content-Type": "application/json"}
        ) as response:
            _assert_too_deep(json.loads(await response.read()))
        assert await _block_number(session, url) >= 0

        async with session.ws_connect(url.rstrip("/") + "/ws") as socket:
            await socket.send_bytes(bomb)
            _assert_too_deep(json.loads(await socket.receive_str(timeout=30)))
            # The connection itself survives and keeps answering.
            await socket.send_str(
                json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []})
            )
            assert "result" in json.loads(await socket.receive_str(timeout=30))
        assert await _block_number(session, url) >= 0


def test_a_nesting_bomb_under_the_size_limit_is_refused_and_the_node_lives(node_url: str) -> None:
    asyncio.run(_attack(node_url))
