"""The propose-timeout shortcut: a round whose proposer is known unable to propose
(``ProposerUnavailable``, fed by the driver from p2p state) ends with nil votes without
waiting out the propose timeout, and a round with 2/3 nil precommits moves on without the
precommit timeout; a proposer that is present is waited for, a node never prevotes nil for
its own round, and a proposal that arrives is judged as usual. Safety is the simulator's:
the random fault schedules run half their cases with the shortcut."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenario import load_scenarios
from sim import InvariantViolation
from test_consensus_core import (
    ADDRESSES,
    BLOCK_HASH,
    SCHEDULE,
    START,
    VALID,
    machine,
    own,
    proposal,
    run,
    vote,
)

from chain.consensus import (
    Commit,
    ProposerUnavailable,
    ScheduleTimeout,
    Step,
    TimeoutFired,
    Vote,
    VoteType,
)
from node.proposer_presence import unavailable_reason

SCENARIOS = {s.name: s for s in load_scenarios()}
PROPOSER = ADDRESSES.index(SCHEDULE.proposer(0))
"""The validator that proposes round 0 of height 1."""
OTHERS = [i for i in range(4) if i != PROPOSER]
UNAVAILABLE = ProposerUnavailable(1, 0)


def nil(index: int, vote_type: VoteType, round_: int = 0) -> Vote:
    return Vote(vote_type, 1, round_, None, ADDRESSES[index])


def test_an_unavailable_proposer_gets_a_nil_prevote_at_once() -> None:
    me = OTHERS[0]
    state, effects = run(machine(me), START, UNAVAILABLE)
    assert own(effects) == [nil(me, VoteType.PREVOTE)]
    assert state.step is Step.PREVOTE
    # The propose timeout firing later changes nothing: the prevote is cast.
    _, later = run(state, TimeoutFired(1, 0, Step.PROPOSE))
    assert own(later) == []


def test_the_round_ends_and_the_next_starts_without_any_timeout() -> None:
    me = OTHERS[0]
    state, effects = run(machine(me), START, UNAVAILABLE)
    state, effects = run(state, *(vote(i, VoteType.PREVOTE, None) for i in OTHERS))
    assert own(effects) == [nil(me, VoteType.PRECOMMIT)]
    state, effects = run(state, *(vote(i, VoteType.PRECOMMIT, None) for i in OTHERS))
    # 2/3 nil precommits: round 1 starts now, no precommit timeout is waited for.
    assert (state.round, state.step) == (1, Step.PROPOSE)
    timeouts = [e for e in effects if isinstance(e, ScheduleTimeout)]
    assert [(t.round, t.step) for t in timeouts] == [(1, Step.PROPOSE)]


def test_a_present_proposer_is_waited_for() -> None:
    state, effects = run(machine(OTHERS[0]), START)
    assert own(effects) == []
    assert state.step is Step.PROPOSE
    state, effects = run(state, proposal(), VALID)
    assert own(effects) == [Vote(VoteType.PREVOTE, 1, 0, BLOCK_HASH, ADDRESSES[OTHERS[0]])]


def test_never_a_nil_prevote_for_ones_own_round() -> None:
    state, effects = run(machine(PROPOSER), START, UNAVAILABLE)
    assert own(effects) == []
    assert state.step is Step.PROPOSE


def test_a_proposal_already_in_is_judged_not_skipped() -> None:
    me = OTHERS[0]
    state, effects = run(machine(me), START, proposal(), UNAVAILABLE)
    assert own(effects) == []
    assert state.step is Step.PROPOSE
    _, effects = run(state, VALID)
    assert own(effects) == [Vote(VoteType.PREVOTE, 1, 0, BLOCK_HASH, ADDRESSES[me])]


def test_a_proposal_arriving_after_the_nil_prevote_is_still_decided() -> None:
    me = OTHERS[0]
    state, _ = run(machine(me), START, UNAVAILABLE)
    polka = [vote(i, VoteType.PREVOTE, BLOCK_HASH) for i in (PROPOSER, *OTHERS[1:])]
    state, effects = run(state, proposal(), VALID, *polka)
    assert own(effects) == [Vote(VoteType.PRECOMMIT, 1, 0, BLOCK_HASH, ADDRESSES[me])]
    precommits = [vote(i, VoteType.PRECOMMIT, BLOCK_HASH) for i in (PROPOSER, *OTHERS[1:])]
    state, effects = run(state, *precommits)
    assert [e.block_hash for e in effects if isinstance(e, Commit)] == [BLOCK_HASH]


@pytest.mark.parametrize(
    "event", [ProposerUnavailable(1, 1), ProposerUnavailable(2, 0)], ids=["round", "height"]
)
def test_an_unavailable_proposer_of_another_round_changes_nothing(
    event: ProposerUnavailable,
) -> None:
    state, _ = run(machine(OTHERS[0]), START)
    after, effects = run(state, event)
    assert effects == [] and after == state


def test_a_mixed_precommit_quorum_still_waits_for_the_precommit_timeout() -> None:
    me = OTHERS[0]
    state, _ = run(machine(me), START, UNAVAILABLE)
    state, _ = run(state, *(vote(i, VoteType.PREVOTE, None) for i in OTHERS))
    mixed = [
        vote(me, VoteType.PRECOMMIT, None),
        vote(OTHERS[1], VoteType.PRECOMMIT, None),
        vote(PROPOSER, VoteType.PRECOMMIT, BLOCK_HASH),
    ]
    state, effects = run(state, *mixed)
    assert state.round == 0
    assert [e.step for e in effects if isinstance(e, ScheduleTimeout)] == [Step.PRECOMMIT]


@pytest.mark.parametrize(
    ("connected", "announced", "height", "reason"),
    [
        (False, 9, 10, "disconnected"),
        (True, 0, 10, "behind"),
        (True, 7, 10, "behind"),
        (True, 8, 10, None),
        (True, 9, 10, None),
        (True, 12, 10, None),
        (True, None, 10, None),
    ],
)
def test_unavailable_reason(connected: bool, announced: int | None, height: int,
                            reason: str | None) -> None:  # fmt: skip
    assert unavailable_reason(connected=connected, announced=announced, height=height) == reason


@pytest.mark.parametrize("name", ["one_crashed_of_4_presence", "rolling_restart_presence"])
def test_with_presence_no_commit_gap_reaches_the_propose_timeout(name: str) -> None:
    SCENARIOS[name].run()


@pytest.mark.parametrize("name", ["one_crashed_of_4_presence", "rolling_restart_presence"])
def test_without_presence_the_down_proposer_costs_the_propose_timeout(name: str) -> None:
    scenario = SCENARIOS[name]
    scenario.schedule = replace(scenario.schedule, presence=False)
    with pytest.raises(InvariantViolation, match="longest gaps"):
        scenario.run()


def test_with_presence_a_healthy_network_decides_every_height_in_round_0() -> None:
    scenario = SCENARIOS["normal_4_nodes"]
    scenario.schedule = replace(scenario.schedule, presence=True)
    simulation = scenario.run()
    rounds = {c.round for p in simulation.honest() for c in p.committed}
    assert rounds == {0}, rounds
