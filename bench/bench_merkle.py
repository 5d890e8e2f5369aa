"""Benchmark the SM3 Merkle tree: the root alone, and the root plus every inclusion proof.

Run by hand: ``.venv/bin/python bench/bench_merkle.py [--leaves N] [--rounds R]``.
Each measurement runs in a fresh child process so that its peak resident memory
(``ru_maxrss``, which includes the interpreter and the leaves themselves) is its own.
Prints a table of medians and writes ``bench/results/merkle.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chain.merkle import MerkleTree, merkle_root, verify_proof  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "merkle.json"
LEAF_SIZE = 32
VERIFIED_SAMPLE = 1000


def _leaves(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(LEAF_SIZE) for _ in range(count)]


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _run_root(count: int, seed: int) -> dict[str, float]:
    leaves = _leaves(count, seed)
    start = time.perf_counter()
    merkle_root(leaves)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mib": _peak_rss_mib()}


def _run_proofs(count: int, seed: int) -> dict[str, float]:
    leaves = _leaves(count, seed)
    start = time.perf_counter()
    tree = MerkleTree.build(leaves)
    built = time.perf_counter()
    generated = sum(1 for _ in tree.proofs())
    finished = time.perf_counter()
    if generated != count:
        raise AssertionError(f"generated {generated} proofs for {count} leaves")

    sample = random.Random(seed + 1).sample(range(count), min(count, VERIFIED_SAMPLE))
    verify_start = time.perf_counter()
    for index in sample:
        verify_proof(tree.root, leaves[index], tree.prove(index), leaf_count=count)
    verify_seconds = time.perf_counter() - verify_start
    return {
        "seconds": finished - start,
        "build_seconds": built - start,
        "proofs_seconds": finished - built,
        "prove_verify_us": verify_seconds / max(len(sample), 1) * 1e6,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _child(kind: str, count: int, seed: int, queue: Any) -> None:
    run = _run_root if kind == "root" else _run_proofs
    queue.put(run(count, seed))


def _measure(kind: str, count: int, seed: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(kind, count, seed, queue))
    process.start()
    result: dict[str, float] = queue.get()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{kind} round failed with exit code {process.exitcode}")
    return result


def main() -> None:
    """Run the rounds, print the table of medians and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaves per tree")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measurement")
    args = parser.parse_args()

    rounds: dict[str, list[dict[str, float]]] = {"root": [], "root_and_proofs": []}
    for round_index in range(args.rounds):
        rounds["root"].append(_measure("root", args.leaves, round_index))
        rounds["root_and_proofs"].append(_measure("proofs", args.leaves, round_index))

    medians = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in rounds.items()
    }
    print(f"SM3 Merkle tree, {args.leaves:,} leaves of {LEAF_SIZE} bytes, ", end="")
    print(f"median of {args.rounds} rounds")
    print(f"{'measurement':<34}{'seconds':>10}{'peak RSS MiB':>15}")
    print(
        f"{'root':<34}{medians['root']['seconds']:>10.3f}{medians['root']['peak_rss_mib']:>15.1f}"
    )
    full = medians["root_and_proofs"]
    print(f"{'root + every proof':<34}{full['seconds']:>10.3f}{full['peak_rss_mib']:>15.1f}")
    print(f"{'  of which: build tree (levels)':<34}{full['build_seconds']:>10.3f}")
    print(f"{'  of which: generate all proofs':<34}{full['proofs_seconds']:>10.3f}")
    print(
        f"prove + verify one proof: {full['prove_verify_us']:.1f} us (sample of {VERIFIED_SAMPLE})"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "merkle",
                "leaves": args.leaves,
                "leaf_size": LEAF_SIZE,
                "rounds": args.rounds,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "median": medians,
                "all_rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
