"""Randomised fault schedules through the simulator, generated and shrunk by hypothesis.

Every schedule mixes delays, duplicates, loss, partitions, crashes with restarts and, when
the voting powers allow one Byzantine key, twins. Safety invariants are checked at every
step; after the last fault every honest process must commit two more heights within a
bounded time. A failing schedule shrinks to a minimal one; its seed is printed.

``LIANXIN_SIM_EXAMPLES`` raises the number of schedules for a long local run; the default
profile is derandomised so CI runs the same schedules every time.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sim import Crash, Loss, Partition, Schedule, Simulation

EXAMPLES = int(os.environ.get("LIANXIN_SIM_EXAMPLES", "100"))
"""Schedules per run (CI default)."""

DERANDOMIZE = os.environ.get("LIANXIN_SIM_RANDOM", "") == ""
"""CI replays the same schedules; set ``LIANXIN_SIM_RANDOM=1`` to explore new ones."""

LAST_FAULT_MS = 12_000
"""Faults start and end before this time."""

LIVENESS_WINDOW_MS = 60_000
"""Time allowed after the last fault for two more heights everywhere."""


@st.composite
def windows(draw: st.DrawFn, *, min_length_ms: int = 500) -> tuple[int, int]:
    """A ``[start, end)`` interval inside the faulty period."""
    start = draw(st.integers(0, LAST_FAULT_MS - min_length_ms))
    end = draw(st.integers(start + min_length_ms, LAST_FAULT_MS))
    return start, end


@st.composite
def fault_schedules(draw: st.DrawFn, *, signer: str = "fast") -> Schedule:
    """A schedule of network faults, crashes and possibly twins, ending by LAST_FAULT_MS;
    half of them with the proposer-presence shortcut (early nil prevotes) in the drivers."""
    validators = draw(st.sampled_from([4, 4, 5, 7]))
    unequal = draw(st.booleans())
    powers = tuple(draw(st.integers(1, 3)) if unequal else 1 for _ in range(validators))
    total = sum(powers)
    twin_candidates = [v for v in range(validators) if 3 * powers[v] < total]
    twins: tuple[int, ...] = ()
    if twin_candidates and draw(st.booleans()):
        twins = (draw(st.sampled_from(twin_candidates)),)
    processes = validators + len(twins)

    crashes = []
    for _ in range(draw(st.integers(0, 2))):
        start, end = draw(windows())
        process = draw(st.integers(0, processes - 1))
        if draw(st.booleans()):
            crashes.append(Crash(process, start, end))
        else:
            # Crash right after proposing at a height, restart from the log at ``end``.
            height = draw(st.integers(1, 6))
            crashes.append(Crash(process, None, end, when_proposing=height))
    partitions = []
    for _ in range(draw(st.integers(0, 2))):
        start, end = draw(windows(min_length_ms=1000))
        side = draw(st.sets(st.integers(0, processes - 1), min_size=1, max_size=processes - 1))
        rest = frozenset(range(processes)) - side
        partitions.append(Partition((frozenset(side), rest), start, end))
    losses = []
    if draw(st.booleans()):
        start, end = draw(windows())
        losses.append(Loss(draw(st.sampled_from([0.1, 0.3, 0.5, 0.8])), start, end))
    low = draw(st.integers(1, 50))
    high = draw(st.integers(low, 400))
    return Schedule(
        validators=validators,
        powers=powers if unequal else (),
        twins=twins,
        seed=draw(st.integers(0, 2**32 - 1)),
        signer="sm2" if signer == "sm2" else "fast",
        delay_ms=(low, high),
        duplicate_rate=draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
        commit_delay_ms=1000,
        partitions=tuple(partitions),
        losses=tuple(losses),
        crashes=tuple(crashes),
        run_ms=LAST_FAULT_MS,
        presence=draw(st.booleans()),
    )


def run_with_liveness(schedule: Schedule) -> Simulation:
    """Run to the last fault with safety checks, then require progress everywhere."""
    simulation = Simulation(schedule)
    simulation.check_liveness(new_heights=3, window_ms=LIVENESS_WINDOW_MS)
    return simulation


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(fault_schedules())
def test_random_fault_schedules_keep_safety_and_recover(schedule: Schedule) -> None:
    note(f"seed={schedule.seed} schedule={schedule}")
    simulation = run_with_liveness(schedule)
    heights = [simulation.committed_height(p) for p in simulation.honest()]
    assert min(heights) >= 2


@settings(max_examples=5, deadline=None, derandomize=True)
@given(fault_schedules(signer="sm2"))
def test_random_fault_schedules_with_real_sm2(schedule: Schedule) -> None:
    note(f"seed={schedule.seed} schedule={schedule}")
    run_with_liveness(schedule)
