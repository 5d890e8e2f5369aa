"""Storage protocols. ``chain`` defines what it needs from a store; ``node`` implements it
(LMDB). Nothing here performs I/O.

The rule every implementation keeps: :meth:`BlockStore.commit_block` writes the block, its
receipts, the state changes its execution produced and every index in ONE atomic
transaction, so that after a crash the store holds either all of a block or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from chain.primitives import Hash32
from chain.types import Block, CommitCertificate, Header, Receipt


class KeyValueReader(Protocol):
    """Read access to the state key-value space (trie nodes and contract code)."""

    def get(self, key: bytes) -> bytes | None:
        """Return the value stored under ``key``, or ``None``."""
        ...


@dataclass(frozen=True)
class TxLocation:
    """Where a committed transaction lives."""

    height: int
    """Height of the block that includes it."""
    index: int
    """Position within that block's transactions."""


@dataclass(frozen=True)
class BlockCommit:
    """Everything that one committed block adds to the store."""

    block: Block
    """The block itself."""
    receipts: tuple[Receipt, ...]
    """One receipt per transaction, in block order."""
    state_writes: Mapping[bytes, bytes]
    """State key-value pairs written by executing the block (trie nodes, code)."""
    certificate: CommitCertificate | None
    """This block's own commit certificate, when known at commit time."""


class BlockStore(Protocol):
    """A durable store of committed blocks, receipts, state and indexes."""

    def head(self) -> Header | None:
        """The header of the highest committed block, or ``None`` for an empty store."""
        ...

    def block_by_height(self, height: int) -> Block | None:
        """The committed block at ``height``, or ``None``."""
        ...

    def block_by_hash(self, block_hash: Hash32) -> Block | None:
        """The committed block with this hash, or ``None``."""
        ...

    def receipts(self, height: int) -> tuple[Receipt, ...] | None:
        """Receipts of the block at ``height`` in block order, or ``None``."""
        ...

    def tx_location(self, tx_hash: Hash32) -> TxLocation | None:
        """Where the transaction with this hash was committed, or ``None``."""
        ...

    def nonce_height(self, nonce: Hash32) -> int | None:
        """The height at which a transaction with this replay nonce was committed."""
        ...

    def commit_certificate(self, height: int) -> CommitCertificate | None:
        """The commit certificate for the block at ``height``, if stored."""
        ...

    def state(self) -> KeyValueReader:
        """A reader over the state as of the head block."""
        ...

    def commit_block(self, commit: BlockCommit) -> None:
        """Atomically append ``commit``. Raises StorageError unless its block extends the
        head (height = head height + 1 and parent hash = head hash)."""
        ...
