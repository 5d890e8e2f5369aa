"""The invariants can fail: deliberately broken variants of the core or its driver contract,
run through the same simulator and scenarios, are caught."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenario import load_scenarios
from sim import InvariantViolation

from chain.consensus import (
    ConsensusState,
    Effect,
    Event,
    Persist,
    StartHeight,
    core,
    step,
)

SCENARIOS = {s.name: s for s in load_scenarios()}


def test_ignoring_the_lock_rule_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = SCENARIOS["lock_keeps_decided_block"]
    scenario.run()  # the real rule is safe here
    monkeypatch.setattr(core, "lock_permits", lambda state, block_hash, valid_round: True)
    with pytest.raises(InvariantViolation, match="fork at height 1"):
        scenario.run()


def sends_before_persisting(
    state: ConsensusState, event: Event
) -> tuple[ConsensusState, list[Effect]]:
    """The real step, with each Persist moved after the Broadcast of the same message."""
    new_state, effects = step(state, event)
    persists = [e for e in effects if isinstance(e, Persist)]
    others = [e for e in effects if not isinstance(e, Persist)]
    return new_state, others + persists


def test_broadcast_before_persist_is_caught() -> None:
    with pytest.raises(InvariantViolation, match="before persisting"):
        SCENARIOS["normal_4_nodes"].run(step_function=sends_before_persisting)


def forgets_its_log(state: ConsensusState, event: Event) -> tuple[ConsensusState, list[Effect]]:
    """The real step, except that a restart ignores the write-ahead log."""
    if isinstance(event, StartHeight):
        event = replace(event, replay=())
    return step(state, event)


def test_restart_without_the_log_double_signs() -> None:
    scenario = SCENARIOS["proposer_crash_mid_round"]
    scenario.run()  # replaying the log, the restarted proposer resends its one proposal
    with pytest.raises(InvariantViolation, match="signs twice"):
        scenario.run(step_function=forgets_its_log)
