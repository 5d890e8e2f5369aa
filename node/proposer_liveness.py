"""Which validators the proposer rotation passes over at a height, read from committed blocks.

A validator that signed none of the last :data:`chain.liveness.PROPOSER_LIVENESS_WINDOW`
certificates carried by committed blocks is passed over as proposer
(:meth:`chain.consensus.ProposerSchedule.with_absent`), so a validator that is down costs no
propose timeout at the heights where the rotation picks it. Only certificates inside blocks
count (``Block.last_commit``): they are the same on every node, unlike the certificate a node
assembled itself for its latest block, so every node derives the same proposers.

Until a validator has been missing from that many certificates, :mod:`node.proposer_presence`
covers its turns: each node sees its connection down (or it behind) and prevotes nil at once.
"""

from __future__ import annotations

from chain.consensus import ProposerSchedule
from chain.liveness import PROPOSER_LIVENESS_WINDOW, absent_validators
from chain.types import CommitCertificate
from node.ledger import Ledger


def recent_last_commits(ledger: Ledger, height: int) -> list[CommitCertificate | None]:
    """The last commits carried by the committed blocks just below ``height``, oldest first
    (at most :data:`~chain.liveness.PROPOSER_LIVENESS_WINDOW`)."""
    first = max(1, height - PROPOSER_LIVENESS_WINDOW)
    commits: list[CommitCertificate | None] = []
    for below in range(first, height):
        block = ledger.block(below)
        if block is not None:
            commits.append(block.last_commit)
    return commits


def with_absent_proposers(
    schedule: ProposerSchedule, ledger: Ledger, height: int
) -> ProposerSchedule:
    """``schedule`` (of ``height``) passing over the validators absent from the recent
    certificates."""
    absent = absent_validators(schedule.validators, recent_last_commits(ledger, height))
    return schedule.with_absent(absent)
