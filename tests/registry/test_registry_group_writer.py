"""The registry's one group-commit writer (:mod:`registry.group_commit`): groups, one
outcome per entry, a conflicting group committed one by one, 503 after stop, and nobody
left waiting when the thread dies."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy.exc import IntegrityError

from registry.errors import ServiceUnavailable
from registry.group_commit import GroupWriter

pytestmark = pytest.mark.no_database


def _stopped() -> Exception:
    return ServiceUnavailable("stopped", code="stopping")


class Recorder:
    """A commit function that records its groups; ``conflict`` entries make a group
    raise IntegrityError, ``broken`` ones raise even alone."""

    def __init__(self, conflict: set[int] = frozenset(), broken: set[int] = frozenset()) -> None:
        self.groups: list[list[int]] = []
        self.conflict, self.broken = conflict, broken
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, entries: Sequence[int]) -> list[int]:
        self.entered.set()
        self.gate.wait(10)
        self.groups.append(list(entries))
        if len(entries) > 1 and self.conflict & set(entries):
            raise IntegrityError("insert", {}, Exception("unique"))
        if self.broken & set(entries):
            raise RuntimeError("disk full")
        return [entry * 10 for entry in entries]


def test_entries_waiting_together_are_committed_as_one_group() -> None:
    commit = Recorder()
    commit.gate.clear()
    writer: GroupWriter[int, int] = GroupWriter(
        commit, name="test-writer", max_group=3, stopped=_stopped
    )
    writer.start()
    try:
        futures = [writer.submit_nowait(0)]
        assert commit.entered.wait(10)  # the writer holds [0]; the rest wait together
        futures += [writer.submit_nowait(n) for n in range(1, 8)]
        commit.gate.set()
        assert [f.result(10) for f in futures] == [n * 10 for n in range(8)]
    finally:
        writer.stop()
    assert commit.groups == [[0], [1, 2, 3], [4, 5, 6], [7]]


def test_weight_closes_a_group_without_splitting_an_entry() -> None:
    commit = Recorder()
    commit.gate.clear()
    writer: GroupWriter[int, int] = GroupWriter(
        commit, name="test-writer", max_group=100, stopped=_stopped,
        weight=lambda n: n, max_weight=5,
    )  # fmt: skip
    writer.start()
    try:
        futures = [writer.submit_nowait(0)]
        assert commit.entered.wait(10)
        futures += [writer.submit_nowait(n) for n in (2, 4, 1, 1, 3)]
        commit.gate.set()
        assert [f.result(10) for f in futures] == [0, 20, 40, 10, 10, 30]
    finally:
        writer.stop()
    assert commit.groups == [[0], [2, 4], [1, 1, 3]]


def test_a_conflicting_group_is_committed_one_by_one_each_answered_alone() -> None:
    commit = Recorder(conflict={2}, broken={3})
    commit.gate.clear()
    writer: GroupWriter[int, int] = GroupWriter(
        commit, name="test-writer", max_group=10, stopped=_stopped,
        failed=lambda error: ServiceUnavailable(f"failed: {error}"),
    )  # fmt: skip
    writer.start()
    try:
        # The writer holds [0] while 1-4 queue, so they make one group whatever the timing
        # (submitted straight away, the writer could take [1, 2] and then [3, 4], a group
        # that fails as a whole on the broken entry without a conflict to split it).
        first = writer.submit_nowait(0)
        assert commit.entered.wait(10)
        futures = {n: writer.submit_nowait(n) for n in (1, 2, 3, 4)}
        commit.gate.set()
        assert first.result(10) == 0
        assert futures[1].result(10) == 10
        assert futures[2].result(10) == 20
        assert futures[4].result(10) == 40
        with pytest.raises(ServiceUnavailable, match="disk full"):
            futures[3].result(10)
    finally:
        writer.stop()
    assert commit.groups == [[0], [1, 2, 3, 4], [1], [2], [3], [4]]


def test_an_error_fails_the_whole_group_with_the_domain_error() -> None:
    commit = Recorder(broken={5})
    writer: GroupWriter[int, int] = GroupWriter(
        commit, name="test-writer", max_group=10, stopped=_stopped,
        failed=lambda error: ServiceUnavailable("nothing was stored"),
    )  # fmt: skip
    writer.start()
    try:
        with pytest.raises(ServiceUnavailable, match="nothing was stored"):
            writer.submit_nowait(5).result(10)
        assert writer.submit_nowait(6).result(10) == 60
    finally:
        writer.stop()


def test_stop_commits_what_waits_then_refuses_with_503() -> None:
    commit = Recorder()
    commit.gate.clear()
    writer: GroupWriter[int, int] = GroupWriter(
        commit, name="test-writer", max_group=2, stopped=_stopped
    )
    writer.start()
    futures = [writer.submit_nowait(n) for n in range(5)]
    threading.Timer(0.2, commit.gate.set).start()
    writer.stop()
    assert [f.result(0) for f in futures] == [0, 10, 20, 30, 40]
    assert not writer.running
    with pytest.raises(ServiceUnavailable) as refused:
        asyncio.run(writer.submit(9))
    assert refused.value.code == "stopping"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_writer_leaves_nobody_waiting() -> None:
    started = threading.Event()

    def commit(entries: Sequence[int]) -> list[int]:
        started.set()
        raise SystemExit  # not an Exception: the thread dies

    writer: GroupWriter[int, int] = GroupWriter(
        commit, name="test-writer", max_group=1, stopped=_stopped
    )
    writer.start()
    first = writer.submit_nowait(1)
    assert started.wait(10)
    with pytest.raises(ServiceUnavailable):
        first.result(10)
    with pytest.raises(ServiceUnavailable):
        writer.submit_nowait(3)
    writer.stop()
