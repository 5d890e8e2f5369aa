"""The rules a block must keep to be the next block of this chain: one set of checks for
every path a block takes (this node's own proposal, another validator's proposal judged in
ABCI ``ProcessProposal``, and a block received by block sync), so that the same block always
gets the same answer.

Each rule is a function with explicit inputs that raises :class:`BlockRejected` naming the
rule it breaks:

- :func:`check_block_size`: the canonical encoding is at most the genesis ``max_block_bytes``.
- :func:`check_header`: extends the parent, increasing timestamp, the ruling validator set.
- :func:`check_last_commit`: carries a valid certificate of the parent.
- :func:`check_transactions`: a transaction root that matches, every transaction valid
  (:func:`chain.validation.validate_block_transactions`, with the block gas limit that
  rules the block's height by the genesis parameter schedule), and every sender permitted by the
  roles in the *parent's* state (sender role, not frozen, deployer role to create a
  contract; :class:`node.permissions.Permissions`).
- :func:`check_execution`: re-execution gives the header's state and receipt roots.

The ledger (:mod:`node.ledger`) runs them in that order, cheapest first, before it stores or
votes for anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from chain.commit import CommitError, ValidatorSet, verify_commit_certificate
from chain.errors import ChainError
from chain.execution import BlockExecution
from chain.merkle import merkle_root
from chain.primitives import ZERO_HASH, Hash32
from chain.types import Block, CommitCertificate, Header, Receipt
from chain.validation import GasLimitOutOfRange, TxRules, validate_block_transactions
from node.ledger_types import BlockRejected
from node.permissions import Permissions


def check_block_size(size: int, max_block_bytes: int) -> None:
    """Raise BlockRejected if a block whose canonical encoding is ``size`` bytes is larger
    than ``max_block_bytes``."""
    if size > max_block_bytes:
        raise BlockRejected(f"block of {size} bytes, more than the limit of {max_block_bytes}")


def check_header(block: Block, parent: Header, validators: ValidatorSet) -> None:
    """Raise BlockRejected unless ``block`` directly extends ``parent``, its timestamp
    increases, it names ``validators`` (the set ruling its height) and its proposer is one
    of them."""
    header = block.header
    if header.height != parent.height + 1:
        raise BlockRejected(f"height {header.height} does not follow head {parent.height}")
    if header.parent_hash != parent.hash:
        raise BlockRejected("parent hash is not the head's hash")
    if header.timestamp_ms <= parent.timestamp_ms:
        raise BlockRejected("timestamp does not increase")
    if header.validator_set_hash != validators.hash():
        raise BlockRejected("validator set hash differs")
    if header.proposer not in validators.by_address:
        raise BlockRejected("proposer is not a validator")


def check_last_commit(
    block: Block,
    parent: Header,
    *,
    chain_id: int,
    stored: CommitCertificate | None,
    parent_validators: Callable[[], ValidatorSet],
) -> None:
    """Raise BlockRejected unless ``block`` carries a valid commit certificate of ``parent``
    (none for block 1). ``stored`` is the certificate this node holds for the parent: the
    same one needs no second verification; ``parent_validators`` gives the set that ruled
    the parent's height."""
    header = block.header
    if header.height == 1:
        if block.last_commit is not None or header.last_commit_hash != ZERO_HASH:
            raise BlockRejected("block 1 carries a last commit")
        return
    if block.last_commit is None:
        raise BlockRejected("block carries no certificate of its parent")
    if block.last_commit.hash != header.last_commit_hash:
        raise BlockRejected("last commit does not match the header's last_commit_hash")
    if stored is not None and stored.hash == block.last_commit.hash:
        # The very certificate this node verified when it committed the parent.
        return
    try:
        verify_commit_certificate(
            block.last_commit,
            parent_validators(),
            chain_id=chain_id,
            block_hash=parent.hash,
            height=parent.height,
        )
    except CommitError as exc:
        raise BlockRejected(f"last commit: {exc}") from exc


def check_transactions(
    block: Block,
    rules: TxRules,
    *,
    nonce_committed: Callable[[Hash32], bool],
    permissions: Permissions,
) -> None:
    """Raise BlockRejected unless the header's transaction root matches the transactions,
    each is valid at the block's height with no nonce repeated or committed before, and each
    sender is permitted by ``permissions`` (the roles in the parent's state)."""
    header = block.header
    if header.tx_root != merkle_root([tx.hash for tx in block.transactions]):
        raise BlockRejected("transaction root does not match the transactions")
    try:
        validate_block_transactions(block.transactions, rules, header.height, nonce_committed)
    except GasLimitOutOfRange as exc:
        raise BlockRejected(f"invalid transaction: {exc}{_gas_limit_origin(exc, rules)}") from exc
    except ChainError as exc:
        raise BlockRejected(f"invalid transaction: {exc}") from exc
    for index, tx in enumerate(block.transactions):
        refusal = permissions.refusal(tx)
        if refusal is not None:
            raise BlockRejected(f"transaction {index} not permitted: {refusal}")


def _gas_limit_origin(error: GasLimitOutOfRange, rules: TxRules) -> str:
    """Where the block gas limit that refused a transaction comes from, when it was the upper
    bound that refused it: the genesis or an entry of the parameter schedule. A proposer
    that applies another schedule is the likely cause, and the operator must see which value
    this node holds."""
    if error.maximum is None or error.gas_limit <= error.maximum or error.height is None:
        return ""
    changes = rules.upgrades.changes("block_gas_limit")
    entries = [since for since, _ in changes if since <= error.height]
    origin = f"the parameter schedule's entry from height {entries[-1]}" if entries else "genesis"
    return (
        f"; this node's block gas limit {error.maximum} comes from {origin}: a proposer whose "
        "parameter schedule differs from this node's makes blocks this node refuses"
    )


def check_execution(header: Header, execution: BlockExecution) -> tuple[Receipt, ...]:
    """The receipts of ``execution``; raises BlockRejected unless its state root and receipt
    root are the ones ``header`` states."""
    if execution.state_root != header.state_root:
        raise BlockRejected("state root differs from re-execution")
    receipts = tuple(execution.receipts)
    if header.receipt_root != merkle_root([r.encode() for r in receipts]):
        raise BlockRejected("receipt root differs from re-execution")
    return receipts


_MAX_HEADER_INTEGER = 2**64 - 1
# RLP list prefixes of the block and of its transaction list grow with their length (at most
# 9 bytes each); this covers both.
_LIST_PREFIX_SLACK = 32


def tx_bytes_budget(
    max_block_bytes: int, parent: Header, last_commit: CommitCertificate | None
) -> int:
    """How many bytes of transaction encodings a block on top of ``parent`` that carries
    ``last_commit`` may hold within ``max_block_bytes``: the block's own fields are measured
    with the largest height and timestamp a header can carry, so that a block built within
    the budget always passes :func:`check_block_size`."""
    widest = replace(parent, height=_MAX_HEADER_INTEGER, timestamp_ms=_MAX_HEADER_INTEGER)
    empty = Block(header=widest, transactions=(), last_commit=last_commit)
    return max_block_bytes - len(empty.encode()) - _LIST_PREFIX_SLACK
