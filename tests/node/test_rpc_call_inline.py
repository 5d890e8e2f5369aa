"""eth_call's inline budget on a real node (in-process, real sockets): a short call is
answered on the event loop without the reader pool; one that outgrows the budget is rolled
back and run again on a reader thread, with the same answer a short one would give, and a
call that never ends is still stopped at the request's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from node_harness import RpcClient, RpcFailure, make_chain, make_config, running_node

from chain.execution.evm import INTERRUPT_CHECK_CHARGES
from node.rpc.errors import ErrorCode

ENDLESS_INIT_CODE = "0x5b600056"
"""JUMPDEST; PUSH1 0; JUMP: runs until its gas or its deadline ends it."""


def counting_loop(iterations: int) -> str:
    """Init code that counts down from ``iterations`` (six opcodes a turn), then returns
    the word 42."""
    assert 1 <= iterations < 1 << 16
    return (
        f"0x61{iterations:04x}"  # PUSH2 iterations
        "5b600190038060035760"  # JUMPDEST; PUSH1 1; SWAP1; SUB; DUP1; PUSH1 3; JUMPI; PUSH1
        "2a60005260206000f3"  # 42; PUSH1 0; MSTORE; PUSH1 32; PUSH1 0; RETURN
    )


FORTY_TWO = "0x" + "00" * 31 + "2a"


def _run(
    tmp_path: Path,
    body: Callable[[RpcClient, list[str]], Awaitable[None]],
    **config: Any,
) -> None:
    """Run ``body(client, submitted)`` on a fresh node; ``submitted`` names, in order, each
    function the RPC layer handed to the node's reader pool."""

    async def main() -> None:
        async with running_node(make_chain(), make_config(tmp_path, **config)) as (node, client):
            submitted: list[str] = []
            readers: Executor = node._readers
            submit = readers.submit

            def counting_submit(
                fn: Callable[..., Any], /, *args: Any, **kwargs: Any
            ) -> Future[Any]:
                submitted.append(getattr(fn, "__qualname__", repr(fn)))
                return submit(fn, *args, **kwargs)

            readers.submit = counting_submit  # type: ignore[method-assign]
            try:
                await body(client, submitted)
            finally:
                readers.submit = submit  # type: ignore[method-assign]

    asyncio.run(main())


def _calls(submitted: list[str]) -> list[str]:
    return [name for name in submitted if "eth_call" in name]


def test_a_short_call_is_answered_on_the_event_loop(tmp_path: Path) -> None:
    async def body(client: RpcClient, submitted: list[str]) -> None:
        assert await client.call("eth_call", {"to": "0x" + "00" * 19 + "aa"}) == "0x"
        assert await client.call("eth_call", {"data": counting_loop(3)}) == FORTY_TWO
        assert _calls(submitted) == []

    _run(tmp_path, body)


@pytest.mark.parametrize("iterations", [INTERRUPT_CHECK_CHARGES, 5_000])
def test_a_call_beyond_the_inline_budget_moves_to_a_reader(tmp_path: Path, iterations: int) -> None:
    async def body(client: RpcClient, submitted: list[str]) -> None:
        assert await client.call("eth_call", {"data": counting_loop(iterations)}) == FORTY_TWO
        assert len(_calls(submitted)) == 1
        # The state the inline run touched was rolled back: a short call still agrees.
        assert await client.call("eth_call", {"data": counting_loop(1)}) == FORTY_TWO
        assert len(_calls(submitted)) == 1

    _run(tmp_path, body)


def test_an_endless_call_still_stops_at_its_deadline(tmp_path: Path) -> None:
    async def body(client: RpcClient, submitted: list[str]) -> None:
        with pytest.raises(RpcFailure) as stopped:
            await client.call("eth_call", {"data": ENDLESS_INIT_CODE, "gas": hex(30_000_000)})
        assert stopped.value.code == ErrorCode.EXECUTION_TIMEOUT, stopped.value
        assert INTERRUPT_CHECK_CHARGES < stopped.value.data["steps"] < 30_000_000 // 4
        assert len(_calls(submitted)) == 1

    _run(tmp_path, body, gas_cap=30_000_000, call_timeout_ms=200)
