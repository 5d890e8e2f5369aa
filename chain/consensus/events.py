"""Inputs of the consensus state machine. Each is a frozen dataclass fed to
:func:`chain.consensus.core.step`; the driver produces them from the network, its timers,
the application and its write-ahead log."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chain.primitives import Hash32

from .messages import Message, Proposal, Vote
from .proposer import ProposerSchedule


class Step(enum.IntEnum):
    """The step of a round; ordered, so ``step >= Step.PREVOTE`` reads as in the paper."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True)
class StartHeight:
    """Begin deciding ``height``: after the previous height's block was applied, or on start.

    ``replay`` holds the node's own messages for this height from its write-ahead log
    (empty on a fresh height). The machine resumes from them: it never signs a different
    message where one was already signed, and it restores its lock from its last non-nil
    precommit."""

    height: int
    """The height to decide; must be above the current one."""
    schedule: ProposerSchedule
    """Validator set and proposer priorities of ``height``."""
    replay: tuple[Message, ...] = ()
    """Own proposals and votes of ``height`` read back from the write-ahead log."""


@dataclass(frozen=True)
class ProposalReceived:
    """A proposal whose signature and block hash the driver verified
    (:func:`chain.consensus.messages.verify_proposal`); may be one's own, looped back."""

    proposal: Proposal
    """The signed proposal."""


@dataclass(frozen=True)
class VoteReceived:
    """A vote whose author and signature the driver verified
    (:func:`chain.consensus.messages.verify_vote`); may be one's own, looped back."""

    vote: Vote
    """The signed vote."""


@dataclass(frozen=True)
class TimeoutFired:
    """A timeout requested by a :class:`chain.consensus.effects.ScheduleTimeout` expired."""

    height: int
    """Height the timeout was scheduled for."""
    round: int
    """Round the timeout was scheduled for."""
    step: Step
    """Which timeout: propose, prevote or precommit."""


@dataclass(frozen=True)
class ProposerUnavailable:
    """The driver knows the proposer of ``(height, round)`` cannot propose in time: its
    connection to this node is down, or it has not yet committed the height below. The
    machine prevotes nil at once, as if the propose timeout had fired (lines 57-60), unless
    this node is that proposer or a proposal of the round has already arrived (it is judged
    as usual). Prevoting nil early touches liveness only, never safety: the paper lets the
    propose timeout fire at any time."""

    height: int
    """Height of the round."""
    round: int
    """The round whose proposer is unavailable."""


@dataclass(frozen=True)
class ProposalPrepared:
    """The application's answer to :class:`chain.consensus.effects.PrepareProposal`
    (ABCI 2.0 ``PrepareProposal``): the block to propose."""

    height: int
    """Height the block was asked for."""
    round: int
    """Round the block was asked for."""
    block_hash: Hash32
    """Hash of ``block``."""
    block: bytes
    """The block to propose."""


@dataclass(frozen=True)
class ProposalProcessed:
    """The application's answer to :class:`chain.consensus.effects.ProcessProposal`
    (ABCI 2.0 ``ProcessProposal``): whether a proposed block is valid (the paper's
    ``valid(v)``). The answer must be deterministic for a given block."""

    height: int
    """Height of the proposal."""
    block_hash: Hash32
    """The block judged."""
    accepted: bool
    """True if the block is valid."""


Event = (
    (StartHeight | ProposalReceived | VoteReceived | TimeoutFired | ProposalPrepared)
    | ProposalProcessed
    | ProposerUnavailable
)
"""Any input of the state machine."""
