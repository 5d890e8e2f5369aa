"""Re-verify a stored chain from genesis: the auditor's and operator's check that nothing on
disk was altered.

For every height it checks the block decodes canonically, links to its parent, that its
transaction and receipt Merkle roots match, that every transaction signature verifies, that
re-executing its transactions (after the block's system writes, the liveness record of
:func:`contracts.validators.block_system_writes`) gives the stored receipts and the header's
state root, and
that its commit certificate (and the parent's, carried in the block) prove the commit.
Execution runs with the block gas limit ruling each height: the genesis value as changed by
the genesis parameter schedule (:mod:`chain.upgrades`), as block validation does.

Certificates and the header's validator-set hash are checked against the set ruling each
height, by the ledger's own rule (:class:`node.validator_sets.ValidatorSets`): the genesis set
for ever on a chain without the ValidatorGovernance contract, else ``validatorsAt(height)``
in the state after the parent, which is read only once the parent itself has verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chain.commit import CommitError, ValidatorSet, verify_commit_certificate
from chain.errors import ChainError
from chain.execution import BlockContext, CallResult, call, execute_block, storage_at
from chain.genesis import Genesis, genesis_block
from chain.merkle import merkle_root
from chain.primitives import Address
from chain.storage import BlockStore
from chain.types import Block, CommitCertificate, Header, Receipt
from chain.validation import verify_transaction_signature
from contracts.validators import block_system_writes
from node.ledger_types import LedgerError
from node.validator_sets import ValidatorSets

ProgressCallback = Callable[[int, int], None]
"""Called with (height just verified, head height)."""


@dataclass(frozen=True)
class ChainFault:
    """The first height at which the stored chain fails verification."""

    height: int
    """The height of the first bad block."""
    reason: str
    """What is wrong with it."""


def verify_chain(
    store: BlockStore, genesis: Genesis, *, progress: ProgressCallback | None = None
) -> ChainFault | None:
    """Verify every stored block from genesis to the head. Returns the first fault, or
    ``None`` when the whole chain verifies."""
    head = _read(store.head)
    if isinstance(head, ChainFault) or head is None:
        return head if head is not None else ChainFault(0, "the store holds no blocks")
    reads = _VerifiedReads(store, genesis)
    try:
        validator_sets = ValidatorSets(reads, genesis)
    except LedgerError as exc:
        return ChainFault(0, str(exc))
    expected_genesis, _ = genesis_block(genesis)
    parent: Header | None = None
    parent_validators = genesis.validator_set()
    for height in range(head.height + 1):
        validators = parent_validators
        if parent is not None:
            try:
                validators = validator_sets.validator_set(height).validators
            except (LedgerError, ChainError) as exc:
                return ChainFault(height, f"validator set: {exc}")
        fault = _verify_height(
            store, genesis, (parent_validators, validators), expected_genesis, parent, height
        )
        if isinstance(fault, ChainFault):
            return fault
        parent, parent_validators = fault, validators
        reads.verified = fault
        if progress is not None:
            progress(height, head.height)
    return None


class _VerifiedReads:
    """What :class:`~node.validator_sets.ValidatorSets` reads, limited to the verified part
    of the chain: its head is the last verified header, so the set of the height being
    verified comes from the state after its verified parent."""

    def __init__(self, store: BlockStore, genesis: Genesis) -> None:
        self._store = store
        self._genesis = genesis
        self.verified: Header | None = None
        """The highest header verified so far."""

    @property
    def head(self) -> Header:
        assert self.verified is not None, "no validator set is read before genesis verifies"
        return self.verified

    def block(self, height: int) -> Block | None:
        if self.verified is None or height > self.verified.height:
            return None
        return self._store.block_by_height(height)

    def storage(self, header: Header, address: Address, slot: int) -> int:
        return storage_at(self._store.state(), header.state_root, address, slot)

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
        context = BlockContext(
            chain_id=self._genesis.chain_id,
            height=header.height,
            timestamp_ms=header.timestamp_ms,
            proposer=header.proposer,
            gas_limit=self._genesis.block_gas_limit_at(header.height),
        )
        state = self._store.state()
        return call(
            state, header.state_root, context, sender=sender, to=to, data=data, gas=gas, value=value
        )


def _read(action: Callable[[], Header | None]) -> Header | ChainFault | None:
    try:
        return action()
    except ChainError as exc:
        return ChainFault(-1, f"head unreadable: {exc}")


def _verify_height(
    store: BlockStore,
    genesis: Genesis,
    validators: tuple[ValidatorSet, ValidatorSet],
    expected_genesis: Block,
    parent: Header | None,
    height: int,
) -> Header | ChainFault:
    try:
        block = store.block_by_height(height)
        receipts = store.receipts(height)
        certificate = store.commit_certificate(height)
    except ChainError as exc:
        return ChainFault(height, f"unreadable: {exc}")
    if block is None or receipts is None:
        return ChainFault(height, "block or receipts missing")
    header = block.header
    if header.height != height:
        return ChainFault(height, f"block claims height {header.height}")
    if parent is None:
        if block != expected_genesis:
            return ChainFault(height, "genesis block differs from the genesis file")
        return header
    problem = _check_block(store, genesis, validators, block, receipts, parent)
    if problem is None and certificate is not None:
        problem = _check_certificate(genesis, validators[1], certificate, header)
    return header if problem is None else ChainFault(height, problem)


def _check_block(
    store: BlockStore,
    genesis: Genesis,
    validators: tuple[ValidatorSet, ValidatorSet],
    block: Block,
    receipts: tuple[Receipt, ...],
    parent: Header,
) -> str | None:
    """What is wrong with ``block`` on top of ``parent``, or ``None``; ``validators`` are the
    sets ruling the parent's height and the block's."""
    parent_validators, own_validators = validators
    header = block.header
    if header.parent_hash != parent.hash:
        return "parent hash does not match the previous block"
    if header.timestamp_ms <= parent.timestamp_ms:
        return "timestamp does not increase"
    if header.validator_set_hash != own_validators.hash():
        return "validator set hash differs"
    if header.tx_root != merkle_root([tx.hash for tx in block.transactions]):
        return "transaction root does not match the transactions"
    for index, tx in enumerate(block.transactions):
        try:
            verify_transaction_signature(tx)
        except ChainError as exc:
            return f"transaction {index} signature: {exc}"
    if block.last_commit is not None:
        if block.last_commit.hash != header.last_commit_hash:
            return "last commit does not match the header's last_commit_hash"
        problem = _check_certificate(genesis, parent_validators, block.last_commit, parent)
        if problem is not None:
            return f"last commit: {problem}"
    context = BlockContext(
        chain_id=genesis.chain_id,
        height=header.height,
        timestamp_ms=header.timestamp_ms,
        proposer=header.proposer,
        gas_limit=genesis.block_gas_limit_at(header.height),
    )
    try:
        execution = execute_block(
            store.state(),
            parent.state_root,
            context,
            list(block.transactions),
            block_system_writes(genesis, block.last_commit),
        )
    except ChainError as exc:
        return f"re-execution failed: {exc}"
    if execution.state_root != header.state_root:
        return "state root differs from re-execution"
    if tuple(execution.receipts) != receipts:
        return "stored receipts differ from re-execution"
    if header.receipt_root != merkle_root([r.encode() for r in execution.receipts]):
        return "receipt root does not match the receipts"
    return None


def _check_certificate(
    genesis: Genesis, validators: ValidatorSet, certificate: CommitCertificate, header: Header
) -> str | None:
    try:
        verify_commit_certificate(
            certificate,
            validators,
            chain_id=genesis.chain_id,
            block_hash=header.hash,
            height=header.height,
        )
    except CommitError as exc:
        return f"commit certificate: {exc}"
    return None
