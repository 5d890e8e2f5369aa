"""The node's view of the chain: the block store, execution, and block production.

:class:`Ledger` owns the LMDB block store (which also indexes every committed log). It builds
and commits the genesis block on first start, resumes from the store's head after a
restart, executes and commits new blocks (:meth:`Ledger.produce_block`), and answers every
read the JSON-RPC layer needs. Its methods are synchronous and are called from one writer
thread (block production) and any number of reader threads; LMDB gives each read its own
snapshot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from chain.commit import CommitError, sign_precommit, verify_commit_certificate
from chain.crypto import PrivateKey
from chain.errors import ChainError, EncodingError, StorageError
from chain.execution import (
    AccountInfo,
    BlockContext,
    CallResult,
    InapplicableTransaction,
    account_at,
    call,
    code_at,
    estimate_gas,
    execute_block,
    storage_at,
)
from chain.genesis import Genesis, genesis_block
from chain.merkle import MerkleProof, MerkleTree, merkle_root
from chain.primitives import ZERO_HASH, Address, Hash32
from chain.storage import BlockCommit
from chain.types import Block, CommitCertificate, Header, Receipt, Transaction
from chain.validation import TxRules, validate_block_transactions
from contracts.errors import ContractsError
from contracts.validators import (
    CHANGES_SLOT,
    LAST_EFFECTIVE_HEIGHT_SLOT,
    VALIDATOR_GOVERNANCE_ADDRESS,
    RulingSet,
    decode_ruling_set,
    validator_governance_contract,
    validators_at_call,
)
from node.log_index import LogEntry, LogQuery

# Log queries live in node.log_index; the RPC layer imports them from here too.
from node.log_index import block_log_entries as block_log_entries
from node.log_index import log_matches as log_matches
from node.storage.lmdb_store import LmdbBlockStore

_CACHE_BLOCKS = 256
# Bound the cache by transactions too: 256 full blocks of 500 transactions with their
# receipts would hold hundreds of megabytes.
_CACHE_TXS = 20_000
_CACHE_CANDIDATES = 16
_CACHE_SETS = 64
_SET_CALL_GAS = 50_000_000


class LedgerError(Exception):
    """The ledger cannot start or cannot produce a block."""


class BlockRejected(LedgerError):
    """A proposed or synced block that is not a valid next block (ABCI ``ProcessProposal``
    rejects it); the message says which rule it breaks."""


@dataclass(frozen=True)
class PreparedBlock:
    """A block executed against the head state but not committed: what a proposer built
    (:meth:`Ledger.prepare_block`) or a validator re-executed (:meth:`Ledger.process_block`)."""

    block: Block
    """The block."""
    receipts: tuple[Receipt, ...]
    """Its receipts, in transaction order."""
    writes: Mapping[bytes, bytes]
    """State writes that committing the block stores."""
    dropped: tuple[tuple[Transaction, str], ...] = ()
    """Transactions offered to :meth:`Ledger.prepare_block` that could not be included,
    with the reason."""


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


class Ledger:
    """Store + execution + block production for one node. Build it with :meth:`open`."""

    def __init__(
        self,
        store: LmdbBlockStore,
        genesis: Genesis,
        validator_key: PrivateKey | None,
        rules: TxRules,
    ) -> None:
        """Wrap opened resources; prefer :meth:`open`."""
        self.store = store
        self.genesis = genesis
        self.rules = rules
        self._validator_key = validator_key
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._blocks: OrderedDict[int, tuple[Block, tuple[Receipt, ...]]] = OrderedDict()
        self._candidates: OrderedDict[Hash32, PreparedBlock] = OrderedDict()
        self._sets: OrderedDict[tuple[int, int], RulingSet] = OrderedDict()
        self._set_of_height: OrderedDict[int, RulingSet] = OrderedDict()
        self._governed = _governed(genesis)
        self._genesis_set = RulingSet(genesis.validator_set(), 1)
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
        check that the stored genesis matches ``genesis``. Raises LedgerError on a store that
        belongs to another chain."""
        store = LmdbBlockStore.open(data_dir / "blocks")
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
            ledger = cls(
                store,
                genesis,
                validator_key,
                rules or TxRules(genesis.chain_id, block_gas_limit=genesis.block_gas_limit),
            )
        except BaseException:
            store.close()
            raise
        return ledger

    def close(self) -> None:
        """Close the store."""
        with self._write_lock:
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

    def validator_set(self, height: int) -> RulingSet:
        """The validator set ruling ``height`` (from 1 to the head's height + 1): genesis's
        set, or with the ValidatorGovernance system contract ``validatorsAt(height)`` on the
        state after block ``height - 1``. Raises LedgerError for a height out of range or a
        contract answer that is not a usable set."""
        if not self._governed:
            return self._genesis_set
        if not 1 <= height <= self._head.height + 1:
            raise LedgerError(f"no validator set for height {height} (head {self._head.height})")
        with self._cache_lock:
            known = self._set_of_height.get(height)
        if known is not None:
            return known
        parent_block = self.block(height - 1) if height <= self._head.height else None
        parent = self._head if parent_block is None else parent_block.header
        changes = self.storage(parent, VALIDATOR_GOVERNANCE_ADDRESS, CHANGES_SLOT)
        last = self.storage(parent, VALIDATOR_GOVERNANCE_ADDRESS, LAST_EFFECTIVE_HEIGHT_SLOT)
        # Once every executed change rules, the set depends only on how many there were.
        key = (changes, 0) if height >= last else (changes, height)
        with self._cache_lock:
            ruling = self._sets.get(key)
        if ruling is None:
            ruling = self.validators_at(parent, height)
        with self._cache_lock:
            # Committed blocks are final, so the set of a height never changes once known.
            self._sets[key] = ruling
            self._set_of_height[height] = ruling
            for cache in (self._sets, self._set_of_height):
                while len(cache) > _CACHE_SETS:
                    cache.popitem(last=False)
        return ruling

    def validators_at(self, header: Header, height: int) -> RulingSet:
        """What the ValidatorGovernance contract answers for ``validatorsAt(height)`` in the
        state after ``header`` (``height`` may lie beyond the head: pending changes ruling by
        then included). Raises LedgerError if the chain has no such contract or its answer
        is not a usable set."""
        if not self._governed:
            raise LedgerError("this chain's validator set is fixed by genesis")
        result = self.call(
            header,
            sender=Address(bytes(20)),
            to=VALIDATOR_GOVERNANCE_ADDRESS,
            data=validators_at_call(height),
            gas=_SET_CALL_GAS,
            value=0,
        )
        if not result.success:
            raise LedgerError(f"validatorsAt({height}) reverted")
        try:
            return decode_ruling_set(result.output)
        except (ContractsError, ChainError) as exc:
            raise LedgerError(f"validator set of height {height}: {exc}") from exc

    @property
    def governed(self) -> bool:
        """Whether validator changes go through the ValidatorGovernance contract."""
        return self._governed

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
        commit certificate, and return it. The caller has validated ``txs``; raises
        InapplicableTransaction (nothing committed) for one that cannot be applied.

        The timestamp is raised to one past the parent's if the clock lags behind it."""
        if self._validator_key is None:
            raise LedgerError("this node holds no validator key; it cannot produce blocks")
        with self._write_lock:
            prepared = self._execute_new(self._head, list(txs), timestamp_ms)
            certificate = self._sign_certificate(prepared.block.header)
            return self._commit_locked(prepared, certificate)

    # -- consensus: prepare / process / commit (ABCI 2.0 shaped) ---------------------------------

    def prepare_block(self, txs: Sequence[Transaction], timestamp_ms: int) -> PreparedBlock:
        """Build the next block to propose (ABCI ``PrepareProposal``): execute ``txs`` on the
        head state, leaving out any that cannot be included (failed validation against the
        head, or inapplicable), and return the executed block uncommitted. The block carries
        the parent's stored commit certificate."""
        if self._validator_key is None:
            raise LedgerError("this node holds no validator key; it cannot propose blocks")
        with self._write_lock:
            parent = self._head
            height = parent.height + 1
            dropped: list[tuple[Transaction, str]] = []
            included: list[Transaction] = []
            nonces: set[Hash32] = set()
            for tx in txs:
                try:
                    validate_block_transactions([tx], self.rules, height, self.nonce_committed)
                except ChainError as exc:
                    dropped.append((tx, str(exc)))
                    continue
                if tx.nonce in nonces:
                    dropped.append((tx, "nonce repeated in the block"))
                    continue
                nonces.add(tx.nonce)
                included.append(tx)
            while True:
                try:
                    prepared = self._execute_new(parent, included, timestamp_ms)
                    break
                except InapplicableTransaction as exc:
                    dropped.append((included.pop(exc.index), f"not applicable: {exc.reason}"))
            prepared = replace(prepared, dropped=tuple(dropped))
            self._remember_candidate(prepared)
            return prepared

    def process_block(self, block: Block) -> PreparedBlock:
        """Judge a proposed block as the next block (ABCI ``ProcessProposal``): it must extend
        the head, carry the validator-set hash, a valid certificate of the parent, valid
        transactions and roots, and re-executing it must give its receipt and state roots.
        Returns the executed block; raises BlockRejected naming the broken rule. The same
        block always gets the same answer."""
        with self._write_lock:
            cached = self._candidates.get(block.hash)
            if cached is not None and cached.block == block:
                return cached
            prepared = self._process_locked(block)
            self._remember_candidate(prepared)
            return prepared

    def process_encoded(self, data: bytes) -> PreparedBlock:
        """:meth:`process_block` of a block's canonical encoding; raises BlockRejected if it
        does not decode or is not canonical."""
        try:
            block = Block.decode(data)
        except EncodingError as exc:
            raise BlockRejected(f"block does not decode: {exc}") from exc
        if block.encode() != data:
            raise BlockRejected("block encoding is not canonical")
        return self.process_block(block)

    def commit_certified(self, block: Block, certificate: CommitCertificate) -> CommittedBlock:
        """Commit ``block`` as the next block with ``certificate`` (ABCI ``FinalizeBlock``
        and ``Commit``) after checking the certificate against the validator set and, unless
        this node executed the block already, re-executing it. Raises BlockRejected (nothing
        stored) for a block or certificate that does not verify."""
        with self._write_lock:
            if block.header.height != self._head.height + 1:
                raise BlockRejected(
                    f"height {block.header.height} does not follow head {self._head.height}"
                )
            try:
                verify_commit_certificate(
                    certificate,
                    self.validator_set(block.header.height).validators,
                    chain_id=self.chain_id,
                    block_hash=block.hash,
                    height=block.header.height,
                )
            except CommitError as exc:
                raise BlockRejected(f"commit certificate: {exc}") from exc
            cached = self._candidates.get(block.hash)
            prepared = cached if cached is not None and cached.block == block else None
            if prepared is None:
                prepared = self._process_locked(block)
            committed = self._commit_locked(prepared, certificate)
            self._candidates.clear()
            return committed

    def _process_locked(self, block: Block) -> PreparedBlock:
        parent = self._head
        header = block.header
        if header.height != parent.height + 1:
            raise BlockRejected(f"height {header.height} does not follow head {parent.height}")
        if header.parent_hash != parent.hash:
            raise BlockRejected("parent hash is not the head's hash")
        if header.timestamp_ms <= parent.timestamp_ms:
            raise BlockRejected("timestamp does not increase")
        validators = self.validator_set(header.height).validators
        if header.validator_set_hash != validators.hash():
            raise BlockRejected("validator set hash differs")
        if header.proposer not in validators.by_address:
            raise BlockRejected("proposer is not a validator")
        self._check_last_commit(block, parent)
        if header.tx_root != merkle_root([tx.hash for tx in block.transactions]):
            raise BlockRejected("transaction root does not match the transactions")
        try:
            validate_block_transactions(
                block.transactions, self.rules, header.height, self.nonce_committed
            )
        except ChainError as exc:
            raise BlockRejected(f"invalid transaction: {exc}") from exc
        try:
            execution = execute_block(
                self.store.state(),
                parent.state_root,
                self._context(header.height, header.timestamp_ms, header.proposer),
                list(block.transactions),
            )
        except ChainError as exc:
            raise BlockRejected(f"re-execution failed: {exc}") from exc
        if execution.state_root != header.state_root:
            raise BlockRejected("state root differs from re-execution")
        receipts = tuple(execution.receipts)
        if header.receipt_root != merkle_root([r.encode() for r in receipts]):
            raise BlockRejected("receipt root differs from re-execution")
        return PreparedBlock(block=block, receipts=receipts, writes=execution.writes)

    def _check_last_commit(self, block: Block, parent: Header) -> None:
        header = block.header
        if header.height == 1:
            if block.last_commit is not None or header.last_commit_hash != ZERO_HASH:
                raise BlockRejected("block 1 carries a last commit")
            return
        if block.last_commit is None:
            raise BlockRejected("block carries no certificate of its parent")
        if block.last_commit.hash != header.last_commit_hash:
            raise BlockRejected("last commit does not match the header's last_commit_hash")
        stored = self.store.commit_certificate(parent.height)
        if stored is not None and stored.hash == block.last_commit.hash:
            # The very certificate this node verified when it committed the parent.
            return
        try:
            verify_commit_certificate(
                block.last_commit,
                self.validator_set(parent.height).validators,
                chain_id=self.chain_id,
                block_hash=parent.hash,
                height=parent.height,
            )
        except CommitError as exc:
            raise BlockRejected(f"last commit: {exc}") from exc

    def _context(self, height: int, timestamp_ms: int, proposer: Address) -> BlockContext:
        return BlockContext(
            chain_id=self.chain_id,
            height=height,
            timestamp_ms=timestamp_ms,
            proposer=proposer,
            gas_limit=self.genesis.block_gas_limit,
        )

    def _execute_new(
        self, parent: Header, txs: list[Transaction], timestamp_ms: int
    ) -> PreparedBlock:
        """Execute ``txs`` on ``parent`` and build the header; raises InapplicableTransaction."""
        assert self._validator_key is not None
        height = parent.height + 1
        timestamp = max(timestamp_ms, parent.timestamp_ms + 1)
        proposer = self._validator_key.public_key.address
        execution = execute_block(
            self.store.state(),
            parent.state_root,
            self._context(height, timestamp, proposer),
            txs,
        )
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
            validator_set_hash=self.validator_set(height).validators.hash(),
            last_commit_hash=ZERO_HASH if last_commit is None else last_commit.hash,
        )
        block = Block(header=header, transactions=tuple(txs), last_commit=last_commit)
        return PreparedBlock(block=block, receipts=receipts, writes=execution.writes)

    def _commit_locked(
        self, prepared: PreparedBlock, certificate: CommitCertificate
    ) -> CommittedBlock:
        block = prepared.block
        self.store.commit_block(
            BlockCommit(
                block=block,
                receipts=prepared.receipts,
                state_writes=prepared.writes,
                certificate=certificate,
            )
        )
        self._remember(block, prepared.receipts)
        self._head = block.header
        return CommittedBlock(block=block, receipts=prepared.receipts, certificate=certificate)

    def _remember_candidate(self, prepared: PreparedBlock) -> None:
        self._candidates[prepared.block.hash] = prepared
        self._candidates.move_to_end(prepared.block.hash)
        while len(self._candidates) > _CACHE_CANDIDATES:
            self._candidates.popitem(last=False)

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
            cached_txs = sum(len(cached.transactions) for cached, _ in self._blocks.values())
            while len(self._blocks) > _CACHE_BLOCKS or (
                cached_txs > _CACHE_TXS and len(self._blocks) > 1
            ):
                evicted, _ = self._blocks.popitem(last=False)[1]
                cached_txs -= len(evicted.transactions)


def _governed(genesis: Genesis) -> bool:
    """Whether ``genesis`` deploys the ValidatorGovernance contract; raises LedgerError if its
    initial storage does not list exactly the genesis validators."""
    for contract in genesis.system_contracts:
        if contract.address == VALIDATOR_GOVERNANCE_ADDRESS:
            expected = validator_governance_contract(genesis.validators)
            if contract.storage != expected.storage:
                raise LedgerError(
                    "the ValidatorGovernance contract's genesis storage disagrees with the "
                    "genesis validators; regenerate it (contracts.validators)"
                )
            return True
    return False
