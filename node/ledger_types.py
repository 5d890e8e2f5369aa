"""What the ledger hands out and the errors it raises: a block executed but not committed
(:class:`PreparedBlock`), a committed block (:class:`CommittedBlock`), a committed
transaction found by hash (:class:`TxLookup`), and :class:`LedgerError` /
:class:`BlockRejected` / :class:`GroupCommitFailed`. :mod:`node.ledger` re-exports every name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chain.types import Block, CommitCertificate, Receipt, Transaction


class LedgerError(Exception):
    """The ledger cannot start or cannot produce a block."""


class BlockRejected(LedgerError):
    """A proposed or synced block that is not a valid next block (ABCI ``ProcessProposal``
    rejects it); the message says which rule it breaks."""


class StaleBlock(BlockRejected):
    """A block for a height this node has committed already, with another block."""


class GroupCommitFailed(LedgerError):
    """Writing executed blocks to the store failed: none of them was committed, and every
    block executed on top of them is discarded too (``discarded``, in height order)."""

    def __init__(self, message: str, discarded: tuple[CommittedBlock, ...]) -> None:
        super().__init__(message)
        self.discarded = discarded


@dataclass(frozen=True)
class PreparedBlock:
    """A block executed against the head state but not committed: what a proposer built
    (:meth:`node.ledger.Ledger.prepare_block`) or a validator re-executed
    (:meth:`node.ledger.Ledger.process_block`)."""

    block: Block
    """The block."""
    receipts: tuple[Receipt, ...]
    """Its receipts, in transaction order."""
    writes: Mapping[bytes, bytes]
    """State writes that committing the block stores."""
    dropped: tuple[tuple[Transaction, str], ...] = ()
    """Transactions offered to :meth:`node.ledger.Ledger.prepare_block` that no block may
    include (invalid, not permitted, or inapplicable), with the reason."""
    deferred: tuple[Transaction, ...] = ()
    """Transactions offered to :meth:`node.ledger.Ledger.prepare_block` that are valid but
    did not fit in this block's byte budget: they wait for a later block."""


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
