"""Tendermint consensus as a pure state machine (DESIGN.md section 5).

``step(state, event) -> (state, effects)``: events are verified messages, timeouts, the
application's answers and the start of a height; effects are persist, broadcast, schedule,
application requests, commit and equivocation evidence. No sockets, clock, keys or
randomness inside; the node's driver does the I/O, persists its own messages before
sending them, signs, and replays its write-ahead log on start.
"""

from chain.consensus.core import lock_permits, step
from chain.consensus.effects import (
    Broadcast,
    Commit,
    Effect,
    EquivocationEvidence,
    Persist,
    PrepareProposal,
    ProcessProposal,
    ScheduleTimeout,
)
from chain.consensus.errors import (
    BadMessageSignature,
    BlockHashMismatch,
    ConsensusError,
    InvalidEvent,
    InvalidMessage,
    UnknownValidator,
    WrongHeight,
)
from chain.consensus.events import (
    Event,
    ProposalPrepared,
    ProposalProcessed,
    ProposalReceived,
    ProposerUnavailable,
    StartHeight,
    Step,
    TimeoutFired,
    VoteReceived,
)
from chain.consensus.messages import (
    NIL_PRECOMMIT_SIGN_PREFIX,
    NIL_ROUND,
    PREVOTE_SIGN_PREFIX,
    PROPOSAL_SIGN_PREFIX,
    Message,
    Proposal,
    Vote,
    VoteType,
    decode_message,
    encode_message,
    proposal_sign_bytes,
    verify_proposal,
    verify_vote,
    vote_sign_bytes,
)
from chain.consensus.proposer import ProposerSchedule
from chain.consensus.state import ConsensusConfig, ConsensusState, TimeoutConfig

__all__ = [
    "NIL_PRECOMMIT_SIGN_PREFIX",
    "NIL_ROUND",
    "PREVOTE_SIGN_PREFIX",
    "PROPOSAL_SIGN_PREFIX",
    "BadMessageSignature",
    "BlockHashMismatch",
    "Broadcast",
    "Commit",
    "ConsensusConfig",
    "ConsensusError",
    "ConsensusState",
    "Effect",
    "EquivocationEvidence",
    "Event",
    "InvalidEvent",
    "InvalidMessage",
    "Message",
    "Persist",
    "PrepareProposal",
    "ProcessProposal",
    "Proposal",
    "ProposalPrepared",
    "ProposalProcessed",
    "ProposalReceived",
    "ProposerSchedule",
    "ProposerUnavailable",
    "ScheduleTimeout",
    "StartHeight",
    "Step",
    "TimeoutConfig",
    "TimeoutFired",
    "UnknownValidator",
    "Vote",
    "VoteReceived",
    "VoteType",
    "WrongHeight",
    "decode_message",
    "encode_message",
    "lock_permits",
    "proposal_sign_bytes",
    "step",
    "verify_proposal",
    "verify_vote",
    "vote_sign_bytes",
]
