"""The pure state machine, one event at a time: effects in order, purity, duplicates,
equivocation, locks, write-ahead-log replay and commit certificates with real SM2."""

from __future__ import annotations

import pytest
from sim import CHAIN_ID, Sm2Signer, validator_keys

from chain.commit import Validator, ValidatorSet, verify_commit_certificate
from chain.consensus import (
    NIL_ROUND,
    Broadcast,
    Commit,
    ConsensusConfig,
    ConsensusState,
    Effect,
    EquivocationEvidence,
    Event,
    InvalidEvent,
    Persist,
    PrepareProposal,
    ProcessProposal,
    Proposal,
    ProposalPrepared,
    ProposalProcessed,
    ProposalReceived,
    ProposerSchedule,
    ScheduleTimeout,
    StartHeight,
    Step,
    TimeoutConfig,
    TimeoutFired,
    Vote,
    VoteReceived,
    VoteType,
    step,
)
from chain.crypto import sm3
from chain.errors import ChainError
from chain.primitives import Hash32

KEYS = validator_keys(4)
VALIDATORS = ValidatorSet.of(Validator(k.public_key.to_bytes(), 1) for k in KEYS)
ADDRESSES = [v.address for v in VALIDATORS.validators]
SCHEDULE = ProposerSchedule.initial(VALIDATORS)
SIGNER = Sm2Signer(KEYS)
BLOCK = b"block one"
BLOCK_HASH = sm3(BLOCK)
OTHER_BLOCK = b"block two"
OTHER_HASH = sm3(OTHER_BLOCK)


def machine(index: int | None) -> ConsensusState:
    address = None if index is None else ADDRESSES[index]
    return ConsensusState.initial(ConsensusConfig(CHAIN_ID, address))


def run(state: ConsensusState, *events: Event) -> tuple[ConsensusState, list[Effect]]:
    effects: list[Effect] = []
    for event in events:
        state, more = step(state, event)
        effects += more
    return state, effects


def proposal(round_: int = 0, block: bytes = BLOCK, valid_round: int = NIL_ROUND) -> Event:
    unsigned = Proposal(1, round_, sm3(block), block, valid_round, SCHEDULE.proposer(round_))
    signed = SIGNER.sign(ADDRESSES.index(unsigned.proposer), unsigned)
    assert isinstance(signed, Proposal)
    return ProposalReceived(signed)


def vote(
    index: int, vote_type: VoteType, block_hash: Hash32 | None, round_: int = 0
) -> VoteReceived:
    signed = SIGNER.sign(index, Vote(vote_type, 1, round_, block_hash, ADDRESSES[index]))
    assert isinstance(signed, Vote)
    return VoteReceived(signed)


def own(effects: list[Effect]) -> list[object]:
    return [e.message for e in effects if isinstance(e, Broadcast)]


START = StartHeight(1, SCHEDULE)
VALID = ProposalProcessed(1, BLOCK_HASH, True)


def test_non_proposer_starts_with_a_propose_timeout() -> None:
    state, effects = run(machine(2), START)
    assert effects == [ScheduleTimeout(1, 0, Step.PROPOSE, 3000)]
    assert (state.height, state.round, state.step) == (1, 0, Step.PROPOSE)


def test_proposer_asks_the_application_then_persists_before_broadcasting() -> None:
    state, effects = run(machine(0), START)
    assert effects[0] == PrepareProposal(1, 0)
    state, effects = run(state, ProposalPrepared(1, 0, BLOCK_HASH, BLOCK))
    expected = Proposal(1, 0, BLOCK_HASH, BLOCK, NIL_ROUND, ADDRESSES[0])
    assert effects == [Persist(expected), Broadcast(expected)]


def test_a_late_block_from_the_application_is_ignored() -> None:
    state, _ = run(machine(0), START, TimeoutFired(1, 0, Step.PROPOSE))
    _, effects = run(state, ProposalPrepared(1, 0, BLOCK_HASH, BLOCK))
    assert effects == []


def test_step_never_mutates_its_input() -> None:
    state, _ = run(machine(1), START)
    before = repr(state)
    event = proposal()
    first = step(state, event)
    second = step(state, event)
    assert repr(state) == before
    assert first == second


