"""SIGKILL during a dev chain rewind: a real child process (``rewind_writer.py``) rewinds a
store of blocks full of transactions and logs by many blocks in one call, and is killed at
a random moment around it. Reopened, the store holds either the old head or the rewind's
target, whole: every sub-database counts exactly the records of the blocks up to the head,
nothing of a block above it, and the blocks below it are intact.

The kill moments come from a seeded generator; the seed is printed (set
``LIANXIN_CRASH_SEED`` to replay a run) and ``LIANXIN_REWIND_KILLS`` sets how many kills.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import lmdb
import pytest

from node.storage import LmdbBlockStore, keys

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("rewind_writer.py")
HEIGHT = 160
"""The store's head before each rewind."""
DEPTH = 150
"""Blocks each rewind discards."""
KILLS = int(os.environ.get("LIANXIN_REWIND_KILLS", "8"))
SIZES = (str(HEIGHT), str(DEPTH))
KILL_WITHIN_S = 0.5
"""The kill comes this long at most after the child announced the rewind (a rewind of this
size takes a few hundred milliseconds on a loaded two-core machine: kills land before,
inside and after its write transaction)."""
START_TIMEOUT_S = 120.0


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cw = _load("crash_writer_for_rewind_kill", Path(__file__).with_name("crash_writer.py"))
child_module = _load("rewind_writer_settings", CHILD)


def _counts(path: Path) -> dict[bytes, int]:
    env = lmdb.open(str(path), readonly=True, max_dbs=len(keys.SUB_DATABASES), lock=True)
    try:
        with env.begin() as txn:
            return {
                name: txn.stat(env.open_db(name, txn=txn, create=False))["entries"]
                for name in keys.SUB_DATABASES
            }
    finally:
        env.close()


def _check_whole(path: Path, head: int) -> None:
    """Every per-block sub-database holds exactly the blocks ``0..head``."""
    blocks = head + 1
    txs = blocks * child_module.TX_COUNT
    counts = _counts(path)
    expected = {
        keys.BLOCKS: blocks,
        keys.RECEIPTS: blocks,
        keys.CERTIFICATES: blocks,
        keys.HASH_INDEX: blocks,
        keys.LOG_BLOCKS: blocks,
        keys.TX_INDEX: txs,
        keys.NONCE_INDEX: txs,
        keys.LOGS: txs,
        keys.LOG_ADDRESS: txs,
        keys.LOG_TOPIC: txs,
        keys.META: 2,
    }
    assert {name: counts[name] for name in expected} == expected
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        assert store.block_by_height(head + 1) is None
        previous = None
        for height in range(max(0, head - 3), head + 1):
            block = store.block_by_height(height)
            assert block is not None and store.block_by_hash(block.hash) == block
            receipts = store.receipts(height)
            assert receipts is not None and len(receipts) == len(block.transactions)
            for tx in block.transactions:
                location = store.tx_location(tx.hash)
                assert location is not None and location.height == height
                assert store.nonce_height(tx.nonce) == height
            if previous is not None:
                assert block.header.parent_hash == previous
            previous = block.hash


def _expect(process: subprocess.Popen[str], word: str) -> list[str]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(word + " "):
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"child printed {line!r}, expected {word!r}; stderr:\n{stderr}")
    return line.split()[1:]


@pytest.mark.slow
def test_sigkill_during_a_rewind_leaves_the_old_head_or_the_target(tmp_path: Path) -> None:
    seed = int(os.environ.get("LIANXIN_CRASH_SEED", random.SystemRandom().randrange(2**32)))
    print(f"rewind crash seed: {seed} (rerun with LIANXIN_CRASH_SEED={seed})")
    rng = random.Random(seed)
    path = tmp_path / "store"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    outcomes: dict[str, int] = {"old head": 0, "target": 0}
    for round_number in range(KILLS):
        process = subprocess.Popen(
            [sys.executable, str(CHILD), str(path), str(seed + round_number), *SIZES],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            (ready,) = _expect(process, "ready")
            assert int(ready) == HEIGHT and time.monotonic() < deadline
            old, target = (int(v) for v in _expect(process, "rewinding"))
            time.sleep(rng.uniform(0.0, KILL_WITHIN_S))
            process.send_signal(signal.SIGKILL)
            process.communicate()
            assert process.returncode == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
            head = store.head()
        assert head is not None and head.height in (old, target)
        outcomes["old head" if head.height == old else "target"] += 1
        _check_whole(path, head.height)
    print(f"{KILLS} kills during a {DEPTH}-block rewind: {outcomes}")
