"""Coroutines waiting on the group writer (:meth:`GroupWriter.submit`): each gets its own
outcome or error, a group's waiters in one event loop are answered by one callback handed to
that loop, a cancelled waiter's entry is committed all the same without disturbing the
others, and threads waiting beside coroutines in one group are answered too."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from registry.errors import ServiceUnavailable
from registry.group_commit import GroupWriter

pytestmark = pytest.mark.no_database


def _stopped() -> Exception:
    return ServiceUnavailable("stopped", code="stopping")


class Gated:
    """A commit function that holds its first group until released; entry 13 fails its
    group."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self, entries: Sequence[int]) -> list[int]:
        self.entered.set()
        self.gate.wait(10)
        self.groups.append(list(entries))
        if 13 in entries:
            raise RuntimeError("disk full")
        return [entry * 10 for entry in entries]


def _writer(commit: Gated) -> GroupWriter[int, int]:
    writer: GroupWriter[int, int] = GroupWriter(
        commit, name="test-loop-writer", max_group=100, stopped=_stopped
    )
    writer.start()
    return writer


def test_a_groups_coroutines_are_answered_by_one_callback_of_their_loop() -> None:
    commit = Gated()
    writer = _writer(commit)

    async def run() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        handed: list[Any] = []
        original = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
            handed.append(callback)
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        first = asyncio.ensure_future(writer.submit(0))
        while not commit.entered.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(writer.submit(n)) for n in range(1, 9)]
        await asyncio.sleep(0.01)
        handed.clear()
        commit.gate.set()
        outcomes = await asyncio.gather(first, *rest)
        return outcomes, len(handed)

    try:
        outcomes, callbacks = asyncio.run(run())
    finally:
        writer.stop()
    assert outcomes == [n * 10 for n in range(9)]
    assert commit.groups == [[0], list(range(1, 9))]
    assert callbacks == 2  # one per group, not one per waiter


def test_errors_reach_each_waiter_and_a_cancelled_one_is_still_committed() -> None:
    commit = Gated()
    writer = _writer(commit)

    async def run() -> tuple[list[Any], bool]:
        first = asyncio.ensure_future(writer.submit(0))
        while not commit.entered.is_set():
            await asyncio.sleep(0.001)
        cancelled = asyncio.ensure_future(writer.submit(1))
        kept = asyncio.ensure_future(writer.submit(2))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        commit.gate.set()
        answers = list(await asyncio.gather(first, kept, return_exceptions=True))
        failing = await asyncio.gather(writer.submit(13), return_exceptions=True)
        return answers + failing, cancelled.cancelled()

    try:
        answers, was_cancelled = asyncio.run(run())
    finally:
        writer.stop()
    assert answers[:2] == [0, 20]
    assert isinstance(answers[2], RuntimeError) and str(answers[2]) == "disk full"
    assert was_cancelled
    assert [1, 2] in commit.groups  # the cancelled waiter's entry was committed with it


def test_threads_and_coroutines_in_one_group() -> None:
    commit = Gated()
    writer = _writer(commit)

    async def run() -> list[int]:
        first = asyncio.ensure_future(writer.submit(0))
        while not commit.entered.is_set():
            await asyncio.sleep(0.001)
        from_thread = writer.submit_nowait(5)
        mine = asyncio.ensure_future(writer.submit(6))
        await asyncio.sleep(0.01)
        commit.gate.set()
        answers = list(await asyncio.gather(first, mine))
        return [*answers, from_thread.result(10)]

    try:
        assert asyncio.run(run()) == [0, 60, 50]
    finally:
        writer.stop()
    assert commit.groups == [[0], [5, 6]]


def test_a_submission_after_stop_is_refused() -> None:
    writer = _writer(Gated())
    writer.stop()
    with pytest.raises(ServiceUnavailable):
        asyncio.run(writer.submit(1))
