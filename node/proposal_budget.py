"""What a proposer puts in a block: the pending transactions that fit the block's gas, byte
and count budgets, oldest first, and a count budget that follows how fast this node
executes blocks."""

from __future__ import annotations

import time
from collections.abc import Iterable

from chain.types import Transaction


class ExecutionPace:
    """The most transactions to propose now. The proposer and then every validator execute a
    block in turn within the propose timeout, so a block whose execution took more than a
    third of it shrinks the cap in proportion, and a block that filled the cap in less lets
    it grow again, up to ``max_block_txs``."""

    def __init__(self, timeout_propose_ms: int, max_block_txs: int) -> None:
        self.budget_s = timeout_propose_ms / 3000
        self.max_block_txs = max_block_txs
        self.cap = max_block_txs

    def measured(self, started: float, txs: int) -> None:
        """A block of ``txs`` transactions took from ``started`` (``time.monotonic``) until
        now to execute."""
        elapsed = time.monotonic() - started
        cap = self.cap
        if elapsed > self.budget_s and txs:
            cap = max(1, int(txs * self.budget_s / elapsed))
        elif txs >= cap:
            cap = cap + cap // 4 + 1
        self.cap = min(cap, self.max_block_txs)


def fitting(
    pending: Iterable[Transaction], *, gas: int, size: int, count: int
) -> list[Transaction]:
    """The transactions of ``pending``, in order, that fit ``gas`` (by gas limits, so none
    fails for want of block gas), ``size`` bytes and ``count``; what does not fit is left."""
    chosen: list[Transaction] = []
    for tx in pending:
        if len(chosen) >= count:
            break
        encoded = len(tx.encode())
        if tx.gas_limit <= gas and encoded <= size:
            gas -= tx.gas_limit
            size -= encoded
            chosen.append(tx)
    return chosen
