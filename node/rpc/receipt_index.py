"""Finding a committed transaction's receipt for ``eth_getTransactionReceipt``, and the running
sums a receipt object carries (cumulative gas, index of its first log), without a store read
when the block is known.

A receipt request for a transaction still in the pool waits for its block; the producer
answers the wait with the block's height and the transaction's position there
(:class:`node.mempool.Outcome`), and the block is in the ledger's cache of recent blocks, so
the receipt is built from that without looking the hash up in the store's index again. The
sums over a block's receipts are computed once per block, not once per receipt (a block of
500 transactions summed 500 prefixes for its 500 receipts)."""

from __future__ import annotations

from collections import OrderedDict
from itertools import accumulate

from chain.primitives import Hash32
from chain.types import Block, Receipt
from node.ledger import Ledger, TxLookup

REMEMBERED_BLOCKS = 64
"""Blocks whose running sums are kept (oldest forgotten first)."""


class ReceiptIndex:
    """Committed transactions with their receipt and running sums, over one ledger. Used on
    the event loop only."""

    def __init__(self, ledger: Ledger) -> None:
        """Read blocks and receipts from ``ledger``."""
        self._ledger = ledger
        self._sums: OrderedDict[Hash32, tuple[tuple[int, ...], tuple[int, ...]]] = OrderedDict()

    def lookup(
        self, tx_hash: Hash32, height: int | None = None, index: int | None = None
    ) -> TxLookup | None:
        """The committed transaction ``tx_hash`` (as :meth:`Ledger.lookup_transaction`): at
        ``index`` of the block at ``height`` if both are given (e.g. by the transaction's
        :class:`~node.mempool.Outcome`) and that block, at or below the head, holds it there;
        else looked up by hash."""
        if height is not None and index is not None:
            found = self._at(tx_hash, height, index)
            if found is not None:
                return found
        return self._ledger.lookup_transaction(tx_hash)

    def cumulative_gas(self, found: TxLookup) -> int:
        """Gas used by ``found``'s block up to and including its transaction."""
        receipts = self._ledger.block_and_receipts(found.block.header.height)
        assert receipts is not None and receipts[0].hash == found.block.hash
        return self._block_sums(found.block, receipts[1])[0][found.index]

    def _at(self, tx_hash: Hash32, height: int, index: int) -> TxLookup | None:
        # The head check keeps a receipt from showing before its block's state does, and a
        # dev rewind may have replaced the block since: its transaction must be the one.
        if height > self._ledger.head.height:
            return None
        found = self._ledger.block_and_receipts(height)
        if found is None:
            return None
        block, receipts = found
        if index >= len(block.transactions) or block.transactions[index].hash != tx_hash:
            return None
        first_logs = self._block_sums(block, receipts)[1]
        return TxLookup(
            tx=block.transactions[index],
            block=block,
            index=index,
            receipt=receipts[index],
            first_log_index=first_logs[index],
        )

    def _block_sums(
        self, block: Block, receipts: tuple[Receipt, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Per transaction of ``block``: gas used up to and including it, and the number of
        logs before it."""
        sums = self._sums.get(block.hash)
        if sums is None:
            cumulative_gas = tuple(accumulate(r.gas_used for r in receipts))
            first_logs = tuple(accumulate((len(r.logs) for r in receipts[:-1]), initial=0))
            sums = (cumulative_gas, first_logs)
            self._sums[block.hash] = sums
            while len(self._sums) > REMEMBERED_BLOCKS:
                self._sums.popitem(last=False)
        return sums
