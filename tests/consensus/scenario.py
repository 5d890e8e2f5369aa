"""Consensus scenarios as small text scripts (``tests/scenarios/*.txt``).

One directive per line; ``#`` starts a comment; times are ``250ms``, ``3s`` or ``1.5s``;
node lists are process ids separated by commas. Directives::

    nodes 4                          validators (process ids 0..3, in proposer order)
    powers 1,1,2,3                   voting power per validator (default 1 each)
    twins 3                          validator 3 gets a second process (id 4, 5, ...)
    unauthorised 3                   validator 3 proposes blocks with unauthorised transactions
    signer sm2 | fast                real SM2 signatures (default) or the fast stand-in
    seed 7                           network randomness
    delay 5ms..60ms                  per-transmission delay range
    duplicate 10%                    share of transmissions delivered twice
    loss 30% [from 1s] [until 20s]   share of transmissions lost
    partition 0,1 | 2,3 [from 1s] [until 5s]
    crash 2 at 1s [restart at 3s]
    crash 1 when proposing height 2 [restart at 10s]
    hold prevote|precommit|proposal|any [height 1] [round 0] [from 2] [to 1,3] until 10s
    presence on                      feed ProposerUnavailable for a crashed, cut-off or
                                     lagging proposer (node/proposer_presence.py)
    run 20s
    expect committed >= 3 on all     (or: on 0,1,2; all means every honest process)
    expect longest-gap <= 1s from 2s (no new height decided for that long after 2s)
    expect commit-round at height 1 == 1 on all
    expect stalled from 2s until 10s (no honest process commits in that window)
    expect evidence >= 1             (equivocation reported by an honest process)
    expect refused >= 1              (proposals honest processes judged invalid)
    expect no fork                   (always checked; states the intent)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sim import (
    Crash,
    Hold,
    InvariantViolation,
    Loss,
    MessageKind,
    Partition,
    Schedule,
    Simulation,
    StepFunction,
)

from chain.consensus import step

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
"""Where the scenario scripts live."""

_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}


class ScenarioError(ValueError):
    """A script line that does not parse."""


@dataclass(frozen=True)
class Expectation:
    """One ``expect`` line: a check on the finished simulation."""

    text: str
    """The line as written, for messages."""
    check: Callable[[Simulation], str | None]
    """Returns a description of the failure, or ``None`` if the expectation holds."""


@dataclass
class Scenario:
    """A parsed script."""

    name: str
    """File stem."""
    schedule: Schedule = field(default_factory=Schedule)
    """The run it describes."""
    expectations: list[Expectation] = field(default_factory=list)
    """Its ``expect`` lines."""

    def run(self, *, step_function: StepFunction = step) -> Simulation:
        """Run the scenario, checking invariants throughout and expectations at the end;
        raise InvariantViolation (naming the seed) on any failure."""
        simulation = Simulation(self.schedule, step_function=step_function)
        simulation.run(self.schedule.run_ms)
        failures = [
            f"{e.text}: {problem}"
            for e in self.expectations
            if (problem := e.check(simulation)) is not None
        ]
        if failures:
            raise InvariantViolation(
                f"scenario {self.name} seed={self.schedule.seed}: " + "; ".join(failures)
            )
        return simulation


def parse_time(text: str) -> int:
    """``250ms`` / ``3s`` / ``1.5s`` in milliseconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text)
    if match is None:
        raise ScenarioError(f"not a time: {text!r}")
    value = float(match.group(1))
    return round(value if match.group(2) == "ms" else value * 1000)


def parse_nodes(text: str) -> frozenset[int]:
    """``0,1,3`` as a set of ids."""
    try:
        return frozenset(int(x) for x in text.split(","))
    except ValueError as exc:
        raise ScenarioError(f"not a node list: {text!r}") from exc


def parse_percent(text: str) -> float:
    """``30%`` as 0.3."""
    if not text.endswith("%"):
        raise ScenarioError(f"not a percentage: {text!r}")
    return float(text[:-1]) / 100


