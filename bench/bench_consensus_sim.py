"""Benchmark the consensus simulator: named scenarios and hypothesis-generated schedules.

Run by hand: ``.venv/bin/python bench/bench_consensus_sim.py [--examples N]``.
Measures, per named scenario (``tests/scenarios/*.txt``, real SM2): wall time, simulated
time, heights committed (the least over honest processes), heights per simulated second
and state-machine steps per wall second; then scenarios per second overall; then how many
generated fault schedules the CI run of ``test_consensus_random_schedules.py`` executes and
how long they take. Prints a table and writes ``bench/results/consensus_sim.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIM_DIR = ROOT / "tests" / "consensus"
for path in (ROOT, SIM_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from scenario import load_scenarios  # noqa: E402
from sim import Schedule  # noqa: E402
from test_consensus_random_schedules import (  # noqa: E402
    EXAMPLES,
    fault_schedules,
    run_with_liveness,
)

RESULTS = ROOT / "bench" / "results" / "consensus_sim.json"


def measure_scenarios() -> list[dict[str, Any]]:
    """Run every named scenario once; return one row per scenario."""
    rows = []
    for scenario in load_scenarios():
        start = time.perf_counter()
        simulation = scenario.run()
        seconds = time.perf_counter() - start
        simulated = scenario.schedule.run_ms / 1000
        heights = min(simulation.committed_height(p) for p in simulation.honest())
        rows.append(
            {
                "scenario": scenario.name,
                "processes": scenario.schedule.processes,
                "signer": scenario.schedule.signer,
                "wall_seconds": seconds,
                "simulated_seconds": simulated,
                "heights": heights,
                "heights_per_simulated_second": heights / simulated,
                "steps": simulation.stats.steps,
                "steps_per_wall_second": simulation.stats.steps / seconds,
                "deliveries": simulation.stats.deliveries,
            }
        )
    return rows


def measure_generated(examples: int) -> dict[str, Any]:
    """Run the CI profile of the randomised test; count the schedules it executes."""
    executed: list[dict[str, float]] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(fault_schedules())
    def body(schedule: Schedule) -> None:
        start = time.perf_counter()
        simulation = run_with_liveness(schedule)
        executed.append(
            {
                "wall_seconds": time.perf_counter() - start,
                "simulated_seconds": simulation.now_ms / 1000,
                "heights": min(simulation.committed_height(p) for p in simulation.honest()),
            }
        )

    start = time.perf_counter()
    body()
    seconds = time.perf_counter() - start
    simulated = sum(e["simulated_seconds"] for e in executed)
    return {
        "max_examples": examples,
        "schedules_executed": len(executed),
        "wall_seconds": seconds,
        "schedules_per_second": len(executed) / seconds,
        "simulated_seconds": simulated,
        "heights": sum(e["heights"] for e in executed),
        "heights_per_simulated_second": sum(e["heights"] for e in executed) / max(simulated, 1e-9),
    }


def main() -> None:
    """Run both measurements, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=int, default=EXAMPLES, help="generated schedules (CI default)"
    )
    args = parser.parse_args()

    rows = measure_scenarios()
    total_wall = sum(r["wall_seconds"] for r in rows)
    generated = measure_generated(args.examples)

    header = (
        f"{'scenario':<28}{'procs':>6}{'wall s':>8}{'sim s':>7}{'heights':>8}"
        f"{'h/sim s':>9}{'steps/s':>9}"
    )
    print("Named scenarios (real SM2 signatures)")
    print(header)
    for r in rows:
        print(
            f"{r['scenario']:<28}{r['processes']:>6}{r['wall_seconds']:>8.2f}"
            f"{r['simulated_seconds']:>7.0f}{r['heights']:>8}"
            f"{r['heights_per_simulated_second']:>9.2f}{r['steps_per_wall_second']:>9.0f}"
        )
    print(f"{len(rows)} scenarios in {total_wall:.2f} s: {len(rows) / total_wall:.2f} scenarios/s")
    print()
    print("Generated fault schedules (CI profile, fast signer)")
    print(
        f"{generated['schedules_executed']} schedules executed (max_examples "
        f"{generated['max_examples']}) in {generated['wall_seconds']:.2f} s: "
        f"{generated['schedules_per_second']:.1f} schedules/s, "
        f"{generated['heights_per_simulated_second']:.2f} heights per simulated second"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "consensus_sim",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "scenarios": rows,
                "scenarios_total_wall_seconds": total_wall,
                "scenarios_per_second": len(rows) / total_wall,
                "generated": generated,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