def test_happy_path_prevote_lock_precommit_commit_with_a_verifying_certificate() -> None:
    state, effects = run(machine(1), START, proposal())
    assert ProcessProposal(1, 0, BLOCK_HASH, BLOCK) in effects
    state, effects = run(state, VALID)
    prevote = Vote(VoteType.PREVOTE, 1, 0, BLOCK_HASH, ADDRESSES[1])
    assert effects == [Persist(prevote), Broadcast(prevote)]
    state, effects = run(state, *(vote(i, VoteType.PREVOTE, BLOCK_HASH) for i in (0, 2, 3)))
    precommit = Vote(VoteType.PRECOMMIT, 1, 0, BLOCK_HASH, ADDRESSES[1])
    assert own(effects) == [precommit]
    assert (state.locked_value, state.locked_round) == (BLOCK_HASH, 0)
    assert (state.valid_value, state.valid_round) == (BLOCK_HASH, 0)
    state, effects = run(state, *(vote(i, VoteType.PRECOMMIT, BLOCK_HASH) for i in (3, 0, 2)))
    commits = [e for e in effects if isinstance(e, Commit)]
    assert len(commits) == 1 and state.decided
    certificate = commits[0].certificate
    assert [s.validator for s in certificate.signatures] == sorted(ADDRESSES[i] for i in (0, 2, 3))
    verify_commit_certificate(
        certificate, VALIDATORS, chain_id=CHAIN_ID, block_hash=BLOCK_HASH, height=1
    )
    _, after = run(state, vote(1, VoteType.PRECOMMIT, BLOCK_HASH), proposal(1))
    assert after == []  # a decided height ignores everything until the next StartHeight


def test_duplicate_votes_count_once() -> None:
    state, _ = run(machine(1), START, proposal(), VALID)
    repeated = [vote(0, VoteType.PREVOTE, BLOCK_HASH)] * 3 + [vote(2, VoteType.PREVOTE, None)]
    state, effects = run(state, *repeated)
    assert state.step is Step.PREVOTE  # 2 of 4 for the block (own + 0): no polka
    assert not [e for e in effects if isinstance(e, EquivocationEvidence)]


def test_equivocation_is_reported_once_and_counted_once_towards_anything() -> None:
    state, _ = run(machine(1), START)
    conflicting = [
        vote(0, VoteType.PREVOTE, BLOCK_HASH),
        vote(0, VoteType.PREVOTE, OTHER_HASH),
        vote(0, VoteType.PREVOTE, None),
    ]
    state, effects = run(state, *conflicting)
    evidence = [e for e in effects if isinstance(e, EquivocationEvidence)]
    assert len(evidence) == 1
    assert evidence[0].first == conflicting[0].vote
    assert evidence[0].second == conflicting[1].vote
    # Validator 0 alone is 1/4 of the power: not "2/3 for anything", however many values.
    state, effects = run(state, TimeoutFired(1, 0, Step.PROPOSE))
    assert not [e for e in effects if isinstance(e, ScheduleTimeout) and e.step is Step.PREVOTE]


def test_locked_node_refuses_another_block_until_a_later_polka() -> None:
    state, _ = run(machine(1), START, proposal(), VALID)
    # Own votes count once the driver feeds them back, like anyone else's.
    state, _ = run(state, *(vote(i, VoteType.PREVOTE, BLOCK_HASH) for i in (0, 1, 2)))
    assert state.locked_round == 0
    state, _ = run(state, *(vote(i, VoteType.PRECOMMIT, None) for i in (0, 2, 3)))
    state, _ = run(state, TimeoutFired(1, 0, Step.PRECOMMIT))
    assert state.round == 1
    other = proposal(1, OTHER_BLOCK)
    state, effects = run(state, other, ProposalProcessed(1, OTHER_HASH, True))
    assert own(effects) == [Vote(VoteType.PREVOTE, 1, 1, None, ADDRESSES[1])]
    # A round-1 polka for the other block moves the lock (line 36 in the prevote step).
    state, effects = run(state, *(vote(i, VoteType.PREVOTE, OTHER_HASH, 1) for i in (0, 2, 3)))
    assert own(effects) == [Vote(VoteType.PRECOMMIT, 1, 1, OTHER_HASH, ADDRESSES[1])]
    assert (state.locked_value, state.locked_round) == (OTHER_HASH, 1)


