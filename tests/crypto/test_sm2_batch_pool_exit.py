"""The batch verifier's pool processes end with the process that made the pool, even when
that process is SIGKILLed (a node killed by the OOM killer or by its service manager): its
workers, their forkserver and the resource tracker leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from process_tree import Proc, children, still_running

MAKER = """
import sys, time
from chain.crypto.batch import POOL_THRESHOLD, BatchVerifier

verifier = BatchVerifier(workers=3)
# Items that do not verify (no public key) still go through the pool.
assert verifier.verify([(b"", b"", b"")] * (2 * POOL_THRESHOLD)) == [False] * (2 * POOL_THRESHOLD)
print("ready", flush=True)
time.sleep(600)
"""

END_WAIT_S = 20.0
"""How long the pool's processes have to end once their maker is killed."""


def _descendants(pid: int) -> list[Proc]:
    found: list[Proc] = []
    waiting = [pid]
    while waiting:
        for child in children(waiting.pop()):
            found.append(child)
            waiting.append(child.pid)
    return found


def test_the_pool_processes_end_when_their_maker_is_killed() -> None:
    maker = subprocess.Popen(
        [sys.executable, "-c", MAKER],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert maker.stdout is not None
        assert maker.stdout.readline().strip() == "ready"
        pool = _descendants(maker.pid)
        # The maker's children are the forkserver and the resource tracker; the workers are
        # the forkserver's.
        workers = set(pool) - set(children(maker.pid))
        assert len(workers) == 2, [p.command for p in pool]
    finally:
        maker.send_signal(signal.SIGKILL)
        maker.wait(timeout=10)
    left = still_running(pool, END_WAIT_S)
    assert not left, [f"{p.pid} {p.command}" for p in left]
