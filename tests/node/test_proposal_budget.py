"""A proposal's transactions fit the block's gas, byte and count budgets, oldest first, and
the count budget follows the node's execution speed."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from node_harness import make_chain, signed_tx

from chain.primitives import Address
from chain.types import Transaction
from node.proposal_budget import ExecutionPace, fitting

CHAIN = make_chain()
POOL = [
    signed_tx(
        CHAIN.deployer, to=Address(bytes(20)), data=bytes(n * 40), gas_limit=21_000 + n * 5_000
    )
    for n in range(12)
]


@settings(max_examples=200, deadline=None)
@given(
    order=st.permutations(range(len(POOL))),
    gas=st.integers(min_value=0, max_value=400_000),
    size=st.integers(min_value=0, max_value=4_000),
    count=st.integers(min_value=0, max_value=12),
)
def test_the_chosen_fit_every_budget_in_order_and_nothing_that_fits_is_left(
    order: list[int], gas: int, size: int, count: int
) -> None:
    pending = [POOL[i] for i in order]
    chosen = fitting(pending, gas=gas, size=size, count=count)
    assert len(chosen) <= count
    assert sum(tx.gas_limit for tx in chosen) <= gas
    assert sum(len(tx.encode()) for tx in chosen) <= size
    positions = [pending.index(tx) for tx in chosen]
    assert positions == sorted(positions)
    # Greedy: a transaction left out before the count ran out did not fit what remained.
    gas_left, size_left, taken = gas, size, 0
    for tx in pending:
        if taken >= count:
            break
        fits = tx.gas_limit <= gas_left and len(tx.encode()) <= size_left
        assert (tx in chosen) == fits
        if fits:
            gas_left, size_left, taken = (
                gas_left - tx.gas_limit,
                size_left - len(tx.encode()),
                taken + 1,
            )


def _took(seconds: float) -> float:
    return time.monotonic() - seconds


def test_the_cap_shrinks_after_a_slow_block_and_grows_back_to_the_maximum() -> None:
    pace = ExecutionPace(timeout_propose_ms=3_000, max_block_txs=500)  # a 1 s budget
    assert pace.cap == 500
    pace.measured(_took(2.0), 400)  # twice the budget: about half as many
    assert 150 <= pace.cap <= 210
    shrunk = pace.cap
    pace.measured(_took(0.01), shrunk)  # a full block, fast: grows by a quarter
    assert pace.cap == shrunk + shrunk // 4 + 1
    for _ in range(20):
        pace.measured(_took(0.01), pace.cap)
    assert pace.cap == 500
    pace.measured(_took(5.0), 0)  # an empty block says nothing about speed
    assert pace.cap == 500


def test_transactions_are_not_reordered_or_copied() -> None:
    chosen: list[Transaction] = fitting(POOL, gas=10**9, size=10**9, count=len(POOL))
    assert chosen == POOL
