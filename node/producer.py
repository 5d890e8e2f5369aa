"""Dev-mode block production: a single validator commits a block as soon as transactions wait.

The loop sleeps until the mempool reports an arrival (or, if ``block_interval_ms`` is set,
until that interval passes, producing an empty block), takes up to ``max_block_txs`` pending
transactions, drops any that can no longer be included (expired, a nonce committed meanwhile,
or a sender that governance revoked or froze since admission), returns to the pool those that
do not fit in the block's byte budget (genesis ``max_block_bytes``) or its gas (the block gas
limit ruling its height, :meth:`Genesis.block_gas_limit_at
<chain.genesis.Genesis.block_gas_limit_at>`), and has the ledger execute
the block on a worker thread so the event loop keeps answering reads.

Group commit: the executed block is queued in the ledger (:meth:`Ledger.execute_ahead
<node.ledger.Ledger.execute_ahead>`) and written by a second worker (:meth:`Ledger.flush
<node.ledger.Ledger.flush>`), which writes every block queued meanwhile in one write
transaction, so one flush to disk serves all of them. While one group is being flushed the
next block already executes, up to :data:`MAX_BLOCKS_AHEAD` blocks ahead of the disk, when
enough transactions wait (:data:`EXECUTE_AHEAD_MIN_TXS`); fewer wait for the flush and go
into one block with those arriving meanwhile. When no other transaction waits and nothing is
being written, there is nothing to overlap, and the worker executes and writes the block in
one hand-off. When transactions stream in (more than one waits as a block is started, so a
client is sending without waiting for receipts), the block first gathers them, until a batch
of :data:`EXECUTE_AHEAD_MIN_TXS` waits or arrivals pause (:meth:`DevProducer._gather`), so
that a stream goes on in full blocks whatever the size of its first one. Only once a block
is durable are its transactions' waiters resolved and the block announced to subscribers, in
height order: a receipt handed out is on disk.

Permissions are checked against the head state, so a block ends after its first transaction
to the Permissions contract: the transactions after it go back to the pool and are checked
again, against the roles that transaction left, when the next block takes them. (A contract
holding the governance role that calls the Permissions contract itself is not detected this
way; its change takes effect from the next block on.)

The producer reads roles at the ledger's head (:meth:`Permissions.at_head
<node.mempool.Permissions.at_head>`) and hands the same view to the mempool, so that admission
and inclusion agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor

from chain.execution import InapplicableTransaction
from chain.primitives import Hash32
from chain.types import Transaction
from contracts.permissions import PERMISSIONS_ADDRESS
from node.ledger import CommittedBlock, GroupCommitFailed, Ledger
from node.mempool import Mempool, Outcome, Permissions

log = logging.getLogger(__name__)

THREAD_SWITCH_INTERVAL_S = 0.0005
"""How long one thread may hold the GIL while another waits for it, while blocks are being
produced (CPython's default is 5 ms). Block execution is pure-Python py-evm on the worker;
with the default, every request the event loop answers meanwhile (a receipt, the next
transaction of a client sending them one after another) first waits up to 5 ms for the
worker to yield the interpreter (profiled: three quarters of the loop thread's busy samples
were spent taking the GIL back after ``select``). At 0.5 ms the loop gets its turn ten times
as soon, for a few more thread switches."""

MAX_BLOCKS_AHEAD = 8
"""Most blocks executed and not yet durable; block production waits for the disk beyond."""

EXECUTE_AHEAD_MIN_TXS = 64
"""Fewest pending transactions for which the next block is executed while blocks are still
being written; with fewer, production waits for the write, and the transactions arriving
meanwhile join the block. A block costs about 3 ms of CPU besides its transactions' 1.2 ms
each (state root, commit certificate, records; measured with Anchor.anchor): executed ahead
with whatever had arrived, pipelined blocks held 1-3 transactions, and the block writer's
fixed costs took the interpreter from the event loop admitting the next ones. From this many
on, a block's fixed cost is a small share of it and overlapping it with the write pays."""

STREAM_GAP_S = 0.02
"""Longest pause between two arrivals for which a block that is gathering a stream of
transactions (see :meth:`DevProducer._gather`) waits for the next one; a longer pause ends
the stream and the block is made with what waits. On a loaded machine a client sending
without pause is itself descheduled for 10 ms and more now and then (at load 14, a pipelined
round ended its gathering that way often enough to make 126 blocks of 1,000 transactions)."""

STREAM_GATHER_MAX_S = 0.1
"""Longest a block waits in all for a stream of transactions to fill it."""

BlockListener = Callable[[CommittedBlock], None]
"""Called on the event loop for every committed block, in height order."""


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class DevProducer:
    """Single-validator block production driven by mempool arrivals."""

    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        executor: Executor,
        *,
        committer: Executor | None = None,
        max_block_txs: int,
        block_interval_ms: int = 0,
        clock_ms: Callable[[], int] = wall_clock_ms,
        permissions: Permissions | None = None,
        stream_gap_s: float = STREAM_GAP_S,
        stream_gather_max_s: float = STREAM_GATHER_MAX_S,
    ) -> None:
        """``executor`` runs block execution and ``committer`` the writes to disk (one worker
        each keeps them ordered; without ``committer``, ``executor`` does both, one after
        the other); ``permissions`` defaults to the roles at the ledger's head and is
        installed into the mempool; ``stream_gap_s`` and ``stream_gather_max_s`` bound
        how long a block gathers a stream of arrivals (see :meth:`_gather`). Raises
        PermissionsGenesisError for a genesis whose Permissions contract disagrees with its
        accounts."""
        self.ledger = ledger
        self.mempool = mempool
        self.permissions = permissions or Permissions.at_head(ledger)
        mempool.use_permissions(self.permissions)
        self.max_block_txs = max_block_txs
        self.block_interval_ms = block_interval_ms
        self._executor = executor
        self._committer = executor if committer is None else committer
        self._flusher: asyncio.Future[None] | None = None
        self._clock_ms = clock_ms
        self._stream_gap_s = stream_gap_s
        self._stream_gather_max_s = stream_gather_max_s
        self._wake = asyncio.Event()
        self._listeners: list[BlockListener] = []
        mempool.on_arrival(self._wake.set)

    def add_listener(self, listener: BlockListener) -> None:
        """Call ``listener`` after every committed block."""
        self._listeners.append(listener)

    async def run(self) -> None:
        """Produce blocks until cancelled; blocks executed by then are still made durable
        (and their waiters answered) before this returns. Meanwhile the interpreter's
        thread switch interval is :data:`THREAD_SWITCH_INTERVAL_S` (restored afterwards)."""
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, THREAD_SWITCH_INTERVAL_S))
        try:
            await self._produce_forever()
        finally:
            try:
                if self._flusher is not None:
                    await asyncio.shield(self._flusher)
            finally:
                sys.setswitchinterval(switch_interval)

    async def _produce_forever(self) -> None:
        interval = self.block_interval_ms / 1000 if self.block_interval_ms else None
        while True:
            if not self.mempool.pending_count:
                if interval is None:
                    # Awaiting the event directly wakes on the arrival's own loop iteration;
                    # wait_for would first wrap it in a task.
                    await self._wake.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()
            if self.mempool.pending_count or interval is not None:
                try:
                    await self._produce_one(gather=True)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("block production failed")
                    await asyncio.sleep(0.1)

    async def produce_once(self) -> CommittedBlock | None:
        """Take pending transactions and commit one block (possibly empty); returns it once
        it is durable, or ``None`` if every taken transaction had to be dropped."""
        committed = await self._produce_one()
        await self.flushed()
        return committed

    async def _produce_one(self, *, gather: bool = False) -> CommittedBlock | None:
        """Take pending transactions and execute one block (possibly empty); returns it, or
        ``None`` if every taken transaction had to be dropped. With ``gather``, a block
        started while transactions stream in first waits for more (:meth:`_gather`). The
        block is durable, and its transactions answered, once :meth:`flushed` says so."""
        if self._wait_for_disk():
            await self.flushed()
        if gather and await self._gather() and not self.mempool.pending_count:
            # The pool was emptied while the block gathered (evm_revert drops what waits):
            # no block, as none would have been started for an empty pool.
            return None
        height = self.ledger.tip.height + 1
        self.mempool.drop_expired(height)
        # A lone transaction while nothing is being written: nothing to overlap with, so the
        # worker executes and writes its block in one hand-off.
        direct = self.mempool.pending_count <= 1 and not self._writing()
        taken = self.mempool.take(self.max_block_txs)
        outcomes: dict[Hash32, Outcome] = {}
        included: list[Transaction] = []
        block_gas_limit = self.ledger.genesis.block_gas_limit_at(height)
        for tx in taken:
            if tx.block_limit < height:
                outcomes[tx.hash] = Outcome(None, f"expired: block limit {tx.block_limit}")
            elif tx.gas_limit > block_gas_limit:
                # Admitted under a higher limit that a scheduled change has lowered since.
                outcomes[tx.hash] = Outcome(
                    None, f"gas limit above the block gas limit {block_gas_limit} at {height}"
                )
            elif self.ledger.nonce_committed(tx.nonce):
                outcomes[tx.hash] = Outcome(None, "nonce already committed")
            elif (refusal := self.permissions.refusal(tx)) is not None:
                outcomes[tx.hash] = Outcome(None, f"not permitted: {refusal}")
            else:
                included.append(tx)
        included = self._cut_after_permission_change(included)
        included = self._fit_in_block_bytes(included)
        included = self._fit_in_block_gas(included, height)
        loop = asyncio.get_running_loop()
        committed: CommittedBlock | None = None
        durable: list[CommittedBlock] = []
        try:
            while committed is None:
                if not included and taken:
                    break
                try:
                    if direct:
                        committed, durable = await loop.run_in_executor(
                            self._executor, self._execute_and_write, included, self._clock_ms()
                        )
                    else:
                        committed = await loop.run_in_executor(
                            self._executor, self.ledger.execute_ahead, included, self._clock_ms()
                        )
                except InapplicableTransaction as exc:
                    dropped = included.pop(exc.index)
                    log.warning("dropping inapplicable transaction: %s", exc)
                    outcomes[dropped.hash] = Outcome(None, f"not applicable: {exc.reason}")
        except BaseException as exc:
            # Nothing was queued, or the write failed: hand the waiters a definite answer.
            failed = exc.discarded if isinstance(exc, GroupCommitFailed) else ()
            for tx in [*included, *(tx for block in failed for tx in block.block.transactions)]:
                outcomes.setdefault(tx.hash, Outcome(None, "block production failed"))
            self.mempool.settle(outcomes)
            raise
        self.mempool.settle(outcomes)
        for block in durable:
            self._announce(block)
        if committed is not None and not direct and not self._writing():
            self._flusher = asyncio.ensure_future(self._flush_queued())
        return committed

    async def _gather(self) -> bool:
        """Wait for more transactions to join the next block while they stream in: when
        more than one waits (they arrived while the last block was being made, so a client
        is sending without waiting for receipts) and fewer than
        ``min(EXECUTE_AHEAD_MIN_TXS, max_block_txs)``, until that many wait, no transaction
        arrives for ``stream_gap_s``, or ``stream_gather_max_s`` has passed.

        Without it, a block held what arrived while the block before it was executed and
        written, so the size of the first block of a stream set the size of every block
        after it: a stream that began with a lone transaction went on in blocks of 2-5
        (each with its 3 ms of fixed CPU), one that began with a few dozen in blocks of
        hundreds, and the same 1,000 pipelined transactions made anywhere between 5 and
        186 blocks. A lone transaction, as a client sending one at a time makes it, does
        not wait. Returns whether it waited."""
        target = min(EXECUTE_AHEAD_MIN_TXS, self.max_block_txs)
        if not 2 <= self.mempool.pending_count < target:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stream_gather_max_s
        while 0 < self.mempool.pending_count < target:
            timeout = min(self._stream_gap_s, deadline - loop.time())
            if timeout <= 0:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                break
        return True

    def _wait_for_disk(self) -> bool:
        """Whether the next block waits until the blocks being written are durable: when
        :data:`MAX_BLOCKS_AHEAD` are; when too few transactions wait for a block executed
        ahead to be worth its fixed cost (:data:`EXECUTE_AHEAD_MIN_TXS`); and when the
        pending blocks changed what the checks below read at the head (roles)."""
        pending_blocks = self.ledger.pending_count
        if not pending_blocks:
            return False
        if pending_blocks >= MAX_BLOCKS_AHEAD:
            return True
        if self.mempool.pending_count < min(EXECUTE_AHEAD_MIN_TXS, self.max_block_txs):
            return True
        return not self.ledger.ahead_is_safe()

    def _execute_and_write(
        self, txs: list[Transaction], timestamp_ms: int
    ) -> tuple[CommittedBlock, list[CommittedBlock]]:
        """On the worker: execute the next block and write it with any block queued before
        it; returns the block and every block that write made durable."""
        committed = self.ledger.execute_ahead(txs, timestamp_ms)
        return committed, self.ledger.flush()

    def _announce(self, committed: CommittedBlock) -> None:
        """Answer the transactions of a durable block and tell the listeners."""
        height = committed.block.header.height
        self.mempool.settle_committed(height, committed.block.transactions)
        for listener in self._listeners:
            try:
                listener(committed)
            except Exception:
                log.exception("block listener failed")

    def _writing(self) -> bool:
        """Whether executed blocks are being written."""
        return self._flusher is not None and not self._flusher.done()

    async def flushed(self) -> None:
        """Return once every block executed so far is durable (or discarded by a failed
        write) and its transactions answered."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush_queued(self) -> None:
        """Write queued blocks, a group at a time, until none is left; answer each group's
        transactions and announce its blocks once it is durable."""
        loop = asyncio.get_running_loop()
        while self.ledger.pending_count:
            try:
                durable = await loop.run_in_executor(self._committer, self.ledger.flush)
            except GroupCommitFailed as exc:
                log.error("%s; %d blocks discarded", exc, len(exc.discarded))
                self.mempool.settle(
                    {
                        tx.hash: Outcome(None, "block production failed")
                        for discarded in exc.discarded
                        for tx in discarded.block.transactions
                    }
                )
                continue
            for committed in durable:
                self._announce(committed)

    def _fit_in_block_bytes(self, txs: list[Transaction]) -> list[Transaction]:
        """The longest prefix of ``txs`` whose encodings fit in the block's byte budget; the
        rest go back to the front of the pool, for the next block."""
        bytes_left = self.ledger.tx_bytes_budget()
        for index, tx in enumerate(txs):
            bytes_left -= len(tx.encode())
            if bytes_left < 0:
                self.mempool.requeue(txs[index:])
                return txs[:index]
        return txs

    def _fit_in_block_gas(self, txs: list[Transaction], height: int) -> list[Transaction]:
        """The longest prefix of ``txs`` whose gas limits together fit in the block gas limit
        ruling ``height``; the rest go back to the front of the pool, for the next block
        (execution would otherwise refuse them as inapplicable and drop them)."""
        gas_left = self.ledger.genesis.block_gas_limit_at(height)
        for index, tx in enumerate(txs):
            gas_left -= tx.gas_limit
            if gas_left < 0:
                self.mempool.requeue(txs[index:])
                return txs[:index]
        return txs

    def _cut_after_permission_change(self, txs: list[Transaction]) -> list[Transaction]:
        """``txs`` up to and including the first one to the Permissions contract; the rest go
        back to the front of the pool."""
        for index, tx in enumerate(txs):
            if tx.to == PERMISSIONS_ADDRESS:
                self.mempool.requeue(txs[index + 1 :])
                return txs[: index + 1]
        return txs