def _options(words: list[str], names: set[str]) -> dict[str, str]:
    """Keyword-value pairs such as ``from 1s until 5s``."""
    if len(words) % 2:
        raise ScenarioError(f"dangling word in {' '.join(words)!r}")
    options = dict(zip(words[::2], words[1::2], strict=True))
    unknown = set(options) - names
    if unknown:
        raise ScenarioError(f"unknown option(s) {sorted(unknown)}")
    return options


def _window(options: dict[str, str]) -> tuple[int, int | None]:
    start = parse_time(options["from"]) if "from" in options else 0
    end = parse_time(options["until"]) if "until" in options else None
    return start, end


def _targets(simulation: Simulation, nodes: str) -> list[int]:
    if nodes == "all":
        return [p.pid for p in simulation.honest()]
    return sorted(parse_nodes(nodes))


def _expectation(line: str, words: list[str]) -> Expectation:
    if words == ["no", "fork"]:
        return Expectation(line, lambda simulation: None)
    if words[0] == "committed" and len(words) == 5 and words[3] == "on":
        compare, bound, nodes = _COMPARISONS[words[1]], int(words[2]), words[4]

        def committed(simulation: Simulation) -> str | None:
            heights = {
                pid: simulation.committed_height(simulation.processes[pid])
                for pid in _targets(simulation, nodes)
            }
            bad = {pid: h for pid, h in heights.items() if not compare(h, bound)}
            return f"committed heights {heights}" if bad else None

        return Expectation(line, committed)
    if words[:3] == ["commit-round", "at", "height"] and len(words) == 8 and words[6] == "on":
        height, compare, bound = int(words[3]), _COMPARISONS[words[4]], int(words[5])
        nodes = words[7]

        def commit_round(simulation: Simulation) -> str | None:
            rounds = {}
            for pid in _targets(simulation, nodes):
                chain = simulation.processes[pid].committed
                rounds[pid] = chain[height - 1].round if len(chain) >= height else None
            bad = [r for r in rounds.values() if r is None or not compare(r, bound)]
            return f"commit rounds {rounds}" if bad else None

        return Expectation(line, commit_round)
    if words[0] == "stalled" and len(words) == 5 and (words[1], words[3]) == ("from", "until"):
        start, end = parse_time(words[2]), parse_time(words[4])

        def stalled(simulation: Simulation) -> str | None:
            commits = [
                (p.pid, c.height, c.time_ms)
                for p in simulation.honest()
                for c in p.committed
                if start < c.time_ms <= end
            ]
            return f"commits in the window: {commits}" if commits else None

        return Expectation(line, stalled)
    if words[0] == "longest-gap" and len(words) == 5 and words[3] == "from":
        compare, bound, since = _COMPARISONS[words[1]], parse_time(words[2]), parse_time(words[4])

        def longest_gap(simulation: Simulation) -> str | None:
            gap = simulation.longest_commit_gap_ms(since)
            return None if compare(gap, bound) else f"longest gaps (ms) {gap}"

        return Expectation(line, longest_gap)
    if words[0] == "evidence" and len(words) == 3:
        compare, bound = _COMPARISONS[words[1]], int(words[2])

        def evidence(simulation: Simulation) -> str | None:
            count = len(simulation.evidence)
            return None if compare(count, bound) else f"{count} evidence reports"

        return Expectation(line, evidence)
    if words[0] == "refused" and len(words) == 3:
        compare, bound = _COMPARISONS[words[1]], int(words[2])

        def refused(simulation: Simulation) -> str | None:
            count = simulation.stats.refused_proposals
            return None if compare(count, bound) else f"{count} proposals refused"

        return Expectation(line, refused)
    raise ScenarioError(f"unknown expectation {line!r}")


def parse_scenario(text: str, name: str = "scenario") -> Scenario:
    """Parse a script; raise ScenarioError on the first line that does not parse."""
    scenario = Scenario(name)
    schedule = scenario.schedule
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        directive, *words = line.split()
        try:
            schedule = _apply(schedule, scenario, directive, words, line)
        except (ScenarioError, KeyError, ValueError, IndexError) as exc:
            raise ScenarioError(f"{name}:{number}: {line!r}: {exc}") from exc
    scenario.schedule = schedule
    return scenario


