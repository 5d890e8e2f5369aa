"""Where the dev producer makes a block: a lone transaction's block (nothing else waits and
nothing is being written) is executed and written on the event loop, without a hand-off to
the worker; an empty block and a block of several transactions still go to the workers."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from node_harness import DevChain, anchor_call, ledger_mempool, make_chain, signed_tx

from chain.primitives import Address
from contracts.artifacts import load_artifact
from node.ledger import Ledger
from node.producer import DevProducer

CLOCK_MS = 1_800_000_000_000


class CountingExecutor(ThreadPoolExecutor):
    """A one-thread executor that records the name of every function handed to it."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted.append(fn.__name__)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return make_chain()


@pytest.fixture
def ledger(chain: DevChain, tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    yield ledger
    ledger.close()


def _anchor(ledger: Ledger, chain: DevChain) -> Address:
    deploy = signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
    (receipt,) = ledger.produce_block([deploy], CLOCK_MS).receipts
    assert receipt.status == 1 and receipt.contract_address is not None
    return Address(receipt.contract_address)


def _produce_once(
    ledger: Ledger, chain: DevChain, tx_count: int
) -> tuple[list[str], list[str], set[int], int]:
    """Pool ``tx_count`` anchor transactions and have the producer make one block; returns
    what was handed to the execution and write workers, the threads that executed blocks,
    and the loop's thread."""
    anchor = _anchor(ledger, chain)
    txs = [
        signed_tx(chain.deployer, to=anchor, data=anchor_call(os.urandom(32)), gas_limit=100_000)
        for _ in range(tx_count)
    ]
    executing: set[int] = set()
    execute_ahead = ledger.execute_ahead

    @functools.wraps(execute_ahead)
    def recording_execute_ahead(*args: Any) -> Any:
        executing.add(threading.get_ident())
        return execute_ahead(*args)

    ledger.execute_ahead = recording_execute_ahead  # type: ignore[method-assign, assignment]

    async def run() -> tuple[int, list[str], list[str]]:
        mempool = ledger_mempool(ledger)
        with CountingExecutor() as writer, CountingExecutor() as committer:
            producer = DevProducer(ledger, mempool, writer, committer=committer, max_block_txs=500)
            for tx in txs:
                mempool.add(tx)
            committed = await producer.produce_once()
            assert committed is not None
            assert [receipt.status for receipt in committed.receipts] == [1] * tx_count
            return threading.get_ident(), writer.submitted, committer.submitted

    loop_thread, to_writer, to_committer = asyncio.run(run())
    assert ledger.head.height == 2
    return to_writer, to_committer, executing, loop_thread


def test_a_lone_transactions_block_is_made_on_the_loop(chain: DevChain, ledger: Ledger) -> None:
    to_writer, to_committer, executing, loop_thread = _produce_once(ledger, chain, 1)
    assert to_writer == [] and to_committer == []
    assert executing == {loop_thread}


def test_an_empty_block_goes_to_the_worker(chain: DevChain, ledger: Ledger) -> None:
    to_writer, to_committer, executing, loop_thread = _produce_once(ledger, chain, 0)
    assert to_writer == ["_execute_and_write"] and to_committer == []
    assert loop_thread not in executing


def test_a_block_of_several_transactions_goes_to_the_workers(
    chain: DevChain, ledger: Ledger
) -> None:
    to_writer, to_committer, executing, loop_thread = _produce_once(ledger, chain, 3)
    assert to_writer == ["execute_ahead"] and to_committer == ["flush"]
    assert loop_thread not in executing
