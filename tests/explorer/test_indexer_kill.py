"""Crash safety of the indexer: a real indexer process SIGKILLed at seeded random moments
while it indexes, restarted each time, ends with exactly the index an uninterrupted run
builds: nothing missing, nothing doubled (counts kept per subject included)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chain_activity import Activity, DevChain
from sqlalchemy import func, select

from explorer import store_schema as t
from explorer.indexer import Indexer
from explorer.node_feed import NodeFeed
from explorer.settings import settings_for_chain_dir
from explorer.store import Store

SEED = 20261206
ROUNDS = 3
START_SECONDS = 120.0
"""How long an indexer process may take to start and reach its target (a busy machine)."""


def snapshot(store: Store) -> dict[str, Any]:
    """Everything the index holds, in a comparable form (ids left out)."""
    with store.read() as c:
        return {
            "cursor": c.execute(select(t.cursor.c.height, t.cursor.c.block_hash)).all(),
            "blocks": c.execute(
                select(t.blocks.c.height, t.blocks.c.hash).order_by(t.blocks.c.height)
            ).all(),
            "transactions": c.execute(
                select(
                    t.transactions.c.hash, t.transactions.c.height, t.transactions.c.call_name
                ).order_by(t.transactions.c.height, t.transactions.c.position)
            ).all(),
            "events": c.execute(
                select(
                    t.events.c.tx_hash, t.events.c.log_index, t.events.c.name, t.events.c.args
                ).order_by(t.events.c.height, t.events.c.tx_hash, t.events.c.log_index)
            ).all(),
            "subjects": c.execute(
                select(
                    t.event_subjects.c.kind, t.event_subjects.c.subject, t.event_subjects.c.height
                ).order_by(
                    t.event_subjects.c.kind, t.event_subjects.c.subject, t.event_subjects.c.height
                )
            ).all(),
            "counts": c.execute(
                select(t.subject_counts).order_by(*t.subject_counts.primary_key)
            ).all(),
            "departments": c.execute(select(t.departments)).all(),
            "keys": c.execute(select(t.department_keys)).all(),
            "signers": c.execute(select(func.count()).select_from(t.signers)).scalar(),
        }


def cursor_height(store: Store) -> int:
    found = store.cursor()
    return -1 if found is None else found.height


def consistent(store: Store) -> int:
    """Check the index is whole up to its cursor; returns the cursor height."""
    height = cursor_height(store)
    with store.read() as c:
        assert c.execute(select(func.count()).select_from(t.blocks)).scalar() == height + 1
        assert (c.execute(select(func.max(t.blocks.c.height))).scalar() or 0) == max(height, 0)
        assert (c.execute(select(func.max(t.transactions.c.height))).scalar() or 0) <= height
        assert (c.execute(select(func.max(t.events.c.height))).scalar() or 0) <= height
    return height


def indexer_process(chain: DevChain, index_url: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "LIANXIN_EXPLORER_BATCH_BLOCKS": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "explorer",
            "index",
            "--dir",
            str(chain.root),
            "--database-url",
            index_url,
        ],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_handling_sigterm(process: subprocess.Popen[bytes]) -> None:
    """Wait until ``process`` has installed its SIGTERM handler (Linux: the caught-signals mask
    in /proc/PID/status)."""
    deadline = time.monotonic() + START_SECONDS
    status = Path(f"/proc/{process.pid}/status")
    while True:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        lines = status.read_text().splitlines()
        caught = next((line.split()[1] for line in lines if line.startswith("SigCgt:")), "0")
        if int(caught, 16) & (1 << (signal.SIGTERM - 1)):
            return
        assert time.monotonic() < deadline, "the indexer did not start"
        time.sleep(0.01)


def run_until(store: Store, process: subprocess.Popen[bytes], target: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while cursor_height(store) < target:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, f"the indexer did not reach {target}"
        time.sleep(0.002)


def test_sigkill_at_seeded_points_loses_and_doubles_nothing(
    audited: tuple[DevChain, Activity], index_url: str, tmp_path
) -> None:
    chain, _ = audited
    rng = random.Random(SEED)
    genesis = settings_for_chain_dir(chain.root).genesis()
    feed = NodeFeed(chain.url)
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    store = Store.open(index_url)
    try:
        Indexer(reference, feed, genesis).catch_up()
        head = feed.head_height()
        killed_at = []
        for _ in range(ROUNDS):
            before = cursor_height(store)
            target = rng.randint(min(before + 1, head - 1), head - 1)
            process = indexer_process(chain, index_url)
            run_until(store, process, target)
            time.sleep(rng.uniform(0, 0.02))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            killed_at.append(consistent(store))
        assert killed_at == sorted(killed_at)
        process = indexer_process(chain, index_url)
        run_until(store, process, head)
        # The last killed run may have reached the head already: then the store is there before
        # this process has even started, and a SIGTERM during its start-up ends it the default
        # way (-15). A stop is asked of an indexer that runs, as an operator's would be.
        wait_until_handling_sigterm(process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert consistent(store) == head
        assert snapshot(store) == snapshot(reference)
    finally:
        feed.close()
        store.close()
        reference.close()
