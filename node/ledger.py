"""The node's view of the chain: the block store, execution, and block production.

:class:`Ledger` owns the LMDB block store (which also indexes every committed log). It builds
and commits the genesis block on first start, resumes from the store's head after a
restart, judges and executes new blocks by the rules of :mod:`node.block_validity`, commits
them, and answers every read the JSON-RPC layer needs (:mod:`node.chain_reads`). Its methods
are synchronous and are called from one writer thread (block production) and any number of
reader threads; LMDB gives each read its own snapshot.

Group commit (dev-mode production): :meth:`Ledger.execute_ahead` executes and certifies the
next block on top of blocks not yet written (the *tip*), and :meth:`Ledger.flush` writes every
such block in one LMDB write transaction, so one flush to disk makes several blocks durable,
and the next block executes while the previous ones are being flushed. Readers see only the
durable *head*: a block, its receipts and its state become visible once they are on disk.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from chain.commit import CommitError, sign_precommit, verify_commit_certificate
from chain.crypto import PrivateKey
from chain.errors import ChainError, EncodingError
from chain.execution import (
    BlockContext,
    InapplicableTransaction,
    account_at,
    execute_block,
)
from chain.genesis import Genesis, genesis_block
from chain.merkle import merkle_root
from chain.primitives import ZERO_HASH, Address, Hash32
from chain.storage import BlockCommit, KeyValueReader
from chain.types import Block, CommitCertificate, Header, Transaction
from chain.validation import TxRules, tx_rules_of
from contracts.permissions import PERMISSIONS_ADDRESS
from contracts.validators import (
    RulingSet,
    block_system_writes,
)
from node.ahead_state import AheadState
from node.block_validity import (
    check_block_size,
    check_execution,
    check_header,
    check_last_commit,
    check_transactions,
    tx_bytes_budget,
)
from node.chain_reads import ChainReads
from node.dev_rewind import Rewound, check_dev_rewind
from node.late_precommits import carried_certificate
from node.ledger_types import BlockRejected as BlockRejected
from node.ledger_types import CommittedBlock as CommittedBlock
from node.ledger_types import GroupCommitFailed as GroupCommitFailed
from node.ledger_types import LedgerError as LedgerError
from node.ledger_types import PreparedBlock as PreparedBlock
from node.ledger_types import StaleBlock as StaleBlock
from node.ledger_types import TxLookup as TxLookup

# Log queries live in node.log_index; the RPC layer imports them from here too.
from node.log_index import block_log_entries as block_log_entries
from node.log_index import log_matches as log_matches
from node.permissions import Permissions, permissions_contract_of, roles_at
from node.proposal_selection import select_transactions
from node.roles_watch import RolesWatch
from node.storage.lmdb_store import LmdbBlockStore
from node.validator_sets import ValidatorSets

_CACHE_CANDIDATES = 16


class Ledger(ChainReads):
    """Store + execution + block production for one node (the reads it answers come from
    :class:`~node.chain_reads.ChainReads`). Build it with :meth:`open`."""

    def __init__(
        self,
        store: LmdbBlockStore,
        genesis: Genesis,
        validator_key: PrivateKey | None,
        rules: TxRules,
    ) -> None:
        """Wrap opened resources; prefer :meth:`open`."""
        super().__init__(store, genesis)
        self.rules = rules
        self._validator_key = validator_key
        self._write_lock = threading.Lock()
        self._candidates: OrderedDict[Hash32, PreparedBlock] = OrderedDict()
        self._validator_sets = ValidatorSets(self, genesis)
        permissions_contract_of(genesis)  # refuses a Permissions contract that disagrees
        # Group commit: blocks executed and certified on top of the head, not yet written.
        self._tip = self._head
        self._pending: list[tuple[PreparedBlock, CommitCertificate]] = []
        self._pending_writes: dict[bytes, bytes] = {}
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._ahead_state = AheadState(lambda: self._pending_writes, store.state())
        self._roles_watch = RolesWatch(self._head)
        self.rewind_listeners: list[Callable[[int], None]] = []
        """Called with the height after every :meth:`rewind_dev` (filters follow it)."""

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
                rules or tx_rules_of(genesis),
            )
        except BaseException:
            store.close()
            raise
        return ledger

    def close(self) -> None:
        """Close the store (after any flush in progress; blocks queued and not flushed are
        dropped: their transactions are still in the mempool's store)."""
        with self._write_lock, self._flush_lock:
            self.store.close()

    # -- chain head and validator sets -------------------------------------------------------

    @property
    def max_block_bytes(self) -> int:
        """The most bytes a block's canonical encoding may take (from genesis)."""
        return self.genesis.max_block_bytes

    def permissions_at(self, parent: Header) -> Permissions:
        """Who may send what in a block on top of ``parent``: the roles in ``parent``'s state
        (the Permissions contract's storage there, or static genesis roles)."""
        return Permissions(roles_at(self.genesis, self, parent))

    def tx_bytes_budget(self) -> int:
        """How many bytes of transaction encodings fit in the next block (on the tip):
        ``max_block_bytes`` less the header, the tip's commit certificate and the list
        prefixes (measured with the largest integers a header may hold)."""
        tip, last_commit = self._tip_and_certificate()
        return tx_bytes_budget(self.max_block_bytes, tip, last_commit)

    def _tip_and_certificate(self) -> tuple[Header, CommitCertificate | None]:
        """The tip and its commit certificate (``None`` for genesis)."""
        with self._pending_lock:
            tip = self._tip
            if self._pending:
                return tip, self._pending[-1][1]
        return tip, self.store.commit_certificate(tip.height) if tip.height >= 1 else None

    @property
    def validator_address(self) -> Address | None:
        """This node's validator address, when it holds a validator key."""
        return None if self._validator_key is None else self._validator_key.public_key.address

    def use_validator_key(self, key: PrivateKey) -> None:
        """Propose (and, single-validator, sign) with ``key`` from now on: the consensus driver
        switches to a rotated key at the height its validator set first holds it
        (:mod:`node.keyring`)."""
        self._validator_key = key

    def validator_set(self, height: int) -> RulingSet:
        """The validator set ruling ``height`` (see
        :meth:`node.validator_sets.ValidatorSets.validator_set`)."""
        return self._validator_sets.validator_set(height)

    def validators_at(self, header: Header, height: int) -> RulingSet:
        """What the ValidatorGovernance contract answers for ``validatorsAt(height)`` in the
        state after ``header`` (see :meth:`node.validator_sets.ValidatorSets.validators_at`)."""
        return self._validator_sets.validators_at(header, height)

    @property
    def governed(self) -> bool:
        """Whether validator changes go through the ValidatorGovernance contract."""
        return self._validator_sets.governed

    # -- block production ------------------------------------------------------------------------

    def produce_block(self, txs: Sequence[Transaction], timestamp_ms: int) -> CommittedBlock:
        """Execute ``txs`` on the tip state, commit the block with this node's single-validator
        commit certificate (with any block executed before it and not yet written), and
        return it. The caller has validated ``txs``; raises InapplicableTransaction (nothing
        committed) for one that cannot be applied.

        The timestamp is raised to one past the parent's if the clock lags behind it."""
        committed = self.execute_ahead(txs, timestamp_ms)
        self.flush()
        return committed

    # -- group commit (dev mode) -----------------------------------------------------------------

    @property
    def tip(self) -> Header:
        """The last executed block: the head, or the last block executed by
        :meth:`execute_ahead` and not yet written by :meth:`flush`."""
        return self._tip

    @property
    def pending_count(self) -> int:
        """Blocks executed ahead and not yet durable."""
        return len(self._pending)

    def execute_ahead(self, txs: Sequence[Transaction], timestamp_ms: int) -> CommittedBlock:
        """Execute ``txs`` as the block after the tip, certify it with this node's
        single-validator certificate and queue it for :meth:`flush`; it becomes the tip.
        Nothing is written and readers do not see it until it is flushed. The caller has
        validated ``txs`` against the head (see :meth:`ahead_is_safe`); raises
        InapplicableTransaction (nothing queued) for one that cannot be applied, and
        LedgerError if the blocks it was built on were discarded meanwhile by a failed flush.

        The timestamp is raised to one past the parent's if the clock lags behind it."""
        if self._validator_key is None:
            raise LedgerError("this node holds no validator key; it cannot produce blocks")
        with self._write_lock:
            parent, last_commit = self._tip_and_certificate()
            prepared = self._execute_new(
                parent, list(txs), timestamp_ms, last_commit, self._ahead_state
            )
            check_block_size(len(prepared.block.encode()), self.max_block_bytes)
            certificate = self._sign_certificate(prepared.block.header)
            with self._pending_lock:
                if self._tip.hash != parent.hash:
                    raise LedgerError("the blocks under this block were discarded; not queued")
                self._pending.append((prepared, certificate))
                self._pending_writes.update(prepared.writes)
                self._tip = prepared.block.header
        return CommittedBlock(
            block=prepared.block, receipts=prepared.receipts, certificate=certificate
        )

    def ahead_is_safe(self) -> bool:
        """Whether a block executed on the tip now is judged as it would be once the blocks
        under it are durable: the producer and admission read roles at the head, so no
        pending block may have changed the Permissions contract's storage, and the chain's
        validator set must be fixed by genesis (a governed set is read at the head)."""
        with self._pending_lock:
            if not self._pending:
                return True
            tip, head = self._tip, self._head
            pending = [prepared.block.hash for prepared, _ in self._pending]
        if self.governed:
            return False
        if all(self._roles_watch.keeps_roles(block_hash) for block_hash in pending):
            return True
        at_tip = account_at(self._ahead_state, tip.state_root, PERMISSIONS_ADDRESS)
        at_head = account_at(self.store.state(), head.state_root, PERMISSIONS_ADDRESS)
        return at_tip.storage_root == at_head.storage_root

    def roles_epoch(self, header: Header) -> int | None:
        """The roles epoch of committed head ``header`` (see :mod:`node.roles_watch`)."""
        return self._roles_watch.epoch(header)

    def flush(self) -> list[CommittedBlock]:
        """Write every block queued by :meth:`execute_ahead` in one write transaction (one
        flush to disk), move the head to the last, and return them in height order; they
        are durable when this returns. On a store failure nothing is written, every queued
        block (also those queued while this ran) is discarded, the tip falls back to the
        head, and GroupCommitFailed lists the discarded blocks."""
        with self._flush_lock:
            with self._pending_lock:
                batch = list(self._pending)
            if not batch:
                return []
            try:
                self.store.commit_blocks(
                    [
                        BlockCommit(
                            block=prepared.block,
                            receipts=prepared.receipts,
                            state_writes=prepared.writes,
                            certificate=certificate,
                        )
                        for prepared, certificate in batch
                    ]
                )
            except Exception as exc:
                with self._pending_lock:
                    discarded = tuple(
                        CommittedBlock(prepared.block, prepared.receipts, certificate)
                        for prepared, certificate in self._pending
                    )
                    self._pending.clear()
                    self._pending_writes = {}
                    self._tip = self._head
                raise GroupCommitFailed(f"group commit failed: {exc}", discarded) from exc
            for prepared, _ in batch:
                self._remember(prepared.block, prepared.receipts)
            self._roles_watch.committed(prepared.block.header for prepared, _ in batch)
            with self._pending_lock:
                del self._pending[: len(batch)]
                self._head = batch[-1][0].block.header
                self._pending_writes = {
                    key: value
                    for prepared, _ in self._pending
                    for key, value in prepared.writes.items()
                }
        return [
            CommittedBlock(block=prepared.block, receipts=prepared.receipts, certificate=cert)
            for prepared, cert in batch
        ]

    def rewind_dev(self, height: int) -> Rewound:
        """Single-validator dev chain only (:mod:`node.dev_rewind`): discard every block above
        ``height``, and any block executed ahead and not yet written, in ONE write
        transaction, and make the block at ``height`` the head. Raises RewindRefused, nothing
        changed, on any other chain or for a height above the head."""
        with self._write_lock, self._flush_lock, self._pending_lock:
            ruling = self.validator_set(self._head.height + 1).validators
            check_dev_rewind(self.genesis, ruling, self.validator_address, self._head, height)
            header = self.store.rewind_to(height)
            unwritten = tuple(prepared.block for prepared, _ in self._pending)
            self._pending.clear()
            self._pending_writes = {}
            self._head = self._tip = header
            self._candidates.clear()
            self._roles_watch.rewound(header)
            # Both caches are keyed by height: forget what the discarded blocks put there.
            self._validator_sets = ValidatorSets(self, self.genesis)
            self._forget_blocks()
        for listener in self.rewind_listeners:
            listener(height)
        return Rewound(header, unwritten)

    # -- consensus: prepare / process / commit (ABCI 2.0 shaped) ---------------------------------

    def prepare_block(
        self,
        txs: Sequence[Transaction],
        timestamp_ms: int,
        last_commit: CommitCertificate | None = None,
    ) -> PreparedBlock:
        """Build the next block to propose (ABCI ``PrepareProposal``): execute ``txs`` on the
        head state, leaving out any that cannot be included (failed validation against the
        head, or inapplicable), and return the executed block uncommitted. The block carries
        the parent's stored commit certificate, or ``last_commit``: a certificate of the
        parent holding precommits that arrived after the stored one was built
        (:mod:`node.late_precommits`), used only if it verifies."""
        if self._validator_key is None:
            raise LedgerError("this node holds no validator key; it cannot propose blocks")
        with self._write_lock:
            parent = self._head
            height = parent.height + 1
            stored = self.store.commit_certificate(parent.height) if height > 1 else None
            carried = carried_certificate(
                stored,
                last_commit,
                lambda: self.validator_set(parent.height).validators,
                chain_id=self.chain_id,
            )
            selection = select_transactions(
                txs,
                rules=self.rules,
                height=height,
                nonce_committed=self.nonce_committed,
                permissions=self.permissions_at(parent),
                bytes_left=tx_bytes_budget(self.max_block_bytes, parent, carried),
            )
            included, dropped = selection.included, selection.dropped
            while True:
                try:
                    prepared = self._execute_new(parent, included, timestamp_ms, carried)
                    break
                except InapplicableTransaction as exc:
                    dropped.append((included.pop(exc.index), f"not applicable: {exc.reason}"))
            check_block_size(len(prepared.block.encode()), self.max_block_bytes)
            prepared = replace(prepared, dropped=tuple(dropped), deferred=tuple(selection.deferred))
            self._remember_candidate(prepared)
            return prepared

    def process_block(self, block: Block) -> PreparedBlock:
        """Judge a proposed block as the next block (ABCI ``ProcessProposal``): it must extend
        the head, carry the validator-set hash, a valid certificate of the parent, valid
        transactions and roots, and re-executing it must give its receipt and state roots.
        Returns the executed block; raises BlockRejected naming the broken rule.

        The same block always gets the same answer, also when block sync committed it while
        its proposal waited to be judged: a block already committed at its height is
        accepted as it stands (its stored receipts, nothing to write), and another block at
        a committed height raises StaleBlock."""
        with self._write_lock:
            cached = self._candidates.get(block.hash)
            if cached is not None and cached.block == block:
                return cached
            committed = self._committed_as(block)
            if committed is not None:
                return PreparedBlock(block=block, receipts=committed.receipts, writes={})
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
        # The size rule first, on the bytes as they came, before any execution.
        check_block_size(len(data), self.max_block_bytes)
        return self.process_block(block)

    def commit_certified(self, block: Block, certificate: CommitCertificate) -> CommittedBlock:
        """Commit ``block`` as the next block with ``certificate`` (ABCI ``FinalizeBlock``
        and ``Commit``) after checking the certificate against the validator set and, unless
        this node executed the block already, re-executing it. Raises BlockRejected (nothing
        stored) for a block or certificate that does not verify.

        Committing a block that is committed already (consensus and block sync both
        delivering it) changes nothing and returns it as stored; another block at a
        committed height raises StaleBlock."""
        with self._write_lock:
            committed = self._committed_as(block)
            if committed is not None:
                return committed
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

    def _committed_as(self, block: Block) -> CommittedBlock | None:
        """``block`` as stored if it is committed; raises StaleBlock if another block is
        committed at its height; ``None`` for a height above the head."""
        height = block.header.height
        if height > self._head.height:
            return None
        found = self.block_and_receipts(height)
        if found is None or found[0].hash != block.hash:
            raise StaleBlock(f"height {height} is committed already, with another block")
        return CommittedBlock(
            block=found[0], receipts=found[1], certificate=self.store.commit_certificate(height)
        )

    def _process_locked(self, block: Block, size: int | None = None) -> PreparedBlock:
        """Judge ``block`` (of encoded ``size`` bytes, measured here if not given) as the
        next block with every rule of :mod:`node.block_validity`, then re-execute it."""
        parent = self._head
        header = block.header
        check_block_size(len(block.encode()) if size is None else size, self.max_block_bytes)
        check_header(block, parent, self.validator_set(header.height).validators)
        check_last_commit(
            block,
            parent,
            chain_id=self.chain_id,
            stored=self.store.commit_certificate(parent.height) if header.height > 1 else None,
            parent_validators=lambda: self.validator_set(parent.height).validators,
        )
        check_transactions(
            block,
            self.rules,
            nonce_committed=self.nonce_committed,
            permissions=self.permissions_at(parent),
        )
        try:
            execution = execute_block(
                self.store.state(),
                parent.state_root,
                self._context(header.height, header.timestamp_ms, header.proposer),
                list(block.transactions),
                block_system_writes(self.genesis, block.last_commit),
            )
        except ChainError as exc:
            raise BlockRejected(f"re-execution failed: {exc}") from exc
        receipts = check_execution(header, execution)
        self._roles_watch.executed(block.hash, execution.accounts_touched)
        return PreparedBlock(block=block, receipts=receipts, writes=execution.writes)

    def _context(self, height: int, timestamp_ms: int, proposer: Address) -> BlockContext:
        return BlockContext(
            chain_id=self.chain_id,
            height=height,
            timestamp_ms=timestamp_ms,
            proposer=proposer,
            gas_limit=self.genesis.block_gas_limit_at(height),
        )

    def _execute_new(
        self,
        parent: Header,
        txs: list[Transaction],
        timestamp_ms: int,
        last_commit: CommitCertificate | None = None,
        state: KeyValueReader | None = None,
    ) -> PreparedBlock:
        """Execute ``txs`` on ``parent`` (read from ``state``, by default the store's) and
        build the header, carrying ``last_commit`` (by default the stored certificate of
        ``parent``); raises InapplicableTransaction."""
        assert self._validator_key is not None
        height = parent.height + 1
        timestamp = max(timestamp_ms, parent.timestamp_ms + 1)
        proposer = self._validator_key.public_key.address
        if last_commit is None:
            last_commit = self.store.commit_certificate(parent.height) if height > 1 else None
        execution = execute_block(
            self.store.state() if state is None else state,
            parent.state_root,
            self._context(height, timestamp, proposer),
            txs,
            block_system_writes(self.genesis, last_commit),
        )
        receipts = tuple(execution.receipts)
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
        self._roles_watch.executed(block.hash, execution.accounts_touched)
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
        self._roles_watch.committed([block.header])
        self._head = self._tip = block.header
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
