"""The checks a block passes before the explorer indexes or re-verifies it: it is the block
its certificate commits, signed by the validator set ruling its height.

The validator set is not taken from the node. The explorer follows it itself from genesis:
the genesis members, then every change ValidatorGovernance executed (its ``Executed`` event
names the validator, power and effective height; the key comes from the ``propose`` call
of the same proposal), as the chain's rule says (a change rules from its effective height).
Every header commits to the hash of its ruling set, so a set followed wrongly is caught at
the first height it matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.commit import CommitError, ValidatorSet, verify_commit_certificate
from chain.errors import ChainError
from chain.genesis import Genesis, genesis_block
from chain.merkle import merkle_root
from chain.primitives import Hash32
from chain.types import Header
from chain.validation import verify_transaction_signature
from contracts.validators import with_change
from explorer.node_feed import FetchedBlock


class BlockRefused(Exception):
    """A block the node served fails a check; the explorer does not index it."""

    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"block {height}: {reason}")
        self.height = height
        self.reason = reason


@dataclass(frozen=True)
class SetChange:
    """One change of the validator set."""

    effective_height: int
    """The first height it rules."""
    public_key: bytes
    """The validator's uncompressed SM2 key."""
    power: int
    """Its new power (0: removed)."""


@dataclass
class ValidatorTimeline:
    """The validator set at every height, from genesis and the executed changes."""

    genesis_set: ValidatorSet
    """The members at genesis."""
    changes: list[SetChange] = field(default_factory=list)
    """Executed changes, in execution order."""

    def add(self, change: SetChange) -> None:
        """Record an executed change."""
        self.changes.append(change)

    def set_at(self, height: int) -> ValidatorSet:
        """The set ruling ``height``."""
        members = self.genesis_set
        for change in self.changes:
            if change.effective_height <= height:
                changed = with_change(members, change.public_key, change.power)
                if changed is not None:
                    members = changed
        return members


def check_block(
    fetched: FetchedBlock,
    *,
    genesis: Genesis,
    parent: Header | None,
    validators: ValidatorSet,
) -> None:
    """Raise BlockRefused unless ``fetched`` is a well-formed block on ``parent`` committed
    by a certificate of ``validators``: header hash as claimed, parent link, transaction
    hashes, root and signatures, receipts matching their transactions and root, the ruling
    set's hash in the header, and the certificate. Genesis must equal the genesis file's."""
    header, height = fetched.header, fetched.height
    if header.height != height:
        raise BlockRefused(height, f"header claims height {header.height}")
    if header.hash != fetched.claimed_hash:
        raise BlockRefused(height, "block hash differs from its header's hash")
    if height == 0:
        expected, _ = genesis_block(genesis)
        if header != expected.header:
            raise BlockRefused(0, "genesis block differs from the genesis file")
        return
    if parent is None or header.parent_hash != parent.hash:
        raise BlockRefused(height, "parent hash does not match the previous block")
    if header.timestamp_ms <= parent.timestamp_ms:
        raise BlockRefused(height, "timestamp does not increase")
    hashes = [tx.hash for tx in fetched.transactions]
    if [bytes(h) for h in hashes] != list(fetched.claimed_tx_hashes):
        raise BlockRefused(height, "a transaction hash differs from its contents")
    if header.tx_root != merkle_root(hashes):
        raise BlockRefused(height, "transaction root does not match the transactions")
    for index, tx in enumerate(fetched.transactions):
        try:
            verify_transaction_signature(tx)
        except ChainError as exc:
            raise BlockRefused(height, f"transaction {index} signature: {exc}") from exc
    if [r.tx_hash for r in fetched.receipts] != hashes:
        raise BlockRefused(height, "receipts do not match the transactions")
    if header.receipt_root != merkle_root([r.encode() for r in fetched.receipts]):
        raise BlockRefused(height, "receipt root does not match the receipts")
    if header.validator_set_hash != validators.hash():
        raise BlockRefused(height, "validator set hash differs from the ruling set")
    check_certificate(fetched, genesis=genesis, validators=validators)


def check_certificate(fetched: FetchedBlock, *, genesis: Genesis, validators: ValidatorSet) -> None:
    """Raise BlockRefused unless the block's certificate commits it under ``validators``."""
    if fetched.certificate is None:
        raise BlockRefused(fetched.height, "no commit certificate yet")
    try:
        verify_commit_certificate(
            fetched.certificate,
            validators,
            chain_id=genesis.chain_id,
            block_hash=Hash32(fetched.header.hash),
            height=fetched.height,
        )
    except CommitError as exc:
        raise BlockRefused(fetched.height, f"commit certificate: {exc}") from exc
