"""Benchmark of the LMDB block store: commits per second (fsync on every commit) and reads.

Run by hand: ``PYTHONPATH=. .venv/bin/python bench/bench_storage.py [blocks]``. Prints a table
and writes ``bench/results/storage.json``.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from node.storage import LmdbBlockStore

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "crash_writer", ROOT / "tests" / "node" / "crash_writer.py"
)
assert _spec is not None and _spec.loader is not None
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


def main(blocks: int) -> dict[str, float]:
    """Commit ``blocks`` synthetic blocks, then read them back; return rates per second."""
    rng = random.Random(0)
    commits = []
    for _ in range(blocks):
        parent = commits[-1] if commits else None
        commits.append(
            synthetic.synthetic_commit(
                rng,
                None if parent is None else parent.block.header,
                None if parent is None else parent.certificate,
            )
        )
    with (
        tempfile.TemporaryDirectory() as directory,
        LmdbBlockStore.open(Path(directory) / "store", map_size=1 << 30) as store,
    ):
        started = time.perf_counter()
        for commit in commits:
            store.commit_block(commit)
        commit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for commit in commits:
            store.block_by_hash(commit.block.hash)
        read_seconds = time.perf_counter() - started
        state = store.state()
        keys = [key for commit in commits for key in commit.state_writes]
        started = time.perf_counter()
        for key in keys:
            state.get(key)
        state_seconds = time.perf_counter() - started
    state_writes = synthetic.RANDOM_STATE_KEYS + 2
    return {
        "blocks": blocks,
        "commits_per_s": blocks / commit_seconds,
        "state_writes_per_s": blocks * state_writes / commit_seconds,
        "block_reads_per_s": blocks / read_seconds,
        "state_gets_per_s": len(keys) / state_seconds,
    }


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    for name, value in result.items():
        print(f"{name:<20} {value:>14,.0f}")
    out = ROOT / "bench" / "results" / "storage.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
