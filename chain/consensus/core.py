"""The Tendermint consensus algorithm as a pure function: ``step(state, event)``.

This follows Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus" (arXiv 1807.04938); comments cite its line numbers. After every event the
machine re-evaluates the ``upon`` rules until none fires, so a rule waiting on a message,
a timeout or the application's verdict fires as soon as its last ingredient arrives.

What the machine does not do, by design: it holds no key (own messages leave unsigned in
:class:`~chain.consensus.effects.Broadcast`), reads no clock (timeouts are effects and
events), verifies no signature (the driver does, with
:func:`~chain.consensus.messages.verify_vote`), and talks to the application only through
effects and events. It tolerates duplicates and reports equivocation as an effect. As in the
paper, "2/3 of votes for v" counts distinct validators that voted v, and "2/3 for anything"
or "1/3 in a later round" counts each validator once; an equivocating validator is thus
counted towards each value it signed, which keeps safety (two 2/3 quorums share more than
1/3 of the power, so an honest validator) and keeps a polka visible to every honest node.

Two shortcuts of timeouts, both allowed by the paper (its safety holds whatever the timeouts
are, so only liveness is at stake, and both only shorten a wait that can bring nothing):

- ``ProposerUnavailable``: the driver knows the round's proposer cannot propose (its
  connection is down, or it is behind); the machine prevotes nil at once as at the propose
  timeout (lines 57-60), never in a round it proposes and never once a proposal of the
  round is in. A proposal arriving later is still recorded and a polka for it acted on.
- 2/3 of the power precommitting nil in the current round starts the next round at once
  (line 65 without the precommit timeout): no block can gather 2/3 precommits in that round.
"""

from __future__ import annotations

from dataclasses import replace

from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, CommitSignature

