"""The node's view of the chain: the block store, execution, and block production.

:class:`Ledger` owns the LMDB block store and the derived :class:`~node.log_index.LogIndex`.
It builds and commits the genesis block on first start, resumes from the store's head after a
restart, executes and commits new blocks (:meth:`Ledger.produce_block`), and answers every
read the JSON-RPC layer needs. Its methods are synchronous and are called from one writer
thread (block production) and any number of reader threads; LMDB gives each read its own
snapshot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chain.commit import sign_precommit
from chain.crypto import PrivateKey
from chain.errors import StorageError
from chain.execution import (
    AccountAlloc,
    BlockContext,
    CallResult,
    call,
    estimate_gas,
    execute_block,
    genesis_state,
)
from chain.genesis import Genesis
from chain.merkle import MerkleProof, MerkleTree, merkle_root
from chain.primitives import ZERO_HASH, Address, Hash32
from chain.storage import BlockCommit
from chain.types import Block, CommitCertificate, Header, Log, Receipt, Transaction
from chain.validation import TxRules
from node import chain_state
from node.log_index import LogIndex
from node.storage.lmdb_store import LmdbBlockStore

_CACHE_BLOCKS = 256


class LedgerError(Exception):
    """The ledger cannot start or cannot produce a block."""


@dataclass(frozen=True)
class CommittedBlock:
    """A block as committed, with its receipts and its own commit certificate."""

    block: Block
    """The committed block."""
    receipts: tuple[Receipt, ...]
    """Its receipts, in transaction order."""
    certificate: CommitCertificate | None
    """Its commit certificate (``None`` for genesis)."""


@dataclass(frozen=True)
class LogQuery:
    """Which logs an eth_getLogs call or a log filter selects."""

    from_height: int
    """Lowest block height, inclusive."""
    to_height: int
    """Highest block height, inclusive."""
    addresses: tuple[Address, ...] | None = None
    """Emitting contracts to select; ``None`` selects every contract."""
    topics: tuple[tuple[Hash32, ...] | None, ...] = ()
    """Per topic position: the accepted values (any of them), or ``None`` for any value."""


@dataclass(frozen=True)
class LogEntry:
    """A committed log with its position in the chain."""

    log: Log
    """The log itself."""
    height: int
    """Height of the block holding it."""
    block_hash: Hash32
    """Hash of that block."""
    tx_hash: Hash32
    """The transaction that emitted it."""
    tx_index: int
    """Position of that transaction in the block."""
    log_index: int
    """Position of the log among all logs of the block."""


@dataclass(frozen=True)
class TxLookup:
    """A committed transaction with its block and receipt."""

    tx: Transaction
    """The transaction."""
    block: Block
    """The block that includes it."""
    index: int
    """Its position in that block."""
    receipt: Receipt
    """Its receipt."""
    first_log_index: int
    """Block-wide index of its first log."""


def log_matches(log: Log, query: LogQuery) -> bool:
    """Whether ``log`` satisfies the address and topic criteria of ``query``."""
    if query.addresses is not None and log.address not in query.addresses:
        return False
    if len(query.topics) > len(log.topics) and any(
        wanted is not None for wanted in query.topics[len(log.topics) :]
    ):
        return False
    for position, wanted in enumerate(query.topics):
        if wanted is not None and log.topics[position] not in wanted:
            return False
    return True


def block_log_entries(block: Block, receipts: Sequence[Receipt], query: LogQuery) -> list[LogEntry]:
    """Every log of ``block`` that ``query`` selects, in block order."""
    entries: list[LogEntry] = []
    log_index = 0
    for tx_index, receipt in enumerate(receipts):
        for log in receipt.logs:
            if log_matches(log, query):
                entries.append(
                    LogEntry(
                        log=log,
                        height=block.header.height,
                        block_hash=block.hash,
                        tx_hash=receipt.tx_hash,
                        tx_index=tx_index,
                        log_index=log_index,
                    )
                )
            log_index += 1
    return entries


def genesis_block(genesis: Genesis) -> tuple[Block, dict[bytes, bytes]]:
    """The height-0 block of ``genesis`` and the state writes of its initial accounts."""
    alloc: dict[Address, AccountAlloc] = {}
    for account in genesis.accounts:
        alloc[account.address] = AccountAlloc(balance=account.balance, code=b"", storage={})
    for contract in genesis.system_contracts:
        storage = {
            int.from_bytes(slot, "big"): int.from_bytes(value, "big")
            for slot, value in contract.storage
        }
        alloc[contract.address] = AccountAlloc(balance=0, code=contract.code, storage=storage)
    update = genesis_state(alloc)
    empty_root = merkle_root([])
    header = Header(
        parent_hash=ZERO_HASH,
        height=0,
        timestamp_ms=genesis.timestamp_ms,
        proposer=Address(bytes(20)),
        tx_root=empty_root,
        receipt_root=empty_root,
        state_root=update.state_root,
        validator_set_hash=genesis.validator_set_hash(),
        last_commit_hash=ZERO_HASH,
    )
    return Block(header=header, transactions=(), last_commit=None), dict(update.writes)


class Ledger:
    """Store + execution + block production for one node. Build it with :meth:`open`."""

    def __init__(
        self,
        store: LmdbBlockStore,
        index: LogIndex,
        genesis: Genesis,
        validator_key: PrivateKey | None,
        rules: TxRules,
    ) -> None:
        """Wrap opened resources; prefer :meth:`open`."""
        self.store = store
        self.index = index
        self.genesis = genesis
        self.rules = rules
        self._validator_key = validator_key
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._blocks: OrderedDict[int, tuple[Block, tuple[Receipt, ...]]] = OrderedDict()
        head = store.head()
        if head is None:
            raise LedgerError("store has no genesis block")
        self._head = head

    @classmethod
    def open(
        cls,
        data_dir: Path,
        genesis: Genesis,
        validator_key: PrivateKey | None,
        rules: TxRules | None = None,
    ) -> Ledger:
        """Open the chain in ``data_dir``: commit the genesis block into an empty store, or
        check that the stored genesis matches ``genesis``; then bring the log index up to the
        head. Raises LedgerError on a store that belongs to another chain."""
        store = LmdbBlockStore.open(data_dir / "blocks")
        index = LogIndex.open(data_dir / "index")
        try:
            block, writes = genesis_block(genesis)
            stored = store.block_by_height(0)
            if stored is None:
                store.commit_block(
                    BlockCommit(block=block, receipts=(), state_writes=writes, certificate=None)
                )
            elif stored.hash != block.hash:
                raise LedgerError(
                    f"{data_dir} holds another chain: genesis {stored.hash.hex()}, "
                    f"expected {block.hash.hex()}"
                )
            ledger = cls(store, index, genesis, validator_key, rules or TxRules(genesis.chain_id))
            ledger._catch_up_index()
        except BaseException:
            index.close()
            store.close()
            raise
        return ledger

    def close(self) -> None:
        """Close the store and the index."""
        with self._write_lock:
            self.index.close()
            self.store.close()

    # -- chain head and blocks ---------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        """The chain id from genesis."""
        return self.genesis.chain_id

    @property
    def head(self) -> Header:
        """The header of the highest committed block."""
        return self._head

    @property
    def validator_address(self) -> Address | None:
        """This node's validator address, when it holds a validator key."""
        return None if self._validator_key is None else self._validator_key.public_key.address

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
        return None if block is None else block.header.height

    def certificate(self, height: int) -> CommitCertificate | None:
        """The commit certificate of the block at ``height``, if any."""
        return self.store.commit_certificate(height)

    def lookup_transaction(self, tx_hash: Hash32) -> TxLookup | None:
        """The committed transaction with this hash, with its block and receipt."""
        location = self.store.tx_location(tx_hash)
        if location is None:
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

    def account(self, header: Header, address: Address) -> chain_state.Account:
        """The account at ``address`` in the state after ``header``. Its ``nonce`` counts the
        transactions the account sent (the EVM increments it once per transaction)."""
        return chain_state.account_at(self.store.state(), header.state_root, address)

    def code(self, header: Header, address: Address) -> bytes:
        """The runtime code at ``address`` in the state after ``header``."""
        return chain_state.code_at(self.store.state(), header.state_root, address)

    def storage(self, header: Header, address: Address, slot: int) -> int:
        """Storage ``slot`` of ``address`` in the state after ``header``."""
        return chain_state.storage_at(self.store.state(), header.state_root, address, slot)

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
        candidates: set[int] | None = None
        if query.addresses is not None:
            candidates = self.index.heights_for_addresses(query.addresses, first, last)
        for wanted in query.topics:
            if wanted is None:
                continue
            heights = self.index.heights_for_topics(wanted, first, last)
            candidates = heights if candidates is None else candidates & heights
        heights_sorted = (
            self.index.heights_with_logs(first, last) if candidates is None else sorted(candidates)
        )
        entries: list[LogEntry] = []
        for height in heights_sorted:
            found = self.block_and_receipts(height)
            if found is None:
                continue
            entries.extend(block_log_entries(found[0], found[1], query))
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
            gas_limit=self.genesis.block_gas_limit,
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

    # -- block production ------------------------------------------------------------------------

    def produce_block(self, txs: Sequence[Transaction], timestamp_ms: int) -> CommittedBlock:
        """Execute ``txs`` on the head state, commit the block with this node's single-validator
        commit certificate, index it, and return it. The caller has validated ``txs``.

        The timestamp is raised to one past the parent's if the clock lags behind it."""
        if self._validator_key is None:
            raise LedgerError("this node holds no validator key; it cannot produce blocks")
        with self._write_lock:
            parent = self._head
            height = parent.height + 1
            timestamp = max(timestamp_ms, parent.timestamp_ms + 1)
            proposer = self._validator_key.public_key.address
            context = BlockContext(
                chain_id=self.chain_id,
                height=height,
                timestamp_ms=timestamp,
                proposer=proposer,
                gas_limit=self.genesis.block_gas_limit,
            )
            execution = execute_block(self.store.state(), parent.state_root, context, list(txs))
            receipts = tuple(execution.receipts)
            last_commit = self.store.commit_certificate(parent.height) if height > 1 else None
            header = Header(
                parent_hash=parent.hash,
                height=height,
                timestamp_ms=timestamp,
                proposer=proposer,
                tx_root=merkle_root([tx.hash for tx in txs]),
                receipt_root=merkle_root([r.encode() for r in receipts]),
                state_root=execution.state_root,
                validator_set_hash=self.genesis.validator_set_hash(),
                last_commit_hash=ZERO_HASH if last_commit is None else last_commit.hash,
            )
            block = Block(header=header, transactions=tuple(txs), last_commit=last_commit)
            certificate = self._sign_certificate(header)
            self.store.commit_block(
                BlockCommit(
                    block=block,
                    receipts=receipts,
                    state_writes=execution.writes,
                    certificate=certificate,
                )
            )
            self._remember(block, receipts)
            self.index.add_block(block, receipts)
            self._head = header
            return CommittedBlock(block=block, receipts=receipts, certificate=certificate)

    def _sign_certificate(self, header: Header) -> CommitCertificate:
        assert self._validator_key is not None
        signature = sign_precommit(
            self._validator_key,
            chain_id=self.chain_id,
            height=header.height,
            round_=0,
            block_hash=header.hash,
        )
        return CommitCertificate(
            height=header.height, round=0, block_hash=header.hash, signatures=(signature,)
        )

    def _remember(self, block: Block, receipts: tuple[Receipt, ...]) -> None:
        with self._cache_lock:
            self._blocks[block.header.height] = (block, receipts)
            self._blocks.move_to_end(block.header.height)
            while len(self._blocks) > _CACHE_BLOCKS:
                self._blocks.popitem(last=False)

    def _catch_up_index(self) -> None:
        indexed = self.index.indexed_height()
        start = 0 if indexed is None else indexed + 1
        for height in range(start, self._head.height + 1):
            found = self.block_and_receipts(height)
            if found is None:
                raise StorageError(f"block {height} missing below head {self._head.height}")
            block, receipts = found
            self.index.add_block(block, receipts)
