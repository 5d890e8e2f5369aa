"""Precommits that arrive after a block is decided, added to the certificate the next block
carries (as CometBFT gathers the ``LastCommit`` during ``timeout_commit``).

The state machine builds a block's commit certificate the moment two thirds of the power
precommitted it, so the certificate holds the precommits that arrived first; the slower
validators' precommits come a few milliseconds later. The certificate a block carries of its
parent (``Block.last_commit``) is the chain's record of who is alive: the quorum guard of
validator changes and the proposer rotation read it (:mod:`chain.liveness`). So a validator
that is online but usually last would look absent. While the node waits ``commit_delay_ms``
before the next height, :class:`LatePrecommits` keeps the verified precommits for the decided
block that arrive; the node's next proposal carries the certificate with them
(:meth:`node.ledger.Ledger.prepare_block`). Any certificate with at least two thirds of valid
precommits is a valid last commit, so the other validators accept either form.
"""

from __future__ import annotations

from collections.abc import Callable

from chain.commit import CommitError, ValidatorSet, verify_commit_certificate
from chain.consensus import Vote, VoteType
from chain.primitives import Address
from chain.types import CommitCertificate, CommitSignature


def carried_certificate(
    stored: CommitCertificate | None,
    offered: CommitCertificate | None,
    validators: Callable[[], ValidatorSet],
    *,
    chain_id: int,
) -> CommitCertificate | None:
    """The certificate of the parent that the next block carries: ``offered`` (a grown
    certificate) if it verifies as a certificate of the same block as ``stored`` against
    ``validators()`` (the parent's set), else ``stored`` (``None`` below block 2)."""
    if offered is None or stored is None or offered == stored:
        return stored
    try:
        verify_commit_certificate(
            offered,
            validators(),
            chain_id=chain_id,
            block_hash=stored.block_hash,
            height=stored.height,
        )
    except CommitError:
        return stored
    return offered


class LatePrecommits:
    """The certificate of the block this node decided last, grown by the precommits for that
    block that arrived afterwards. Feed it only votes whose signatures were verified."""

    def __init__(self) -> None:
        """Nothing decided yet."""
        self._certificate: CommitCertificate | None = None
        self._late: dict[Address, bytes] = {}

    def decided(self, certificate: CommitCertificate) -> None:
        """This node decided the block of ``certificate``; later precommits for it are kept."""
        self._certificate = certificate
        self._late = {}

    def offer(self, vote: Vote) -> None:
        """Keep ``vote`` (signature verified) if it precommits the decided block in the round
        it was decided in and its validator is not in the certificate yet."""
        certificate = self._certificate
        if (
            certificate is None
            or vote.type is not VoteType.PRECOMMIT
            or vote.height != certificate.height
            or vote.round != certificate.round
            or vote.block_hash != certificate.block_hash
        ):
            return
        if any(s.validator == vote.validator for s in certificate.signatures):
            return
        self._late.setdefault(vote.validator, vote.signature)

    def certificate_of(self, height: int) -> CommitCertificate | None:
        """The grown certificate of ``height`` if this node decided it, else ``None``."""
        certificate = self._certificate
        if certificate is None or certificate.height != height:
            return None
        if not self._late:
            return certificate
        signatures = {s.validator: s.signature for s in certificate.signatures}
        signatures.update(self._late)
        return CommitCertificate(
            height=certificate.height,
            round=certificate.round,
            block_hash=certificate.block_hash,
            signatures=tuple(
                CommitSignature(validator=address, signature=signatures[address])
                for address in sorted(signatures)
            ),
        )
