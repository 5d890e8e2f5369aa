"""Who has been seen signing recently: the chain's deterministic record of validator liveness.

A block carries the commit certificate of its parent (``Block.last_commit``, committed to by
the header's ``last_commit_hash``); every node that accepts the block holds the same
certificate, so the validators whose precommits it carries are a fact of the chain, not of
one node's view of the network. Two consumers read liveness only from there:

- **The quorum guard of validator changes** (``contracts/src/ValidatorGovernance.sol``).
  Before a block's transactions, the block executor applies :class:`StorageWrite` values
  that record, per signer of the last commit, the height it signed
  (``lastSignedHeight[validator]`` in the contract's storage; the writes are built by
  :func:`contracts.validators.liveness_writes`). Like EIP-4788's beacon-root write, it is a
  system write, not a transaction: no sender, no gas, no receipt, and every node and
  ``verify-chain`` make it identically because it depends on the block alone.
- **The proposer rotation** (:func:`absent_validators`): a validator that signed none of the
  last :data:`PROPOSER_LIVENESS_WINDOW` certificates is skipped as proposer (it keeps its
  vote), so a validator that is down does not cost a propose timeout every time its turn
  comes (see :mod:`chain.consensus.proposer`). During the window before that, each node cuts
  the stopped validator's turns short by itself (``node/proposer_presence.py``).

Pure: no clock, no network; everything comes from committed blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain.commit import ValidatorSet
from chain.primitives import Address
from chain.types import CommitCertificate

PROPOSER_LIVENESS_WINDOW = 8
"""A validator absent from every one of this many latest certificates is skipped as proposer.
Certificates carry the precommits that reached the deciding node first (at least two thirds
of the power, the decider's own among them), so an online validator misses one now and then
by chance; eight in a row is rare for an online one (and costs nothing but a turn to
propose), while a validator that is down is out of the rotation eight blocks after it
stopped."""


@dataclass(frozen=True)
class StorageWrite:
    """One storage slot set by the protocol itself before a block's transactions."""

    address: Address
    """The contract whose storage is written."""
    slot: int
    """The storage slot, in [0, 2**256)."""
    value: int
    """The value written, in [0, 2**256)."""


def certificate_signers(certificate: CommitCertificate | None) -> tuple[Address, ...]:
    """The validators whose precommits ``certificate`` carries (none for ``None``: block 1
    carries no certificate), in the certificate's order (ascending address)."""
    if certificate is None:
        return ()
    return tuple(signature.validator for signature in certificate.signatures)


def absent_validators(
    validators: ValidatorSet, recent_certificates: Sequence[CommitCertificate | None]
) -> frozenset[Address]:
    """The members of ``validators`` that signed none of ``recent_certificates`` (the last
    commits carried by the latest committed blocks, oldest first). Nobody is absent while
    fewer than :data:`PROPOSER_LIVENESS_WINDOW` certificates are given (a chain's first
    blocks), and never so many that the rest lack a quorum: the
    signers of any one certificate hold one, so this happens only for inconsistent input,
    and then nobody is called absent."""
    window = [c for c in recent_certificates[-PROPOSER_LIVENESS_WINDOW:] if c is not None]
    if len(window) < PROPOSER_LIVENESS_WINDOW:
        return frozenset()
    seen: set[Address] = set()
    for certificate in window:
        seen.update(certificate_signers(certificate))
    absent = frozenset(v.address for v in validators.validators if v.address not in seen)
    present_power = sum(v.power for v in validators.validators if v.address not in absent)
    if present_power < validators.quorum_power:
        return frozenset()
    return absent
