"""Where eth_sendRawTransaction checks a transaction, on a real node (in-process, real
sockets): on the event loop when the pool is idle (one client sending one at a time waits
for no thread hand-off), on the reader pool when others are pending (several verify in
parallel); refusals are the same either way."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from node_harness import (
    DevChain,
    RpcClient,
    RpcFailure,
    make_chain,
    make_config,
    raw_hex,
    running_node,
    send_and_wait,
    signed_tx,
)

from node.rpc.errors import ErrorCode

TARGET = b"\x11" * 20


def _run(tmp_path: Path, body: Callable[[DevChain, RpcClient, list[str]], Awaitable[None]]) -> None:
    """Run ``body(chain, client, submitted)`` on a fresh node; ``submitted`` names, in order,
    each function the RPC layer handed to the node's reader pool."""

    async def main() -> None:
        chain = make_chain()
        async with running_node(chain, make_config(tmp_path)) as (node, client):
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
                await body(chain, client, submitted)
            finally:
                readers.submit = submit  # type: ignore[method-assign]

    asyncio.run(main())


def _checks(submitted: list[str]) -> int:
    return submitted.count("Mempool.check")


def test_one_at_a_time_is_checked_on_the_event_loop(tmp_path: Path) -> None:
    async def body(chain: DevChain, client: RpcClient, submitted: list[str]) -> None:
        for _ in range(3):
            receipt = await send_and_wait(client, signed_tx(chain.sender, to=TARGET, data=b""))
            assert receipt["status"] == "0x1"
        assert _checks(submitted) == 0

    _run(tmp_path, body)


def test_a_batch_is_checked_on_the_reader_pool_after_the_first(tmp_path: Path) -> None:
    async def body(chain: DevChain, client: RpcClient, submitted: list[str]) -> None:
        txs = [signed_tx(chain.sender, to=TARGET, data=b"") for _ in range(4)]
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw_hex(tx)]}
            for i, tx in enumerate(txs)
        ]
        _, replies = await client.post(json.dumps(batch))
        assert sorted(reply["result"] for reply in replies) == sorted(
            "0x" + tx.hash.hex() for tx in txs
        )
        # The first found the pool idle; the others found it pending.
        assert _checks(submitted) == len(txs) - 1
        for tx in txs:
            receipt = await client.call("eth_getTransactionReceipt", "0x" + tx.hash.hex())
            assert receipt is not None and receipt["status"] == "0x1"

    _run(tmp_path, body)


@pytest.mark.parametrize("pending", [False, True])
def test_a_forged_signature_is_refused_on_either_path(tmp_path: Path, pending: bool) -> None:
    async def body(chain: DevChain, client: RpcClient, submitted: list[str]) -> None:
        good = signed_tx(chain.sender, to=TARGET, data=b"")
        forged = dataclasses.replace(
            signed_tx(chain.sender, to=TARGET, data=b""), signature=good.signature
        )
        requests = [("eth_sendRawTransaction", raw_hex(forged))]
        if pending:
            requests.insert(0, ("eth_sendRawTransaction", raw_hex(good)))
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": [param]}
            for i, (method, param) in enumerate(requests)
        ]
        _, replies = await client.post(json.dumps(batch))
        refused = next(reply for reply in replies if reply["id"] == len(requests) - 1)
        assert refused["error"]["code"] == ErrorCode.TX_BAD_SIGNATURE, refused
        assert _checks(submitted) == (1 if pending else 0)
        with pytest.raises(RpcFailure):
            await client.call("eth_sendRawTransaction", "0x00")

    _run(tmp_path, body)
