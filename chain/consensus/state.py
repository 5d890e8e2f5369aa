"""Configuration and state of the consensus state machine (immutable values).

The state holds what Algorithm 1 of "The latest gossip on BFT consensus" keeps per process
(``h_p``, ``round_p``, ``step_p``, ``lockedValue``, ``lockedRound``, ``validValue``,
``validRound``) plus the messages received at the current height. Values are identified by
their block hash; the block bytes travel alongside in ``blocks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chain.primitives import Address, Hash32

from .events import Step
from .messages import NIL_ROUND, Message, Proposal, Vote, VoteType
from .proposer import ProposerSchedule

OwnMessageKey = tuple[int, int]
"""``(round, kind)`` of an own message: kind 0 is the proposal, else the :class:`VoteType`."""

MAX_PROPOSALS_PER_ROUND = 4
"""Distinct proposals kept per round; more from an equivocating proposer are dropped."""

MAX_VOTES_PER_VALIDATOR = 4
"""Distinct votes kept per validator, round and type; more from an equivocator are dropped."""

PROPOSAL_SLOT = 0
"""The ``kind`` of an own proposal in :data:`OwnMessageKey`."""


@dataclass(frozen=True)
class TimeoutConfig:
    """Timeouts growing linearly with the round: ``base + round * delta`` milliseconds."""

    propose_ms: int = 3000
    """Wait for the round's proposal, at round 0."""
    propose_delta_ms: int = 500
    """Added to the propose timeout per round."""
    prevote_ms: int = 1000
    """Wait after seeing 2/3 of prevotes for anything, at round 0."""
    prevote_delta_ms: int = 500
    """Added to the prevote timeout per round."""
    precommit_ms: int = 1000
    """Wait after seeing 2/3 of precommits for anything, at round 0."""
    precommit_delta_ms: int = 500
    """Added to the precommit timeout per round."""

    def delay_ms(self, step: Step, round_: int) -> int:
        """The timeout of ``step`` in ``round_``, in milliseconds."""
        if step is Step.PROPOSE:
            return self.propose_ms + round_ * self.propose_delta_ms
        if step is Step.PREVOTE:
            return self.prevote_ms + round_ * self.prevote_delta_ms
        return self.precommit_ms + round_ * self.precommit_delta_ms


@dataclass(frozen=True)
class ConsensusConfig:
    """What a node's state machine is configured with. Fixed for its lifetime, except
    ``address``: a validator that rotated its consensus key changes it between heights, at the
    first height its new key rules (before that height's ``StartHeight``)."""

    chain_id: int
    """Chain id bound into every signature."""
    address: Address | None
    """This node's validator address, or ``None`` for a node that follows without voting."""
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    """Round timeouts."""


@dataclass(frozen=True)
class ConsensusState:
    """The whole state of one node's state machine. Never mutated: :func:`step` returns a
    new value. Build the first one with :meth:`initial`, then feed ``StartHeight``."""

    config: ConsensusConfig
    """The node's configuration."""
    height: int = 0
    """Height being decided (``h_p``); 0 before the first ``StartHeight``."""
    schedule: ProposerSchedule | None = None
    """Validator set and proposer priorities of ``height``."""
    round: int = 0
    """Current round (``round_p``)."""
    step: Step = Step.PROPOSE
    """Current step (``step_p``)."""
    decided: bool = False
    """True once ``height`` is committed, until the next ``StartHeight``."""
    locked_value: Hash32 | None = None
    """Block this node precommitted last (``lockedValue``), or ``None``."""
    locked_round: int = NIL_ROUND
    """Round of ``locked_value`` (``lockedRound``)."""
    valid_value: Hash32 | None = None
    """Latest block seen with a polka (``validValue``), or ``None``."""
    valid_round: int = NIL_ROUND
    """Round of ``valid_value`` (``validRound``)."""
    proposals: Mapping[int, tuple[Proposal, ...]] = field(default_factory=dict)
    """Proposals by each round's proposer, by round. The first is the one this node votes
    on; any further ones (an equivocating proposer, at most
    :data:`MAX_PROPOSALS_PER_ROUND` in all) can still be decided when 2/3 precommit them,
    so a node that saw the "other" block first is not stuck."""
    votes: Mapping[tuple[int, VoteType], Mapping[Address, tuple[Vote, ...]]] = field(
        default_factory=dict
    )
    """Votes per ``(round, type)`` and validator. Normally one; an equivocating validator's
    conflicting votes are kept too (at most :data:`MAX_VOTES_PER_VALIDATOR`), because the
    paper counts distinct senders per value: a validator counts once towards "2/3 for
    anything" and once towards each value it signed. Counting only the first vote would
    let an equivocator show a polka to some honest nodes and hide it from others forever."""
    blocks: Mapping[Hash32, bytes] = field(default_factory=dict)
    """Block bytes by hash, for the blocks proposed at this height."""
    validity: Mapping[Hash32, bool] = field(default_factory=dict)
    """The application's verdict per block (``valid(v)``); absent while not yet known."""
    validation_requested: frozenset[Hash32] = frozenset()
    """Blocks sent to the application for a verdict."""
    own_messages: Mapping[OwnMessageKey, Message] = field(default_factory=dict)
    """Own unsigned proposals and votes of this height: at most one per round and kind."""
    awaiting_block_round: int = NIL_ROUND
    """Round for which a block was asked of the application and not yet received."""
    prevote_timeout_scheduled: bool = False
    """The prevote timeout of ``round`` was scheduled (line 34 fires once)."""
    precommit_timeout_scheduled: bool = False
    """The precommit timeout of ``round`` was scheduled (line 47 fires once)."""
    polka_handled: bool = False
    """A polka for the round's proposal was acted on (line 36 fires once)."""
    evidence_reported: frozenset[tuple[Address, int, int]] = frozenset()
    """``(author, round, kind)`` already reported as equivocating."""

    @classmethod
    def initial(cls, config: ConsensusConfig) -> ConsensusState:
        """A machine that has not started any height yet."""
        return cls(config=config)