def test_proposal_with_valid_round_needs_the_polka_of_that_round() -> None:
    state, _ = run(machine(2), START)
    state, _ = run(state, *(vote(i, VoteType.PRECOMMIT, None) for i in (0, 1, 3)))
    state, _ = run(state, TimeoutFired(1, 0, Step.PRECOMMIT))
    state, effects = run(state, proposal(1, BLOCK, valid_round=0), VALID)
    assert own(effects) == []  # no round-0 polka seen yet: wait
    state, effects = run(state, *(vote(i, VoteType.PREVOTE, BLOCK_HASH) for i in (0, 1, 3)))
    assert own(effects) == [Vote(VoteType.PREVOTE, 1, 1, BLOCK_HASH, ADDRESSES[2])]


def test_invalid_block_gets_a_nil_prevote() -> None:
    state, _ = run(machine(1), START, proposal())
    _, effects = run(state, ProposalProcessed(1, BLOCK_HASH, False))
    assert own(effects) == [Vote(VoteType.PREVOTE, 1, 0, None, ADDRESSES[1])]


def test_proposal_from_the_wrong_proposer_is_ignored() -> None:
    unsigned = Proposal(1, 0, BLOCK_HASH, BLOCK, NIL_ROUND, ADDRESSES[3])
    state, effects = run(machine(1), START, ProposalReceived(unsigned))
    assert effects[1:] == [] and state.proposals == {}


def test_one_third_in_a_later_round_skips_ahead() -> None:
    state, _ = run(machine(1), START, vote(0, VoteType.PREVOTE, None, round_=5))
    assert state.round == 0
    state, effects = run(state, vote(2, VoteType.PRECOMMIT, None, round_=5))
    assert state.round == 5
    assert ScheduleTimeout(1, 5, Step.PROPOSE, 3000 + 5 * 500) in effects


def test_timeouts_grow_linearly_with_the_round() -> None:
    timeouts = TimeoutConfig(100, 10, 200, 20, 300, 30)
    assert [timeouts.delay_ms(Step.PROPOSE, r) for r in range(3)] == [100, 110, 120]
    assert timeouts.delay_ms(Step.PREVOTE, 4) == 280
    assert timeouts.delay_ms(Step.PRECOMMIT, 2) == 360


def test_replay_restores_the_lock_and_resends_without_persisting_again() -> None:
    me = ADDRESSES[1]
    log = (
        Vote(VoteType.PREVOTE, 1, 0, BLOCK_HASH, me),
        Vote(VoteType.PRECOMMIT, 1, 0, BLOCK_HASH, me),
        Vote(VoteType.PREVOTE, 1, 1, None, me),
    )
    state, effects = run(machine(1), StartHeight(1, SCHEDULE, log))
    assert (state.locked_value, state.locked_round) == (BLOCK_HASH, 0)
    assert (state.round, state.step) == (1, Step.PREVOTE)
    assert own(effects) == list(log)
    assert not [e for e in effects if isinstance(e, Persist)]
    # The timeout that would prevote nil again in round 1 signs nothing new.
    _, effects = run(state, TimeoutFired(1, 1, Step.PROPOSE))
    assert own(effects) == []


def test_restarted_proposer_resends_its_proposal_instead_of_asking_for_a_new_block() -> None:
    mine = Proposal(1, 0, BLOCK_HASH, BLOCK, NIL_ROUND, ADDRESSES[0])
    _, effects = run(machine(0), StartHeight(1, SCHEDULE, (mine,)))
    assert own(effects) == [mine]
    assert not [e for e in effects if isinstance(e, PrepareProposal)]


def test_bad_start_height_is_refused_and_changes_nothing() -> None:
    state, _ = run(machine(1), START)
    with pytest.raises(InvalidEvent):
        step(state, StartHeight(1, SCHEDULE))
    foreign = Vote(VoteType.PREVOTE, 2, 0, None, ADDRESSES[2])
    with pytest.raises(InvalidEvent):
        step(state, StartHeight(2, SCHEDULE, (foreign,)))
    assert issubclass(InvalidEvent, ChainError)


def test_a_follower_without_a_key_decides_but_never_votes() -> None:
    state, effects = run(machine(None), START, proposal(), VALID)
    state, more = run(
        state,
        *(vote(i, VoteType.PREVOTE, BLOCK_HASH) for i in (0, 1, 2)),
        *(vote(i, VoteType.PRECOMMIT, BLOCK_HASH) for i in (0, 1, 2)),
    )
    assert own(effects + more) == []
    assert state.decided