def _apply(
    schedule: Schedule, scenario: Scenario, directive: str, words: list[str], line: str
) -> Schedule:
    if directive == "nodes":
        return replace(schedule, validators=int(words[0]))
    if directive == "powers":
        return replace(schedule, powers=tuple(int(x) for x in words[0].split(",")))
    if directive == "twins":
        return replace(schedule, twins=tuple(sorted(parse_nodes(words[0]))))
    if directive == "unauthorised":
        return replace(schedule, unauthorised=tuple(sorted(parse_nodes(words[0]))))
    if directive == "signer":
        if words[0] not in ("sm2", "fast"):
            raise ScenarioError("signer is sm2 or fast")
        return replace(schedule, signer="sm2" if words[0] == "sm2" else "fast")
    if directive == "seed":
        return replace(schedule, seed=int(words[0]))
    if directive == "delay":
        low, high = words[0].split("..")
        return replace(schedule, delay_ms=(parse_time(low), parse_time(high)))
    if directive == "duplicate":
        return replace(schedule, duplicate_rate=parse_percent(words[0]))
    if directive == "loss":
        start, end = _window(_options(words[1:], {"from", "until"}))
        loss = Loss(parse_percent(words[0]), start, end)
        return replace(schedule, losses=(*schedule.losses, loss))
    if directive == "partition":
        split = next((i for i, w in enumerate(words) if w in ("from", "until")), len(words))
        groups = tuple(parse_nodes(g.strip()) for g in " ".join(words[:split]).split("|"))
        start, end = _window(_options(words[split:], {"from", "until"}))
        partition = Partition(groups, start, end)
        return replace(schedule, partitions=(*schedule.partitions, partition))
    if directive == "crash":
        return replace(schedule, crashes=(*schedule.crashes, _crash(words)))
    if directive == "hold":
        kind = words[0]
        if kind not in ("prevote", "precommit", "proposal", "any"):
            raise ScenarioError(f"unknown message kind {kind!r}")
        options = _options(words[1:], {"height", "round", "from", "to", "until"})
        hold = Hold(
            kind=None if kind == "any" else _kind(kind),
            height=int(options["height"]) if "height" in options else None,
            round=int(options["round"]) if "round" in options else None,
            authors=parse_nodes(options["from"]) if "from" in options else None,
            targets=parse_nodes(options["to"]) if "to" in options else None,
            until_ms=parse_time(options["until"]),
        )
        return replace(schedule, holds=(*schedule.holds, hold))
    if directive == "run":
        return replace(schedule, run_ms=parse_time(words[0]))
    if directive == "presence":
        if words != ["on"] and words != ["off"]:
            raise ScenarioError("presence is on or off")
        return replace(schedule, presence=words == ["on"])
    if directive == "expect":
        scenario.expectations.append(_expectation(line, words))
        return schedule
    raise ScenarioError(f"unknown directive {directive!r}")


def _kind(text: str) -> MessageKind:
    if text == "proposal":
        return "proposal"
    return "prevote" if text == "prevote" else "precommit"


def _crash(words: list[str]) -> Crash:
    process, rest = int(words[0]), words[1:]
    restart = None
    if rest[-3:-1] == ["restart", "at"]:
        restart, rest = parse_time(rest[-1]), rest[:-3]
    if len(rest) == 2 and rest[0] == "at":
        return Crash(process, parse_time(rest[1]), restart)
    if len(rest) == 4 and rest[:3] == ["when", "proposing", "height"]:
        return Crash(process, None, restart, when_proposing=int(rest[3]))
    raise ScenarioError("expected 'crash N at T' or 'crash N when proposing height H'")


def load_scenarios() -> list[Scenario]:
    """Every script in :data:`SCENARIO_DIR`, parsed, in name order."""
    return [
        parse_scenario(path.read_text(encoding="utf-8"), path.stem)
        for path in sorted(SCENARIO_DIR.glob("*.txt"))
    ]
