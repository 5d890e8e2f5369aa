"""Group commit in dev-mode production: blocks executed ahead of the disk stay invisible until
one write makes them all durable; a failed write discards every queued block and nothing of
them is stored; executing ahead waits for the disk after a change of roles; a waiter is
answered only once its block is on disk; and a few transactions arriving during a write wait
for it and share the next block, while a deep pool's next block is executed during the write."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from node_harness import DevChain, anchor_call, ledger_mempool, make_chain, signed_tx

from chain.crypto import PrivateKey
from chain.primitives import Address
from chain.types import Transaction
from chain.validation import TxRules
from contracts.artifacts import load_artifact
from contracts.permissions import PERMISSIONS_ADDRESS, SENDER, grant_call, permissions_contract
from node.ledger import CommittedBlock, GroupCommitFailed, Ledger
from node.mempool import Mempool, Outcome
from node.producer import EXECUTE_AHEAD_MIN_TXS, DevProducer
from node.storage.lmdb_store import LmdbBlockStore
from node.verify import verify_chain

CLOCK_MS = 1_800_000_000_000


def _chain_with_permissions_contract() -> DevChain:
    chain = make_chain()
    contract = permissions_contract(chain.genesis.accounts)
    return dataclasses.replace(
        chain, genesis=dataclasses.replace(chain.genesis, system_contracts=(contract,))
    )


def _deploy_anchor(ledger: Ledger, key: PrivateKey) -> Address:
    deploy = signed_tx(key, to=None, data=load_artifact("Anchor").bytecode)
    (receipt,) = ledger.produce_block([deploy], CLOCK_MS).receipts
    assert receipt.status == 1 and receipt.contract_address is not None
    return Address(receipt.contract_address)


def _anchors(key: PrivateKey, anchor: Address, count: int) -> list[Transaction]:
    return [
        signed_tx(key, to=anchor, data=anchor_call(os.urandom(32)), gas_limit=100_000)
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return _chain_with_permissions_contract()


def test_blocks_executed_ahead_are_invisible_until_one_flush_writes_them(
    chain: DevChain, tmp_path: Path
) -> None:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    try:
        anchor = _deploy_anchor(ledger, chain.deployer)
        head = ledger.head
        first = ledger.execute_ahead(_anchors(chain.deployer, anchor, 2), CLOCK_MS + 1)
        second = ledger.execute_ahead(_anchors(chain.deployer, anchor, 3), CLOCK_MS + 2)
        # The second block builds on the first, which is not written yet.
        assert second.block.header.parent_hash == first.block.hash
        assert second.block.last_commit == first.certificate
        assert ledger.tip == second.block.header and ledger.pending_count == 2
        assert ledger.head == head
        assert ledger.block(head.height + 1) is None
        assert ledger.lookup_transaction(first.block.transactions[0].hash) is None
        assert ledger.store.head() == head

        durable = ledger.flush()

        assert [c.block for c in durable] == [first.block, second.block]
        assert ledger.head == ledger.tip == second.block.header
        assert ledger.pending_count == 0
        found = ledger.lookup_transaction(second.block.transactions[2].hash)
        assert found is not None and found.receipt.status == 1
        assert ledger.flush() == []
    finally:
        ledger.close()
    # On disk as flushed, and the chain verifies offline.
    reopened = Ledger.open(tmp_path, chain.genesis, None)
    try:
        assert reopened.head == second.block.header
        assert verify_chain(reopened.store, chain.genesis) is None
    finally:
        reopened.close()


def test_failed_group_commit_stores_nothing_and_discards_every_queued_block(
    chain: DevChain, tmp_path: Path
) -> None:
    Ledger.open(tmp_path, chain.genesis, chain.validator).close()
    # A map barely larger than the genesis store: the group cannot be written.
    data_file = tmp_path / "blocks" / "data.mdb"
    store = LmdbBlockStore.open(tmp_path / "blocks", map_size=data_file.stat().st_size + 4096)
    rules = TxRules(chain.genesis.chain_id, block_gas_limit=chain.genesis.block_gas_limit)
    ledger = Ledger(store, chain.genesis, chain.validator, rules)
    try:
        genesis_head = ledger.head
        code = load_artifact("Anchor").bytecode
        queued = [
            ledger.execute_ahead([signed_tx(chain.deployer, to=None, data=code)], CLOCK_MS + i)
            for i in range(3)
        ]
        with pytest.raises(GroupCommitFailed) as failed:
            ledger.flush()
        assert [c.block for c in failed.value.discarded] == [c.block for c in queued]
        assert ledger.head == ledger.tip == genesis_head
        assert ledger.pending_count == 0
        assert store.head() == genesis_head and store.block_by_height(1) is None
        # Production goes on from the head.
        again = ledger.execute_ahead([], CLOCK_MS + 10)
        assert again.block.header.parent_hash == genesis_head.hash
    finally:
        ledger.close()


def test_execution_ahead_waits_for_the_disk_after_a_change_of_roles(
    chain: DevChain, tmp_path: Path
) -> None:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    try:
        anchor = _deploy_anchor(ledger, chain.deployer)
        assert ledger.ahead_is_safe()
        ledger.execute_ahead(_anchors(chain.sender, anchor, 1), CLOCK_MS + 1)
        # Nothing pending changed roles: the next block may be executed on the tip.
        assert ledger.pending_count == 1 and ledger.ahead_is_safe()
        grant = signed_tx(
            chain.deployer,
            to=PERMISSIONS_ADDRESS,
            data=grant_call(chain.outsider.public_key.address, SENDER),
            gas_limit=200_000,
        )
        (receipt,) = ledger.execute_ahead([grant], CLOCK_MS + 2).receipts
        assert receipt.status == 1
        assert not ledger.ahead_is_safe()
        ledger.flush()
        assert ledger.ahead_is_safe()
    finally:
        ledger.close()


def test_a_waiter_is_answered_only_once_its_block_is_on_disk(
    chain: DevChain, tmp_path: Path
) -> None:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    anchor = _deploy_anchor(ledger, chain.deployer)
    txs = _anchors(chain.deployer, anchor, 40)
    answers: list[tuple[int | None, int]] = []

    async def run() -> None:
        mempool = Mempool(
            ledger.rules,
            ledger.permissions_at(ledger.head),
            capacity=1_000,
            nonce_committed=ledger.nonce_committed,
            next_height=lambda: ledger.head.height + 1,
        )
        with ThreadPoolExecutor(1) as writer, ThreadPoolExecutor(1) as committer:
            producer = DevProducer(ledger, mempool, writer, committer=committer, max_block_txs=4)
            running = asyncio.ensure_future(producer.run())
            waiters = []
            for tx in txs:
                mempool.add(tx)
                waiter = mempool.waiter(tx.hash)
                assert waiter is not None
                # What is on disk at the moment the waiter is answered.
                waiter.add_done_callback(
                    lambda done: answers.append(
                        (done.result().height, ledger.store.head().height)  # type: ignore[union-attr]
                    )
                )
                waiters.append(waiter)
                if len(waiters) % 8 == 0:
                    await asyncio.sleep(0)
            outcomes: list[Outcome] = await asyncio.gather(*waiters)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
        assert all(outcome.height is not None for outcome in outcomes)

    try:
        asyncio.run(run())
        assert len(answers) == len(txs)
        for height, durable in answers:
            assert height is not None and height <= durable
        assert verify_chain(ledger.store, chain.genesis) is None
    finally:
        ledger.close()


async def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def _gate_flush(ledger: Ledger) -> threading.Event:
    """Hold every write of queued blocks until the returned event is set."""
    gate = threading.Event()
    flush = ledger.flush

    def gated() -> list[CommittedBlock]:
        assert gate.wait(60)
        return flush()

    ledger.flush = gated  # type: ignore[method-assign]
    return gate


def test_a_few_transactions_arriving_during_a_write_wait_for_it_and_share_a_block(
    chain: DevChain, tmp_path: Path
) -> None:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    anchor = _deploy_anchor(ledger, chain.deployer)
    first, late = _anchors(chain.deployer, anchor, 2), _anchors(chain.deployer, anchor, 3)
    gate = _gate_flush(ledger)

    async def run() -> list[Outcome]:
        mempool = ledger_mempool(ledger)
        with ThreadPoolExecutor(1) as writer, ThreadPoolExecutor(1) as committer:
            producer = DevProducer(ledger, mempool, writer, committer=committer, max_block_txs=100)
            for tx in first:
                mempool.add(tx)
            running = asyncio.ensure_future(producer.run())
            # The first block is executed and its write held at the gate.
            await _until(lambda: ledger.pending_count == 1)
            waiters = []
            for tx in late:
                mempool.add(tx)
                waiters.append(mempool.waiter(tx.hash))
                # Time enough for the producer to take what waits, had it not waited.
                await asyncio.sleep(0.05)
            assert ledger.pending_count == 1 and mempool.pending_count == len(late)
            gate.set()
            outcomes: list[Outcome] = await asyncio.gather(*waiters)  # type: ignore[arg-type]
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
        return outcomes

    try:
        outcomes = asyncio.run(run())
        heights = {outcome.height for outcome in outcomes}
        assert heights == {ledger.head.height} and None not in heights
        assert verify_chain(ledger.store, chain.genesis) is None
    finally:
        ledger.close()


def test_a_deep_pool_executes_the_next_block_while_one_is_written(
    chain: DevChain, tmp_path: Path
) -> None:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    anchor = _deploy_anchor(ledger, chain.deployer)
    first = _anchors(chain.deployer, anchor, 2)
    deep = _anchors(chain.deployer, anchor, EXECUTE_AHEAD_MIN_TXS)
    gate = _gate_flush(ledger)

    async def run() -> None:
        mempool = ledger_mempool(ledger)
        with ThreadPoolExecutor(1) as writer, ThreadPoolExecutor(1) as committer:
            producer = DevProducer(ledger, mempool, writer, committer=committer, max_block_txs=100)
            for tx in first:
                mempool.add(tx)
            running = asyncio.ensure_future(producer.run())
            await _until(lambda: ledger.pending_count == 1)
            waiters = []
            for tx in deep:
                mempool.add(tx)
                waiters.append(mempool.waiter(tx.hash))
            # Executed on the tip while the block under it is still held at the gate.
            await _until(lambda: ledger.pending_count == 2)
            assert ledger.tip.height == ledger.head.height + 2
            gate.set()
            await asyncio.gather(*waiters)  # type: ignore[arg-type]
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running

    try:
        asyncio.run(run())
        assert verify_chain(ledger.store, chain.genesis) is None
    finally:
        ledger.close()
