"""The read side of the ledger: committed blocks, receipts, transactions and their proofs,
logs, and state at any committed header (accounts, code, storage, read-only calls).

:class:`ChainReads` answers from the LMDB block store, with a small cache of recent blocks;
:class:`node.ledger.Ledger` adds execution and commits on top of it. Reads run on any
number of threads; LMDB gives each its own snapshot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace

from chain.errors import StorageError
from chain.execution import (
    AccountInfo,
    BlockContext,
    CallResult,
    account_at,
    call,
    code_at,
    estimate_gas,
    storage_at,
)
from chain.genesis import Genesis
from chain.merkle import MerkleProof, MerkleTree
from chain.primitives import Address, Hash32
from chain.types import Block, CommitCertificate, Header, Receipt
from node.ledger_types import LedgerError, TxLookup
from node.log_index import LogEntry, LogQuery
from node.storage.lmdb_store import LmdbBlockStore

_CACHE_BLOCKS = 256
# Bound the cache by transactions too: 256 full blocks of 500 transactions with their
# receipts would hold hundreds of megabytes.
_CACHE_TXS = 20_000


class ChainReads:
    """Reads of one chain's committed blocks and state."""

    def __init__(self, store: LmdbBlockStore, genesis: Genesis) -> None:
        """Read from ``store`` (which holds at least the genesis block of ``genesis``);
        raises LedgerError for an empty store."""
        self.store = store
        self.genesis = genesis
        self._cache_lock = threading.Lock()
        self._blocks: OrderedDict[int, tuple[Block, tuple[Receipt, ...]]] = OrderedDict()
        self._cached_txs = 0
        """Transactions of the blocks in ``_blocks``, kept as they come and go (summing
        them at every commit walked all 256 cached blocks: 5 % of a one-transaction
        block's CPU)."""
        head = store.head()
        if head is None:
            raise LedgerError("store has no genesis block")
        self._head = head

    @property
    def chain_id(self) -> int:
        """The chain id from genesis."""
        return self.genesis.chain_id

    @property
    def head(self) -> Header:
        """The header of the highest committed block."""
        return self._head

    def block_and_receipts(self, height: int) -> tuple[Block, tuple[Receipt, ...]] | None:
        """The committed block at ``height`` and its receipts, or ``None``."""
        with self._cache_lock:
            cached = self._blocks.get(height)
        if cached is not None:
            return cached
        block = self.store.block_by_height(height)
        if block is None:
            return None
        receipts = self.store.receipts(height)
        if receipts is None:
            raise StorageError(f"block {height} has no receipts")
        self._remember(block, receipts)
        return block, receipts

    def block(self, height: int) -> Block | None:
        """The committed block at ``height``, or ``None``."""
        found = self.block_and_receipts(height)
        return None if found is None else found[0]

    def height_of(self, block_hash: Hash32) -> int | None:
        """The height of the committed block with this hash, or ``None``."""
        block = self.store.block_by_hash(block_hash)
        if block is None or block.header.height > self.head.height:
            return None
        return block.header.height

    def certificate(self, height: int) -> CommitCertificate | None:
        """The commit certificate of the block at ``height``, if any."""
        return self.store.commit_certificate(height)

    def lookup_transaction(self, tx_hash: Hash32) -> TxLookup | None:
        """The committed transaction with this hash, with its block and receipt."""
        location = self.store.tx_location(tx_hash)
        # A block written to the store becomes the head a moment later (group commit writes,
        # then moves the head): until then it is not served, so that whoever sees a receipt
        # also reads state that includes it.
        if location is None or location.height > self.head.height:
            return None
        found = self.block_and_receipts(location.height)
        if found is None:
            return None
        block, receipts = found
        first_log = sum(len(r.logs) for r in receipts[: location.index])
        return TxLookup(
            tx=block.transactions[location.index],
            block=block,
            index=location.index,
            receipt=receipts[location.index],
            first_log_index=first_log,
        )

    def nonce_committed(self, nonce: Hash32) -> bool:
        """Whether a transaction with this replay nonce is committed."""
        return self.store.nonce_height(nonce) is not None

    def account(self, header: Header, address: Address) -> AccountInfo:
        """The account at ``address`` in the state after ``header``. Its ``nonce`` counts the
        transactions the account sent (the EVM increments it once per transaction)."""
        return account_at(self.store.state(), header.state_root, address)

    def code(self, header: Header, address: Address) -> bytes:
        """The runtime code at ``address`` in the state after ``header``."""
        return code_at(self.store.state(), header.state_root, address)

    def storage(self, header: Header, address: Address, slot: int) -> int:
        """Storage ``slot`` of ``address`` in the state after ``header``."""
        return storage_at(self.store.state(), header.state_root, address, slot)

    # -- proofs --------------------------------------------------------------------------------

    def transaction_proof(self, tx_hash: Hash32) -> tuple[TxLookup, MerkleProof] | None:
        """The inclusion proof of a committed transaction's hash under its block's tx root."""
        found = self.lookup_transaction(tx_hash)
        if found is None:
            return None
        tree = MerkleTree.build([tx.hash for tx in found.block.transactions])
        return found, tree.prove(found.index)

    def receipt_proof(self, tx_hash: Hash32) -> tuple[TxLookup, MerkleProof] | None:
        """The inclusion proof of a receipt's encoding under its block's receipt root."""
        found = self.lookup_transaction(tx_hash)
        if found is None:
            return None
        receipts = self.block_and_receipts(found.block.header.height)
        assert receipts is not None
        tree = MerkleTree.build([r.encode() for r in receipts[1]])
        return found, tree.prove(found.index)

    # -- logs ------------------------------------------------------------------------------------

    def logs(self, query: LogQuery, limit: int) -> list[LogEntry]:
        """Logs selected by ``query``, in chain order; raises OverflowError beyond ``limit``."""
        first = max(query.from_height, 0)
        last = min(query.to_height, self._head.height)
        if first > last:
            return []
        # The store's index reads only the selected logs; one more than ``limit`` tells that
        # the query selects too many.
        query = replace(query, from_height=first, to_height=last)
        entries = self.store.find_logs(query, limit + 1)
        if len(entries) > limit:
            raise OverflowError(f"more than {limit} logs match")
        return entries

    # -- state reads -----------------------------------------------------------------------------

    def context_for(self, header: Header) -> BlockContext:
        """The execution context of calls made "at" ``header``."""
        return BlockContext(
            chain_id=self.chain_id,
            height=header.height,
            timestamp_ms=header.timestamp_ms,
            proposer=header.proposer,
            gas_limit=self.genesis.block_gas_limit_at(header.height),
        )

    def call(
        self,
        header: Header,
        *,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int,
        value: int,
    ) -> CallResult:
        """Execute a read-only call against the state after ``header``; nothing is stored."""
        return call(
            self.store.state(),
            header.state_root,
            self.context_for(header),
            sender=sender,
            to=to,
            data=data,
            gas=gas,
            value=value,
        )

    def estimate_gas(
        self,
        header: Header,
        *,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int,
        value: int,
    ) -> int:
        """Gas that a transaction with these fields needs against the state after ``header``."""
        return estimate_gas(
            self.store.state(),
            header.state_root,
            self.context_for(header),
            sender=sender,
            to=to,
            data=data,
            gas=gas,
            value=value,
        )

    def _remember(self, block: Block, receipts: tuple[Receipt, ...]) -> None:
        height = block.header.height
        with self._cache_lock:
            replaced = self._blocks.get(height)
            if replaced is not None:
                self._cached_txs -= len(replaced[0].transactions)
            self._blocks[height] = (block, receipts)
            self._blocks.move_to_end(height)
            self._cached_txs += len(block.transactions)
            while len(self._blocks) > _CACHE_BLOCKS or (
                self._cached_txs > _CACHE_TXS and len(self._blocks) > 1
            ):
                evicted, _ = self._blocks.popitem(last=False)[1]
                self._cached_txs -= len(evicted.transactions)

    def _forget_blocks(self) -> None:
        """Empty the block cache (the blocks it holds were discarded)."""
        with self._cache_lock:
            self._blocks.clear()
            self._cached_txs = 0
