"""Receipts answered from where the producer says a transaction was committed
(node.rpc.receipt_index) are the receipts the store's index gives; a position that no longer
holds the transaction (a rewound block) or a block above the head falls back to the index,
and a wait that times out still answers from the store."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from node_harness import (
    anchor_call,
    ledger_mempool,
    make_chain,
    make_config,
    raw_hex,
    running_node,
    send_and_wait,
    signed_tx,
)

from chain.primitives import Address
from contracts.artifacts import load_artifact
from node.ledger import Ledger
from node.rpc.context import RpcContext
from node.rpc.eth_methods import EthMethods
from node.rpc.receipt_index import ReceiptIndex


def test_receipts_waited_for_match_those_read_afterwards(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            deployed = await send_and_wait(
                client, signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
            )
            anchor = Address(bytes.fromhex(deployed["contractAddress"][2:]))
            txs = [
                signed_tx(chain.sender, to=anchor, data=anchor_call(i.to_bytes(32, "big")))
                for i in range(40)
            ]
            batch = [
                {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
                for i, raw in enumerate(raw_hex(tx) for tx in txs)
            ]
            status, _ = await client.post(json.dumps(batch))
            assert status == 200
            hashes = ["0x" + tx.hash.hex() for tx in txs]
            waited = await asyncio.gather(
                *(client.call("eth_getTransactionReceipt", h) for h in hashes)
            )
            assert all(r is not None and r["status"] == "0x1" for r in waited)
            # Several transactions per block, so positions and running sums past the first.
            assert len({r["blockNumber"] for r in waited}) < len(txs)
            assert any(int(r["transactionIndex"], 16) > 0 for r in waited)
            read = [await client.call("eth_getTransactionReceipt", h) for h in hashes]
            assert waited == read
            for number in sorted({r["blockNumber"] for r in waited}):
                for receipt in await client.call("eth_getBlockReceipts", number):
                    if receipt["transactionHash"] in hashes:
                        assert receipt == read[hashes.index(receipt["transactionHash"])]

    asyncio.run(run())


def test_a_stale_or_unknown_position_falls_back_to_the_index(tmp_path: Path) -> None:
    chain = make_chain()
    ledger = Ledger.open(tmp_path / "data", chain.genesis, chain.validator)
    try:
        index = ReceiptIndex(ledger)
        deployed = ledger.produce_block(
            [signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)], 0
        )
        anchor = deployed.receipts[0].contract_address
        assert anchor is not None
        txs = [
            signed_tx(chain.sender, to=anchor, data=anchor_call(bytes([i]) * 32)) for i in range(3)
        ]
        block = ledger.produce_block(txs, 0).block
        height = block.header.height
        for position, tx in enumerate(txs):
            found = index.lookup(tx.hash, height, position)
            assert found == ledger.lookup_transaction(tx.hash)
            assert found is not None and found.first_log_index == position
            assert index.cumulative_gas(found) == sum(
                r.gas_used
                for r in ledger.block_and_receipts(height)[1][: position + 1]  # type: ignore[index]
            )
        # A wrong position or a height above the head: the index answers.
        assert index.lookup(txs[2].hash, height, 0) == ledger.lookup_transaction(txs[2].hash)
        assert index.lookup(txs[0].hash, height + 5, 0) == ledger.lookup_transaction(txs[0].hash)
        # Rewound: the position now names another block's transaction, or nothing.
        ledger.rewind_dev(height - 1)
        other = signed_tx(chain.sender, to=anchor, data=anchor_call(b"\x09" * 32))
        ledger.produce_block([other], 0)
        assert index.lookup(txs[0].hash, height, 0) is None
        assert index.lookup(other.hash, height, 0) == ledger.lookup_transaction(other.hash)
    finally:
        ledger.close()


def test_a_wait_that_times_out_answers_from_the_store(tmp_path: Path) -> None:
    chain = make_chain()
    ledger = Ledger.open(tmp_path / "data", chain.genesis, chain.validator)

    async def run() -> None:
        mempool = ledger_mempool(ledger)
        with ThreadPoolExecutor(1) as readers:
            context = RpcContext(
                ledger, mempool, make_config(tmp_path, receipt_wait_ms=50), readers, list
            )
            methods = EthMethods(context)
            tx = signed_tx(chain.sender, to=Address(b"\x42" * 20), data=b"")
            mempool.add(mempool.check(tx.encode()))
            # Committed without the pool being told: the wait ends, the store answers.
            ledger.produce_block([tx], 0)
            receipt = await methods.eth_get_transaction_receipt(["0x" + tx.hash.hex()])
            assert receipt is not None and receipt["status"] == "0x1"
            unknown = signed_tx(chain.sender, to=Address(b"\x42" * 20), data=b"")
            assert await methods.eth_get_transaction_receipt(["0x" + unknown.hash.hex()]) is None

    try:
        asyncio.run(run())
    finally:
        ledger.close()


def test_a_receipt_wait_that_ends_unanswered_leaves_no_waiter(tmp_path: Path) -> None:
    """A receipt request that times out, or whose client goes away (the request is
    cancelled), is forgotten by the pool at once; the transaction still commits and the
    waiters that remain are answered."""
    chain = make_chain()
    ledger = Ledger.open(tmp_path / "data", chain.genesis, chain.validator)

    async def run() -> None:
        mempool = ledger_mempool(ledger)
        with ThreadPoolExecutor(1) as readers:
            context = RpcContext(
                ledger, mempool, make_config(tmp_path, receipt_wait_ms=30), readers, list
            )
            methods = EthMethods(context)
            tx = signed_tx(chain.sender, to=Address(b"\x42" * 20), data=b"")
            mempool.add(mempool.check(tx.encode()))
            params = ["0x" + tx.hash.hex()]
            assert await methods.eth_get_transaction_receipt(params) is None
            assert mempool.waiting(tx.hash) == 0
            gone = asyncio.ensure_future(methods.eth_get_transaction_receipt(params))
            await asyncio.sleep(0.005)
            assert mempool.waiting(tx.hash) == 1
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
            assert mempool.waiting(tx.hash) == 0
            kept = asyncio.ensure_future(methods.eth_get_transaction_receipt(params))
            await asyncio.sleep(0.005)
            taken = mempool.take(1)
            committed = ledger.produce_block(taken, 0)
            mempool.settle_committed(committed.block.header.height, taken)
            receipt = await kept
            assert receipt is not None and receipt["status"] == "0x1"
            assert mempool.waiting(tx.hash) == 0

    try:
        asyncio.run(run())
    finally:
        ledger.close()