from .effects import (
    Broadcast,
    Commit,
    Effect,
    EquivocationEvidence,
    Persist,
    PrepareProposal,
    ProcessProposal,
    ScheduleTimeout,
)
from .errors import InvalidEvent
from .events import (
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
from .messages import NIL_ROUND, Message, Proposal, Vote, VoteType
from .proposer import ProposerSchedule
from .state import (
    MAX_PROPOSALS_PER_ROUND,
    MAX_VOTES_PER_VALIDATOR,
    PROPOSAL_SLOT,
    ConsensusState,
    OwnMessageKey,
)


def step(state: ConsensusState, event: Event) -> tuple[ConsensusState, list[Effect]]:
    """Apply ``event`` to ``state``; return the new state and the effects to carry out in
    order. ``state`` is left unchanged. Raises :class:`InvalidEvent` (and changes nothing)
    for a ``StartHeight`` that does not move forward or replays foreign messages."""
    machine = _Machine(state)
    machine.handle(event)
    return machine.freeze(), machine.effects


def lock_permits(state: ConsensusState, block_hash: Hash32, valid_round: int) -> bool:
    """The lock rule of lines 22-23 and 28-29: may this node prevote ``block_hash``,
    proposed with ``valid_round`` (and, if that is not -1, a polka seen in it)?"""
    if valid_round == NIL_ROUND:
        return state.locked_round == NIL_ROUND or state.locked_value == block_hash
    return state.locked_round <= valid_round or state.locked_value == block_hash


def _same_vote(a: Vote, b: Vote) -> bool:
    return a.block_hash == b.block_hash


def _same_proposal(a: Proposal, b: Proposal) -> bool:
    return a.unsigned() == b.unsigned()


class _Machine:
    """A mutable working copy of one state for the duration of one event."""

    def __init__(self, state: ConsensusState) -> None:
        self.effects: list[Effect] = []
        self.load(state)

    def load(self, state: ConsensusState) -> None:
        self.state = state
        self.proposals = dict(state.proposals)
        self.votes = dict(state.votes)
        self.blocks = dict(state.blocks)
        self.validity = dict(state.validity)
        self.validation_requested = set(state.validation_requested)
        self.own_messages = dict(state.own_messages)
        self.evidence_reported = set(state.evidence_reported)

    # -- bookkeeping -----------------------------------------------------------------------

    def set(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]

    def freeze(self) -> ConsensusState:
        return replace(
            self.state,
            proposals=self.proposals,
            votes=self.votes,
            blocks=self.blocks,
            validity=self.validity,
            validation_requested=frozenset(self.validation_requested),
            own_messages=self.own_messages,
            evidence_reported=frozenset(self.evidence_reported),
        )

    @property
    def schedule(self) -> ProposerSchedule:
        assert self.state.schedule is not None
        return self.state.schedule

    @property
    def me(self) -> Address | None:
        return self.state.config.address

    def power_of(self, address: Address) -> int:
        validator = self.schedule.validators.by_address.get(address)
        return 0 if validator is None else validator.power

    def quorum(self, power: int) -> bool:
        """More than 2/3 of the voting power."""
        return power >= self.schedule.validators.quorum_power

    def one_third(self, power: int) -> bool:
        """More than 1/3 of the voting power (at least one honest validator)."""
        return 3 * power > self.schedule.validators.total_power

    def power_for(self, round_: int, vote_type: VoteType, block_hash: Hash32 | None) -> int:
        tally = self.votes.get((round_, vote_type), {})
        return sum(
            self.power_of(address)
            for address, votes in tally.items()
            if any(v.block_hash == block_hash for v in votes)
        )

    def power_any(self, round_: int, vote_type: VoteType) -> int:
        return sum(self.power_of(a) for a in self.votes.get((round_, vote_type), {}))

    def report(self, first: Message, second: Message, author: Address, kind: int) -> None:
        key = (author, first.round, kind)
        if key not in self.evidence_reported:
            self.evidence_reported.add(key)
            self.effects.append(EquivocationEvidence(first, second))

    # -- events ----------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, StartHeight):
            self.start_height(event)
        elif self.state.height == 0 or self.state.decided:
            return
        elif isinstance(event, ProposalReceived):
            self.on_proposal(event.proposal)
        elif isinstance(event, VoteReceived):
            self.on_vote(event.vote)
        elif isinstance(event, TimeoutFired):
            self.on_timeout(event)
        elif isinstance(event, ProposerUnavailable):
            self.on_proposer_unavailable(event)
        elif isinstance(event, ProposalPrepared):
            self.on_prepared(event)
        elif isinstance(event, ProposalProcessed) and event.height == self.state.height:
            self.validity[event.block_hash] = event.accepted
        self.progress()

    def start_height(self, event: StartHeight) -> None:
        if event.height <= self.state.height:
            raise InvalidEvent(f"cannot start height {event.height} at {self.state.height}")
        for message in event.replay:
            author = message.proposer if isinstance(message, Proposal) else message.validator
            if message.height != event.height or author != self.me:
                raise InvalidEvent("replay holds a message that is not own or not this height")
        config = self.state.config
        self.load(ConsensusState(config=config, height=event.height, schedule=event.schedule))
        if not event.replay:
            self.start_round(0)
            return
        self.replay(event.replay)

    def replay(self, messages: tuple[Message, ...]) -> None:
        """Resume a height from one's own write-ahead log (lines 11-21 after a crash)."""
        for message in messages:
            unsigned = message.unsigned()
            if isinstance(unsigned, Proposal):
                self.own_messages[(unsigned.round, PROPOSAL_SLOT)] = unsigned
                self.blocks[unsigned.block_hash] = unsigned.block
                self.validity[unsigned.block_hash] = True
            else:
                self.own_messages[(unsigned.round, int(unsigned.type))] = unsigned
        # The lock is exactly one's last non-nil precommit (lines 36-38 set both at once).
        precommits = [
            m
            for m in self.own_messages.values()
            if isinstance(m, Vote) and m.type is VoteType.PRECOMMIT and m.block_hash is not None
        ]
        if precommits:
            last = max(precommits, key=lambda v: v.round)
            self.set(
                locked_value=last.block_hash,
                locked_round=last.round,
                valid_value=last.block_hash,
                valid_round=last.round,
            )
        round_ = max(round_ for round_, _ in self.own_messages)
        self.start_round(round_)
        if (round_, int(VoteType.PRECOMMIT)) in self.own_messages:
            self.set(step=Step.PRECOMMIT)
        elif (round_, int(VoteType.PREVOTE)) in self.own_messages:
            self.set(step=Step.PREVOTE)
        for key in sorted(self.own_messages):
            self.effects.append(Broadcast(self.own_messages[key]))

    def on_proposal(self, proposal: Proposal) -> None:
        if proposal.height != self.state.height:
            return
        if proposal.proposer != self.schedule.proposer(proposal.round):
            return
        existing = self.proposals.get(proposal.round, ())
        if any(_same_proposal(p, proposal) for p in existing):
            return
        if existing:
            self.report(existing[0], proposal, proposal.proposer, PROPOSAL_SLOT)
            if len(existing) >= MAX_PROPOSALS_PER_ROUND:
                return
        self.proposals[proposal.round] = (*existing, proposal)
        self.blocks.setdefault(proposal.block_hash, proposal.block)
        if (
            proposal.block_hash not in self.validity
            and proposal.block_hash not in self.validation_requested
        ):
            self.validation_requested.add(proposal.block_hash)
            self.effects.append(
                ProcessProposal(
                    proposal.height, proposal.round, proposal.block_hash, proposal.block
                )
            )

    def on_vote(self, vote: Vote) -> None:
        if vote.height != self.state.height or self.power_of(vote.validator) == 0:
            return
        key = (vote.round, vote.type)
        tally = self.votes.get(key, {})
        existing = tally.get(vote.validator, ())
        if any(_same_vote(v, vote) for v in existing):
            return
        if existing:
            self.report(existing[0], vote, vote.validator, int(vote.type))
            if len(existing) >= MAX_VOTES_PER_VALIDATOR:
                return
        self.votes[key] = {**tally, vote.validator: (*existing, vote)}

    def on_timeout(self, event: TimeoutFired) -> None:
        state = self.state
        if event.height != state.height or event.round != state.round:
            return
        if event.step is Step.PROPOSE and state.step is Step.PROPOSE:
            # Lines 57-60: no acceptable proposal in time.
            self.vote(VoteType.PREVOTE, None)
            self.set(step=Step.PREVOTE)
        elif event.step is Step.PREVOTE and state.step is Step.PREVOTE:
            # Lines 61-64: no polka in time.
            self.vote(VoteType.PRECOMMIT, None)
            self.set(step=Step.PRECOMMIT)
        elif event.step is Step.PRECOMMIT:
            # Lines 65-67: no decision in this round.
            self.start_round(state.round + 1)

    def on_proposer_unavailable(self, event: ProposerUnavailable) -> None:
        """Lines 57-60 ahead of the propose timeout, for a proposer known to be unable to
        propose. Never for one's own round, never once a proposal of the round is in."""
        state = self.state
        if (
            event.height != state.height
            or event.round != state.round
            or state.step is not Step.PROPOSE
            or self.schedule.proposer(state.round) == self.me
            or self.proposals.get(state.round)
        ):
            return
        self.vote(VoteType.PREVOTE, None)
        self.set(step=Step.PREVOTE)

    def on_prepared(self, event: ProposalPrepared) -> None:
        state = self.state
        if (
            event.height != state.height
            or event.round != state.round
            or state.awaiting_block_round != event.round
            or state.step is not Step.PROPOSE
        ):
            return
        self.set(awaiting_block_round=NIL_ROUND)
        self.blocks[event.block_hash] = event.block
        self.validity[event.block_hash] = True
        self.propose(event.block_hash, event.block, NIL_ROUND)

    # -- actions ---------------------------------------------------------------------------

    def start_round(self, round_: int) -> None:
        """Lines 11-21."""
        self.set(
            round=round_,
            step=Step.PROPOSE,
            prevote_timeout_scheduled=False,
            precommit_timeout_scheduled=False,
            polka_handled=False,
            awaiting_block_round=NIL_ROUND,
        )
        height = self.state.height
        me = self.me
        if me is not None and self.schedule.proposer(round_) == me:
            valid_value = self.state.valid_value
            if (round_, PROPOSAL_SLOT) in self.own_messages:
                pass  # Already proposed in this round before a restart; replay resends it.
            elif valid_value is not None and valid_value in self.blocks:
                self.propose(valid_value, self.blocks[valid_value], self.state.valid_round)
            else:
                self.set(awaiting_block_round=round_)
                self.effects.append(PrepareProposal(height, round_))
        # Every node, the proposer too, arms the propose timeout, so that a proposer whose
        # own block never comes back still moves on.
        self.schedule_timeout(Step.PROPOSE)

    def schedule_timeout(self, step_: Step) -> None:
        round_ = self.state.round
        delay = self.state.config.timeouts.delay_ms(step_, round_)
        self.effects.append(ScheduleTimeout(self.state.height, round_, step_, delay))

    def propose(self, block_hash: Hash32, block: bytes, valid_round: int) -> None:
        me = self.me
        assert me is not None
        key: OwnMessageKey = (self.state.round, PROPOSAL_SLOT)
        if key in self.own_messages:
            return
        proposal = Proposal(self.state.height, self.state.round, block_hash, block, valid_round, me)
        self.own_messages[key] = proposal
        self.effects.append(Persist(proposal))
        self.effects.append(Broadcast(proposal))

    def vote(self, vote_type: VoteType, block_hash: Hash32 | None) -> None:
        me = self.me
        if me is None or self.power_of(me) == 0:
            return
        key: OwnMessageKey = (self.state.round, int(vote_type))
        if key in self.own_messages:
            # Never sign a second, different vote at one height, round and type.
            return
        vote = Vote(vote_type, self.state.height, self.state.round, block_hash, me)
        self.own_messages[key] = vote
        self.effects.append(Persist(vote))
        self.effects.append(Broadcast(vote))

    def decide(self, round_: int, proposal: Proposal) -> None:
        """Lines 49-54; the next height starts when the driver feeds ``StartHeight``."""
        tally = self.votes.get((round_, VoteType.PRECOMMIT), {})
        signatures = tuple(
            CommitSignature(validator=address, signature=vote.signature)
            for address, votes in sorted(tally.items())
            for vote in votes
            if vote.block_hash == proposal.block_hash
        )
        certificate = CommitCertificate(
            height=self.state.height,
            round=round_,
            block_hash=proposal.block_hash,
            signatures=signatures,
        )
        self.set(decided=True)
        self.effects.append(
            Commit(self.state.height, round_, proposal.block_hash, proposal.block, certificate)
        )

    # -- upon rules ------------------------------------------------------------------------

    def progress(self) -> None:
        while self.state.height != 0 and not self.state.decided:
            if self.try_decide():
                return
            if not (self.try_round_skip() or self.try_current_round()):
                return

    def try_decide(self) -> bool:
        """Line 49: a proposal and 2/3 precommits for it in any round."""
        for round_, proposals in sorted(self.proposals.items()):
            for proposal in proposals:
                if self.validity.get(proposal.block_hash) is not True:
                    continue
                power = self.power_for(round_, VoteType.PRECOMMIT, proposal.block_hash)
                if self.quorum(power):
                    self.decide(round_, proposal)
                    return True
        return False

    def try_round_skip(self) -> bool:
        """Line 55: more than 1/3 of the power is already in a later round."""
        current = self.state.round
        authors: dict[int, set[Address]] = {}
        for (round_, _), tally in self.votes.items():
            if round_ > current:
                authors.setdefault(round_, set()).update(tally)
        for round_, proposals in self.proposals.items():
            if round_ > current:
                authors.setdefault(round_, set()).add(proposals[0].proposer)
        for round_ in sorted(authors, reverse=True):
            if self.one_third(sum(self.power_of(a) for a in authors[round_])):
                self.start_round(round_)
                return True
        return False

    def try_current_round(self) -> bool:
        state = self.state
        round_ = state.round
        proposals = self.proposals.get(round_)
        proposal = None if proposals is None else proposals[0]
        verdict = None if proposal is None else self.validity.get(proposal.block_hash)
        if state.step is Step.PROPOSE and proposal is not None and verdict is not None:
            valid_round = proposal.valid_round
            # Line 22 (no valid round) or line 28 (a polka in the valid round).
            if valid_round == NIL_ROUND or (
                valid_round < round_
                and self.quorum(self.power_for(valid_round, VoteType.PREVOTE, proposal.block_hash))
            ):
                accept = verdict and lock_permits(state, proposal.block_hash, valid_round)
                self.vote(VoteType.PREVOTE, proposal.block_hash if accept else None)
                self.set(step=Step.PREVOTE)
                return True
        if (
            state.step is Step.PREVOTE
            and not state.prevote_timeout_scheduled
            and self.quorum(self.power_any(round_, VoteType.PREVOTE))
        ):
            # Line 34.
            self.set(prevote_timeout_scheduled=True)
            self.schedule_timeout(Step.PREVOTE)
            return True
        if (
            state.step >= Step.PREVOTE
            and not state.polka_handled
            and proposal is not None
            and verdict is True
            and self.quorum(self.power_for(round_, VoteType.PREVOTE, proposal.block_hash))
        ):
            # Line 36.
            if state.step is Step.PREVOTE:
                self.set(locked_value=proposal.block_hash, locked_round=round_)
                self.vote(VoteType.PRECOMMIT, proposal.block_hash)
                self.set(step=Step.PRECOMMIT)
            self.set(valid_value=proposal.block_hash, valid_round=round_, polka_handled=True)
            return True
        if state.step is Step.PREVOTE and self.quorum(
            self.power_for(round_, VoteType.PREVOTE, None)
        ):
            # Line 44.
            self.vote(VoteType.PRECOMMIT, None)
            self.set(step=Step.PRECOMMIT)
            return True
        if self.quorum(self.power_for(round_, VoteType.PRECOMMIT, None)):
            # Line 47 for a nil quorum: this round can decide nothing (a decision needs 2/3
            # precommitting one block, and those two quorums would share an honest
            # validator), so waiting out the precommit timeout gains nothing; line 65 now.
            self.start_round(round_ + 1)
            return True
        if not state.precommit_timeout_scheduled and self.quorum(
            self.power_any(round_, VoteType.PRECOMMIT)
        ):
            # Line 47.
            self.set(precommit_timeout_scheduled=True)
            self.schedule_timeout(Step.PRECOMMIT)
            return True
        return False
