"""The named scenarios of ``tests/scenarios/*.txt``, run through the simulator with real
SM2 signatures (unless a script asks for the fast signer)."""

from __future__ import annotations

import pytest
from scenario import SCENARIO_DIR, ScenarioError, load_scenarios, parse_scenario

SCENARIOS = load_scenarios()

REQUIRED = {
    "normal_4_nodes",
    "one_crashed_of_4",
    "two_crashed_of_4",
    "partition_2_2_heals",
    "twins_f1",
    "loss_30_percent",
    "proposer_crash_mid_round",
    "lock_then_later_polka",
    "lock_keeps_decided_block",
    "seven_unequal_powers",
}


def test_every_required_scenario_exists() -> None:
    assert {s.name for s in SCENARIOS} >= REQUIRED, f"missing from {SCENARIO_DIR}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario) -> None:  # type: ignore[no-untyped-def]
    simulation = scenario.run()
    assert simulation.stats.rejected == 0
    assert all(p.committed for p in simulation.honest()), "every honest node commits"


def test_scenario_runs_are_deterministic() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "loss_30_percent")
    first, second = scenario.run(), scenario.run()
    assert [p.committed for p in first.processes] == [p.committed for p in second.processes]


@pytest.mark.parametrize(
    "line",
    [
        "nodes four",
        "crash 1 sometime",
        "hold vote height 1 until 2s",
        "expect happiness",
        "partition 0,1 | 2,3 until soon",
        "teleport 3",
    ],
)
def test_bad_script_lines_are_refused(line: str) -> None:
    with pytest.raises(ScenarioError):
        parse_scenario(f"nodes 4\n{line}\n")


def test_script_directives_parse() -> None:
    scenario = parse_scenario(
        "nodes 5  # comment\npowers 1,2,1,2,1\ntwins 0\nsigner fast\nseed 3\n"
        "delay 2ms..9ms\nduplicate 5%\nloss 30% from 1s until 2.5s\n"
        "partition 0,1 | 2,3,4 until 5s\ncrash 2 at 1s restart at 3s\n"
        "crash 1 when proposing height 2 restart at 4s\n"
        "hold precommit round 0 from 2 to 1,3 until 4s\n"
        "run 7s\nexpect committed >= 1 on all\n"
    )
    schedule = scenario.schedule
    assert (schedule.validators, schedule.powers, schedule.twins) == (5, (1, 2, 1, 2, 1), (0,))
    assert (schedule.signer, schedule.seed, schedule.delay_ms) == ("fast", 3, (2, 9))
    assert schedule.losses[0].start_ms == 1000 and schedule.losses[0].end_ms == 2500
    assert schedule.crashes[0].restart_ms == 3000 and schedule.crashes[1].when_proposing == 2
    assert schedule.holds[0].targets == frozenset({1, 3}) and schedule.run_ms == 7000
    assert schedule.stable_after_ms == 5000
