"""eth_call keeps the state it opened for a block and reuses it for the next calls on that
block (one per thread that runs calls); a kept state must never answer for another block.
Shown on a dev node with Anchor's counter (``total()``): a call after each new block sees that
block; calls at explicit numbers, hashes and tags see their block; after evm_revert (the dev
rewind) a call sees the snapshot's block, and a new block at a discarded height its own
state; calls running at once on the event loop and on the reader threads, at different blocks,
each answer for their own block."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from node_harness import (
    TOTAL_SELECTOR,
    RpcClient,
    anchor_call,
    make_chain,
    send_unlocked,
    unlocked_dev_node,
)

from contracts.artifacts import load_artifact

TOTAL_CALL = "0x" + TOTAL_SELECTOR.hex()


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def _slow_total(anchor: str, iterations: int) -> str:
    """Init code that counts down from ``iterations`` (past the event loop's budget, so the
    call moves to a reader thread), then returns ``anchor.total()`` read by STATICCALL."""
    assert 1 <= iterations < 1 << 16
    return (
        f"0x61{iterations:04x}"  # PUSH2 iterations
        "5b600190038060035750"  # JUMPDEST; PUSH1 1; SWAP1; SUB; DUP1; PUSH1 3; JUMPI; POP
        f"63{TOTAL_SELECTOR.hex()}60e01b600052"  # PUSH4 selector; PUSH1 224; SHL; MSTORE @0
        "6020600060046000"  # PUSH1 32; PUSH1 0; PUSH1 4; PUSH1 0
        f"73{anchor[2:]}5afa50"  # PUSH20 anchor; GAS; STATICCALL; POP
        "60206000f3"  # RETURN(0, 32)
    )


async def _deploy_anchor(client: RpcClient, admin: str) -> str:
    deployed = await send_unlocked(
        client, {"from": admin, "data": _hex(load_artifact("Anchor").bytecode)}
    )
    return str(deployed["contractAddress"])


async def _anchor(client: RpcClient, admin: str, anchor: str) -> dict[str, Any]:
    call = {"from": admin, "to": anchor, "data": _hex(anchor_call(os.urandom(32)))}
    return await send_unlocked(client, call)


async def _total(client: RpcClient, anchor: str, block: Any = "latest") -> str:
    return str(await client.call("eth_call", {"to": anchor, "data": TOTAL_CALL}, block))


def _run(tmp_path: Path, body: Any) -> None:
    chain = make_chain()
    admin = _hex(chain.deployer.public_key.address)

    async def main() -> None:
        async with unlocked_dev_node(chain, tmp_path) as (_, client):
            await body(client, admin)

    asyncio.run(main())


def test_a_call_after_each_new_block_sees_that_block(tmp_path: Path) -> None:
    async def body(client: RpcClient, admin: str) -> None:
        anchor = await _deploy_anchor(client, admin)
        assert await _total(client, anchor) == _word(0)
        for count in range(1, 4):
            await _anchor(client, admin, anchor)
            assert await _total(client, anchor) == _word(count)
            assert await _total(client, anchor, "pending") == _word(count)

    _run(tmp_path, body)


def test_calls_at_numbers_hashes_and_tags_see_their_block(tmp_path: Path) -> None:
    async def body(client: RpcClient, admin: str) -> None:
        anchor = await _deploy_anchor(client, admin)
        heights = {0: int(await client.call("eth_blockNumber"), 16)}
        hashes = {}
        for count in range(1, 4):
            receipt = await _anchor(client, admin, anchor)
            heights[count] = int(receipt["blockNumber"], 16)
            hashes[count] = receipt["blockHash"]
        # Back and forth between blocks, so every call finds another block's state kept.
        for count in (0, 3, 1, 2, 0, 2, 3, 1):
            assert await _total(client, anchor, hex(heights[count])) == _word(count)
            if count:
                by_hash = {"blockHash": hashes[count]}
                assert await _total(client, anchor, by_hash) == _word(count)
            assert await _total(client, anchor) == _word(3)
        assert await client.call("eth_call", {"to": anchor, "data": TOTAL_CALL}, "earliest") == "0x"

    _run(tmp_path, body)


def test_after_a_revert_calls_see_the_snapshot_and_then_the_new_blocks(tmp_path: Path) -> None:
    async def body(client: RpcClient, admin: str) -> None:
        anchor = await _deploy_anchor(client, admin)
        await _anchor(client, admin, anchor)
        height = int(await client.call("eth_blockNumber"), 16)

        # A revert right after a call on a later block: the next call sees the snapshot.
        snapshot = await client.call("evm_snapshot")
        await _anchor(client, admin, anchor)
        assert await _total(client, anchor) == _word(2)
        assert await client.call("evm_revert", snapshot) is True
        assert await _total(client, anchor) == _word(1)

        # A block made after a revert takes a discarded height with other contents: a call
        # there, after a call on the discarded block of that height, sees the new block.
        snapshot = await client.call("evm_snapshot")
        await _anchor(client, admin, anchor)
        assert await _total(client, anchor, hex(height + 1)) == _word(2)
        assert await client.call("evm_revert", snapshot) is True
        await send_unlocked(client, {"from": admin, "to": admin, "value": "0x0"})
        assert await client.call("eth_blockNumber") == hex(height + 1)
        assert await _total(client, anchor) == _word(1)
        assert await _total(client, anchor, hex(height + 1)) == _word(1)
        assert await _total(client, anchor, hex(height)) == _word(1)

    _run(tmp_path, body)


def test_calls_at_once_on_the_loop_and_the_readers_answer_for_their_block(
    tmp_path: Path,
) -> None:
    async def body(client: RpcClient, admin: str) -> None:
        anchor = await _deploy_anchor(client, admin)
        heights = {0: int(await client.call("eth_blockNumber"), 16)}
        for count in range(1, 4):
            heights[count] = int((await _anchor(client, admin, anchor))["blockNumber"], 16)
        slow = _slow_total(anchor, 3_000)
        requests = []
        expected = []
        for turn in range(24):
            # Slow calls on one block, running together on the reader threads (each creates
            # its contract at the same address: a state shared between them collides), and
            # short calls on the loop going from block to block meanwhile.
            if turn % 2:
                requests.append(client.call("eth_call", {"data": slow}, hex(heights[2])))
                expected.append(_word(2))
            else:
                count = turn // 2 % 4
                requests.append(_total(client, anchor, hex(heights[count])))
                expected.append(_word(count))
        assert list(await asyncio.gather(*requests)) == expected

    _run(tmp_path, body)
