"""Block sizes in dev-mode production: transactions that stream in (a client sending without
waiting for receipts) are gathered into full blocks, whatever the size of the block that
started the stream; a deep pool fills blocks up to ``max_block_txs``; a lone transaction (a
client sending one at a time) is not held back, and a stream that stops short of a full
block is committed once arrivals pause.

The pauses that end a stream are set to a minute where a test must not depend on timing, so
that only the number of transactions decides where a block ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from node_harness import DevChain, anchor_call, ledger_mempool, make_chain, signed_tx

from chain.primitives import Address
from chain.types import Transaction
from contracts.artifacts import load_artifact
from node.ledger import Ledger
from node.mempool import Mempool, Outcome
from node.producer import EXECUTE_AHEAD_MIN_TXS, DevProducer

CLOCK_MS = 1_800_000_000_000
NEVER_S = 60.0
"""A pause between arrivals no test waits for."""


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return make_chain()


@pytest.fixture
def ledger(chain: DevChain, tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    yield ledger
    ledger.close()


def _deploy_anchor(ledger: Ledger, chain: DevChain) -> Address:
    deploy = signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
    (receipt,) = ledger.produce_block([deploy], CLOCK_MS).receipts
    assert receipt.status == 1 and receipt.contract_address is not None
    return Address(receipt.contract_address)


def _anchors(chain: DevChain, anchor: Address, count: int) -> list[Transaction]:
    return [
        signed_tx(chain.deployer, to=anchor, data=anchor_call(os.urandom(32)), gas_limit=100_000)
        for _ in range(count)
    ]


async def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def _add(mempool: Mempool, txs: Sequence[Transaction]) -> list[asyncio.Future[Outcome]]:
    waiters = []
    for tx in txs:
        mempool.add(tx)
        waiter = mempool.waiter(tx.hash)
        assert waiter is not None
        waiters.append(waiter)
    return waiters


def _block_sizes(ledger: Ledger, first: int) -> list[int]:
    sizes = []
    for height in range(first, ledger.head.height + 1):
        block = ledger.block(height)
        assert block is not None
        sizes.append(len(block.transactions))
    return sizes


@contextlib.asynccontextmanager
async def _producing(
    ledger: Ledger,
    mempool: Mempool,
    max_block_txs: int,
    gap_s: float = NEVER_S,
    gather_max_s: float = NEVER_S,
) -> AsyncIterator[DevProducer]:
    """A producer running on ``mempool`` (with its own execution and write workers) for the
    block's length, stopped at its end."""
    with ThreadPoolExecutor(1) as writer, ThreadPoolExecutor(1) as committer:
        producer = DevProducer(
            ledger,
            mempool,
            writer,
            committer=committer,
            max_block_txs=max_block_txs,
            stream_gap_s=gap_s,
            stream_gather_max_s=gather_max_s,
        )
        running = asyncio.ensure_future(producer.run())
        try:
            yield producer
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running


def test_a_stream_that_starts_with_a_lone_transaction_goes_on_in_full_blocks(
    chain: DevChain, ledger: Ledger
) -> None:
    anchor = _deploy_anchor(ledger, chain)
    first_height = ledger.head.height + 1
    target = EXECUTE_AHEAD_MIN_TXS
    lone, stream = _anchors(chain, anchor, 1), _anchors(chain, anchor, 2 * target)

    async def run() -> list[Outcome]:
        mempool = ledger_mempool(ledger)
        async with _producing(ledger, mempool, target):
            waiters = _add(mempool, lone)
            # The lone transaction's block is made at once, before anything follows it.
            await _until(lambda: ledger.head.height == first_height)
            # Then transactions stream in, a few at a time, the producer getting its turn
            # between them (and, before the fix, taking whatever had arrived).
            for start in range(0, len(stream), 2):
                waiters += _add(mempool, stream[start : start + 2])
                await asyncio.sleep(0)
                await asyncio.sleep(0.001)
            outcomes: list[Outcome] = await asyncio.wait_for(asyncio.gather(*waiters), 120)
        return outcomes

    outcomes = asyncio.run(run())
    assert all(outcome.height is not None for outcome in outcomes)
    # Before, the stream went on in blocks of the size the first ones happened to have
    # (2 transactions here); now each block gathers a full batch.
    assert _block_sizes(ledger, first_height) == [1, target, target]


def test_a_deep_pool_fills_blocks_up_to_max_block_txs(chain: DevChain, ledger: Ledger) -> None:
    anchor = _deploy_anchor(ledger, chain)
    first_height = ledger.head.height + 1
    txs = _anchors(chain, anchor, 250)

    async def run() -> None:
        mempool = ledger_mempool(ledger)
        waiters = _add(mempool, txs)
        # The last 50 are short of a batch: they gather for 0.2 s, no arrival follows.
        async with _producing(ledger, mempool, 100, NEVER_S, 0.2):
            await asyncio.wait_for(asyncio.gather(*waiters), 120)

    asyncio.run(run())
    assert _block_sizes(ledger, first_height) == [100, 100, 50]


def test_a_lone_transaction_is_not_held_back(chain: DevChain, ledger: Ledger) -> None:
    anchor = _deploy_anchor(ledger, chain)
    first_height = ledger.head.height + 1
    txs = _anchors(chain, anchor, 3)

    async def run() -> None:
        mempool = ledger_mempool(ledger)
        async with _producing(ledger, mempool, 500):
            # One at a time, each after the receipt of the one before: were a lone
            # transaction held for a stream, this would wait a minute per transaction.
            for tx in txs:
                (waiter,) = _add(mempool, [tx])
                outcome = await asyncio.wait_for(waiter, 30)
                assert outcome.height is not None

    asyncio.run(run())
    assert _block_sizes(ledger, first_height) == [1, 1, 1]


@pytest.mark.parametrize(
    ("gap_s", "gather_max_s"), [(0.05, NEVER_S), (NEVER_S, 0.05)], ids=["pause", "longest"]
)
def test_a_stream_short_of_a_full_block_is_committed_when_it_pauses_or_waited_longest(
    chain: DevChain, ledger: Ledger, gap_s: float, gather_max_s: float
) -> None:
    anchor = _deploy_anchor(ledger, chain)
    first_height = ledger.head.height + 1
    txs = _anchors(chain, anchor, 5)

    async def run() -> None:
        mempool = ledger_mempool(ledger)
        waiters = _add(mempool, txs)
        async with _producing(ledger, mempool, 500, gap_s, gather_max_s):
            await asyncio.wait_for(asyncio.gather(*waiters), 30)

    asyncio.run(run())
    assert _block_sizes(ledger, first_height) == [5]


def test_a_pool_emptied_while_a_block_gathers_makes_no_block(
    chain: DevChain, ledger: Ledger
) -> None:
    anchor = _deploy_anchor(ledger, chain)
    head = ledger.head
    txs = _anchors(chain, anchor, 2)

    async def run() -> list[Outcome]:
        mempool = ledger_mempool(ledger)
        waiters = _add(mempool, txs)
        async with _producing(ledger, mempool, 500, NEVER_S, 0.3) as producer:
            # The producer starts the block and gathers; evm_revert empties the pool.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            mempool.drop_all("discarded by evm_revert")
            outcomes: list[Outcome] = await asyncio.wait_for(asyncio.gather(*waiters), 30)
            await asyncio.sleep(0.6)
            await producer.flushed()
        return outcomes

    outcomes = asyncio.run(run())
    assert all(outcome.height is None for outcome in outcomes)
    assert ledger.head == ledger.tip == head
