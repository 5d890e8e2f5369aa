"""Verifications run on a pool of their own, a few at a time, so they do not spend their time
handing the GIL among forty threads, and a slow node holds up verifications only."""

from __future__ import annotations

import asyncio
import threading

import pytest

from registry.threads import VERIFY_THREADS, run_blocking, run_verifying

pytestmark = pytest.mark.no_database


def test_at_most_the_pool_size_verify_at_once_and_other_work_is_not_held_up() -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow_verification() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(30)  # as if the node were slow to answer
        with lock:
            running -= 1
        return threading.current_thread().name

    async def scenario() -> tuple[list[str], str]:
        verifying = [
            asyncio.ensure_future(run_verifying(slow_verification))
            for _ in range(VERIFY_THREADS * 3)
        ]
        await asyncio.sleep(0.2)
        # Every verification thread is waiting: other blocking work still runs at once.
        other = await asyncio.wait_for(run_blocking(threading.current_thread), 10)
        release.set()
        return list(await asyncio.gather(*verifying)), other.name

    names, other = asyncio.run(scenario())
    assert most == VERIFY_THREADS
    assert all(name.startswith("registry-verify") for name in names)
    assert other.startswith("registry-io")
