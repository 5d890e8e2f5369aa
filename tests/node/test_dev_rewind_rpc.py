"""evm_snapshot / evm_revert across committed blocks through JSON-RPC, as Hardhat suites use
them: after a revert every read (blocks by number and hash, transactions, receipts, logs,
filters, balances, nonces, code, calls at a block tag, the block clock) answers as at the
snapshot, new blocks take the discarded heights with other hashes, the pool is emptied, used
ids answer false; and a node that is not a dev chain refuses and keeps its blocks."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import aiohttp
import lmdb
import pytest
from node_harness import (
    TOTAL_SELECTOR,
    RpcClient,
    RpcFailure,
    anchor_call,
    make_chain,
    make_config,
    running_node,
    send_unlocked,
    signed_tx,
    unlocked_dev_node,
)

from chain.crypto import PrivateKey
from chain.primitives import Address
from chain.validation import TxRules
from contracts.artifacts import load_artifact
from node.ledger import Ledger
from node.mempool import Mempool, Outcome, Permissions
from node.rpc.errors import ErrorCode
from node.storage import keys
from node.verify import verify_chain

TOTAL_CALL = "0x" + TOTAL_SELECTOR.hex()


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


async def _refused(client: RpcClient, code: int, method: str, *params: Any) -> RpcFailure:
    with pytest.raises(RpcFailure) as caught:
        await client.call(method, *params)
    assert caught.value.code == code, caught.value
    return caught.value


def test_revert_across_blocks_then_continue(tmp_path: Path) -> None:
    chain = make_chain()
    admin = _hex(chain.deployer.public_key.address)
    receiver = _hex(chain.outsider.public_key.address)

    async def run() -> None:
        async with unlocked_dev_node(chain, tmp_path) as (_, client):
            deployed = await send_unlocked(
                client, {"from": admin, "data": _hex(load_artifact("Anchor").bytecode)}
            )
            anchor = deployed["contractAddress"]
            await send_unlocked(client, {"from": admin, "to": receiver, "value": "0x5"})
            snapshot = await client.call("evm_snapshot")
            at_snapshot = await client.call("eth_getBlockByNumber", "latest", False)
            height = int(at_snapshot["number"], 16)
            nonce = await client.call("eth_getTransactionCount", admin, "latest")
            total = await client.call("eth_call", {"to": anchor, "data": TOTAL_CALL}, "latest")
            blocks = await client.call("eth_newBlockFilter")
            logs = await client.call("eth_newFilter", {"address": anchor})
            shift = await client.call("evm_increaseTime", 3600)

            # Several blocks: anchors (logs), a transfer, a contract deployed, an empty one.
            sent = []
            for _ in range(3):
                call = {"from": admin, "to": anchor, "data": _hex(anchor_call(os.urandom(32)))}
                sent.append(await send_unlocked(client, call))
            sent.append(
                await send_unlocked(client, {"from": admin, "to": receiver, "value": "0x7"})
            )
            again = await send_unlocked(
                client, {"from": admin, "data": _hex(load_artifact("Anchor").bytecode)}
            )
            await client.call("evm_mine")
            discarded = [
                await client.call("eth_getBlockByNumber", hex(h), False)
                for h in range(height + 1, height + 7)
            ]
            assert len(await client.call("eth_getFilterChanges", logs)) == 3

            assert await client.call("evm_revert", snapshot) is True

            assert await client.call("eth_blockNumber") == hex(height)
            assert await client.call("eth_getBlockByNumber", "latest", False) == at_snapshot
            assert await client.call("eth_getBalance", receiver, "latest") == "0x5"
            assert await client.call("eth_getTransactionCount", admin, "latest") == nonce
            assert await client.call("eth_getCode", again["contractAddress"], "latest") == "0x"
            assert await client.call("eth_getCode", anchor, "latest") != "0x"
            for tag in ("latest", hex(height)):
                call = {"to": anchor, "data": TOTAL_CALL}
                assert await client.call("eth_call", call, tag) == total
            await _refused(client, ErrorCode.NOT_FOUND, "eth_call", {"to": anchor}, hex(height + 1))
            gone = {"blockHash": discarded[0]["hash"]}
            await _refused(client, ErrorCode.NOT_FOUND, "eth_call", {"to": anchor}, gone)
            for block in discarded:
                assert await client.call("eth_getBlockByHash", block["hash"], False) is None
                assert await client.call("eth_getBlockByNumber", block["number"], False) is None
                await _refused(
                    client, ErrorCode.NOT_FOUND, "eth_getLogs", {"blockHash": block["hash"]}
                )
            for receipt in sent:
                tx_hash = receipt["transactionHash"]
                assert await client.call("eth_getTransactionByHash", tx_hash) is None
                assert await client.call("eth_getTransactionReceipt", tx_hash) is None
            assert await client.call("eth_getLogs", {"fromBlock": "0x0", "address": anchor}) == []
            # The block clock's shift is as it was at the snapshot.
            assert await client.call("evm_increaseTime", 0) == shift - 3600
            # Used: that id and every later one.
            assert await client.call("evm_revert", snapshot) is False

            # New blocks at the discarded heights, with other hashes; filters report them.
            replay = {"from": admin, "to": anchor, "data": _hex(anchor_call(b"\x01" * 32))}
            landed = await send_unlocked(client, replay)
            assert int(landed["blockNumber"], 16) == height + 1
            assert landed["blockHash"] != discarded[0]["hash"]
            assert await client.call("eth_getFilterChanges", blocks) == [landed["blockHash"]]
            changes = await client.call("eth_getFilterChanges", logs)
            assert [c["blockHash"] for c in changes] == [landed["blockHash"]]
            found = await client.call("eth_getLogs", {"fromBlock": hex(height + 1)})
            assert [entry["transactionHash"] for entry in found] == [landed["transactionHash"]]
            assert await client.call("eth_getTransactionCount", admin, "latest") == hex(
                int(nonce, 16) + 1
            )

            # Nested snapshots, reverted to the outer one: the inner one is used up too.
            outer = await client.call("evm_snapshot")
            await client.call("evm_mine")
            inner = await client.call("evm_snapshot")
            await client.call("evm_mine")
            assert await client.call("evm_revert", outer) is True
            assert await client.call("evm_revert", inner) is False
            assert await client.call("eth_blockNumber") == hex(height + 1)
            await _refused(client, ErrorCode.INVALID_PARAMS, "evm_revert", "not an id")

    asyncio.run(run())


def test_revert_empties_the_pool() -> None:
    chain = make_chain()
    pool = Mempool(
        TxRules(2024),
        Permissions.from_genesis(chain.genesis),
        capacity=10,
        nonce_committed=lambda nonce: False,
        next_height=lambda: 1,
    )
    txs = [signed_tx(chain.deployer, to=Address(b"\x05" * 20), data=b"") for _ in range(3)]
    for tx in txs:
        pool.add(tx)
    taken = pool.take(1)

    async def dropped() -> list[Outcome]:
        waiters = [pool.waiter(tx.hash) for tx in txs]
        assert all(w is not None for w in waiters)
        assert sorted(t.hash for t in pool.drop_all("reverted")) == sorted(t.hash for t in txs)
        return [await w for w in waiters if w is not None]

    outcomes = asyncio.run(dropped())
    assert outcomes == [Outcome(None, "reverted")] * 3
    assert len(pool) == 0 and pool.get(taken[0].hash) is None
    # Their replay nonces are free again.
    pool.add(txs[0])


def test_a_node_that_is_not_a_dev_chain_refuses_and_keeps_its_blocks(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (node, client):
            tx = signed_tx(chain.deployer, to=Address(b"\x05" * 20), data=b"")
            await client.call("eth_sendRawTransaction", _hex(tx.encode()))
            for _ in range(100):
                if await client.call("eth_getTransactionReceipt", _hex(tx.hash)):
                    break
                await asyncio.sleep(0.02)
            head = await client.call("eth_getBlockByNumber", "latest", False)
            assert head["number"] != "0x0"
            for method, params in (("evm_snapshot", []), ("evm_revert", ["0x1"])):
                failure = await _refused(client, ErrorCode.DEV_ONLY, method, *params)
                assert failure.message is not None and "dev chain" in failure.message
            assert await client.call("eth_getBlockByNumber", "latest", False) == head
            assert node.ledger is not None and node.ledger.store.head() is not None
            assert node.ledger.store.head().hash.hex() == head["hash"][2:]  # type: ignore[union-attr]

    asyncio.run(run())


def test_subscriptions_announce_the_blocks_after_a_revert(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with (
            unlocked_dev_node(chain, tmp_path) as (node, client),
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://127.0.0.1:{node.port}/ws") as socket,
        ):
            await socket.send_json(
                {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
            )
            assert (await socket.receive_json())["id"] == 1
            snapshot = await client.call("evm_snapshot")
            await client.call("evm_mine")
            await client.call("evm_mine")
            assert await client.call("evm_revert", snapshot) is True
            await client.call("evm_mine")
            heads = []
            while len(heads) < 3:
                message = await asyncio.wait_for(socket.receive_json(), 10)
                heads.append(message["params"]["result"])
            assert [h["number"] for h in heads] == ["0x1", "0x2", "0x1"]
            assert heads[2]["hash"] != heads[0]["hash"]
            latest = await client.call("eth_getBlockByNumber", "latest", False)
            assert latest["hash"] == heads[2]["hash"]

    asyncio.run(run())


def _raw_counts(path: Path) -> dict[bytes, int]:
    env = lmdb.open(str(path), readonly=True, max_dbs=len(keys.SUB_DATABASES), lock=True)
    try:
        with env.begin() as txn:
            return {
                name: txn.stat(env.open_db(name, txn=txn, create=False))["entries"]
                for name in keys.SUB_DATABASES
            }
    finally:
        env.close()


def test_reverts_while_blocks_are_produced_leave_a_whole_chain(tmp_path: Path) -> None:
    """Reverts race the producer (an empty block every 20 ms, transactions streaming in): each
    answers true, and the stored chain verifies with every index counting its blocks only."""
    chain = make_chain()
    rng = random.Random(5)

    async def run() -> None:
        async with unlocked_dev_node(chain, tmp_path, block_interval_ms=20) as (_, client):
            stop = asyncio.Event()

            async def stream() -> None:
                while not stop.is_set():
                    tx = signed_tx(chain.deployer, to=Address(b"\x05" * 20), data=b"", value=1)
                    await client.call("eth_sendRawTransaction", _hex(tx.encode()))
                    await asyncio.sleep(0.005)

            sender = asyncio.ensure_future(stream())
            try:
                for _ in range(15):
                    snapshot = await client.call("evm_snapshot")
                    await asyncio.sleep(rng.uniform(0.0, 0.15))
                    assert await client.call("evm_revert", snapshot) is True
            finally:
                stop.set()
                await sender

    asyncio.run(run())
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    try:
        assert verify_chain(ledger.store, chain.genesis) is None
        head = ledger.head.height
        txs = logs = 0
        for height in range(head + 1):
            found = ledger.block_and_receipts(height)
            assert found is not None
            block, receipts = found
            txs += len(block.transactions)
            logs += sum(len(r.logs) for r in receipts)
            for index, tx in enumerate(block.transactions):
                location = ledger.store.tx_location(tx.hash)
                assert location is not None and (location.height, location.index) == (height, index)
    finally:
        ledger.close()
    counts = _raw_counts(tmp_path / "blocks")
    assert counts[keys.BLOCKS] == counts[keys.HASH_INDEX] == head + 1
    assert counts[keys.TX_INDEX] == counts[keys.NONCE_INDEX] == txs
    assert counts[keys.LOGS] == logs


def test_a_rewind_the_ledger_refuses_answers_32023_and_changes_nothing(tmp_path: Path) -> None:
    """The ledger's own guard stands behind the RPC one: a node signing with a key the
    chain's validator set does not hold (as after an unfinished key rotation) may not rewind."""
    chain = make_chain()

    async def run() -> None:
        async with unlocked_dev_node(chain, tmp_path) as (node, client):
            snapshot = await client.call("evm_snapshot")
            await client.call("evm_mine")
            head = await client.call("eth_getBlockByNumber", "latest", False)
            assert node.ledger is not None
            node.ledger.use_validator_key(PrivateKey.generate())
            failure = await _refused(client, ErrorCode.REVERT_REFUSED, "evm_revert", snapshot)
            assert failure.message is not None and "not the chain's validator" in failure.message
            assert await client.call("eth_getBlockByNumber", "latest", False) == head
            assert node.ledger.store.head() == node.ledger.head
            # The snapshot was not used up: with the validator's key back, the revert goes.
            node.ledger.use_validator_key(chain.validator)
            assert await client.call("evm_revert", snapshot) is True
            assert await client.call("eth_blockNumber") == "0x0"

    asyncio.run(run())
