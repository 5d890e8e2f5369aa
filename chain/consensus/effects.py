"""Outputs of the consensus state machine: what the driver must do, in list order.

Signing: the machine holds no keys. A :class:`Broadcast` carries an unsigned message; the
driver signs it with the node's key, sends it to every peer and feeds it back to its own
machine as :class:`chain.consensus.events.ProposalReceived` or
:class:`chain.consensus.events.VoteReceived`, which is how one's own votes are counted
and enter commit certificates.

Persist before send: every own message appears in a :class:`Persist` before the
:class:`Broadcast` of it in the same list; the driver makes the write durable before it
signs and sends. Replayed messages are broadcast again without a new :class:`Persist`.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.primitives import Hash32
from chain.types import CommitCertificate

from .events import Step
from .messages import Message


@dataclass(frozen=True)
class Persist:
    """Append ``message`` (one's own, unsigned) to the write-ahead log, durably."""

    message: Message
    """The own proposal or vote about to be signed and sent."""


@dataclass(frozen=True)
class Broadcast:
    """Sign ``message`` with the node's key, send it to all peers and back to oneself."""

    message: Message
    """The own proposal or vote, unsigned."""


@dataclass(frozen=True)
class ScheduleTimeout:
    """Feed :class:`chain.consensus.events.TimeoutFired` after ``delay_ms`` milliseconds."""

    height: int
    """Height of the timeout."""
    round: int
    """Round of the timeout."""
    step: Step
    """Which timeout."""
    delay_ms: int
    """How long to wait, in milliseconds."""


@dataclass(frozen=True)
class PrepareProposal:
    """Ask the application for a block to propose (ABCI 2.0 ``PrepareProposal``); answer
    with :class:`chain.consensus.events.ProposalPrepared`."""

    height: int
    """Height of the block wanted."""
    round: int
    """Round the block will be proposed in."""


@dataclass(frozen=True)
class ProcessProposal:
    """Ask the application whether a proposed block is valid (ABCI 2.0
    ``ProcessProposal``); answer with :class:`chain.consensus.events.ProposalProcessed`."""

    height: int
    """Height of the proposal."""
    round: int
    """Round the block was first seen in."""
    block_hash: Hash32
    """Hash of ``block``."""
    block: bytes
    """The block to judge."""


@dataclass(frozen=True)
class Commit:
    """The height is decided: apply ``block`` (ABCI 2.0 ``FinalizeBlock`` and ``Commit``),
    store it with ``certificate``, then feed
    :class:`chain.consensus.events.StartHeight` for the next height."""

    height: int
    """The decided height."""
    round: int
    """The round in which it was decided."""
    block_hash: Hash32
    """Hash of the decided block."""
    block: bytes
    """The decided block."""
    certificate: CommitCertificate
    """Precommits for the block from more than 2/3 of the voting power, sorted by address."""


@dataclass(frozen=True)
class EquivocationEvidence:
    """A validator signed two different messages of one kind at one height and round."""

    first: Message
    """The message counted."""
    second: Message
    """The conflicting message, ignored."""


Effect = (
    Persist | Broadcast | ScheduleTimeout | PrepareProposal | ProcessProposal | Commit
) | EquivocationEvidence
"""Any output of the state machine."""
