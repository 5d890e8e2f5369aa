"""The block rules in the simulator: Byzantine proposers whose blocks carry unauthorised
transactions (alone, and as twins) never get such a block committed by honest processes,
because every honest process judges every proposal by the rules; without that judgement the
same schedules commit one, and the simulator's invariant catches it."""

from __future__ import annotations

import pytest
import sim
from scenario import load_scenarios
from sim import InvariantViolation, run_schedule

SCENARIOS = load_scenarios()
BYZANTINE_PROPOSERS = ["unauthorised_proposer", "twins_f1_unauthorised_proposer"]


@pytest.mark.parametrize("name", BYZANTINE_PROPOSERS)
def test_honest_processes_never_commit_an_unauthorised_block(name: str) -> None:
    scenario = next(s for s in SCENARIOS if s.name == name)
    simulation = scenario.run()
    assert simulation.stats.refused_proposals > 0
    for process in simulation.honest():
        assert process.committed, f"process {process.pid} commits"


@pytest.mark.parametrize("name", BYZANTINE_PROPOSERS)
def test_without_the_rule_an_unauthorised_block_is_committed(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Honest processes that judge proposals only by their form, as validators did when
    # permissions were checked only at admission.
    monkeypatch.setattr(sim, "block_is_valid", sim.block_is_well_formed)
    scenario = next(s for s in SCENARIOS if s.name == name)
    with pytest.raises(InvariantViolation, match="unauthorised transaction"):
        run_schedule(scenario.schedule)
