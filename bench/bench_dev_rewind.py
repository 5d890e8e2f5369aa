"""Benchmark of test isolation on the dev chain: what ``loadFixture`` costs per test
(``evm_revert`` over the blocks a test mined, then ``evm_snapshot`` again) against what a
fresh deployment per test (``beforeEach``) costs, measured in the same run on one node.

A dev node runs as a real process (``bench/peers.py``: ``lianxin init --dev``, then
``python -m node.daemon``). Each round:

- *deploy*: ``eth_sendTransaction`` of the Anchor contract from the dev account, answered
  once its block is committed (what a suite's ``beforeEach`` deployment waits for);
- *revert k*: a snapshot is taken, k blocks are mined with one Anchor call each (not timed),
  then ``evm_revert`` plus the ``evm_snapshot`` that loadFixture takes after it are timed,
  for k = 1, 10 and 100.

Run: ``.venv/bin/python bench/bench_dev_rewind.py [--rounds R]``. Prints a table of medians
and their ratio to *deploy*, and writes ``bench/results/dev_rewind.json`` with the load
average at start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eth_utils import function_signature_to_4byte_selector
from peers import ProcessGroup, RpcClient, load_average, start_lianxin

from contracts.artifacts import load_artifact

RESULTS = Path(__file__).resolve().parent / "results" / "dev_rewind.json"
DEPTHS = (1, 10, 100)
ANCHOR = function_signature_to_4byte_selector("anchor(bytes32)")


def _timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(rounds: int) -> dict[str, Any]:
    """Measure ``rounds`` rounds on a fresh dev node; returns the medians in seconds."""
    load = load_average()
    samples: dict[str, list[float]] = {"deploy": [], **{f"revert {k}": [] for k in DEPTHS}}
    with ProcessGroup() as group, tempfile.TemporaryDirectory() as workdir:
        node = start_lianxin(group, Path(workdir))
        client = RpcClient(node.port)
        try:
            (admin, *_) = client.call("eth_accounts")
            bytecode = "0x" + load_artifact("Anchor").bytecode.hex()
            deployed = client.call("eth_sendTransaction", [{"from": admin, "data": bytecode}])
            anchor = client.call("eth_getTransactionReceipt", [deployed])["contractAddress"]
            for _ in range(rounds):
                samples["deploy"].append(
                    _timed(
                        lambda: client.call(
                            "eth_sendTransaction", [{"from": admin, "data": bytecode}]
                        )
                    )
                )
                for depth in DEPTHS:
                    snapshot = client.call("evm_snapshot")
                    for _ in range(depth):
                        data = "0x" + (ANCHOR + os.urandom(32)).hex()
                        client.call(
                            "eth_sendTransaction", [{"from": admin, "to": anchor, "data": data}]
                        )

                    def restore(snapshot: str = snapshot) -> None:
                        assert client.call("evm_revert", [snapshot]) is True
                        client.call("evm_snapshot")

                    samples[f"revert {depth}"].append(_timed(restore))
        finally:
            client.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "rounds": rounds,
        "load_average_at_start": load,
        "python": platform.python_version(),
        "median_s": medians,
        "ratio_to_deploy": {name: medians[name] / medians["deploy"] for name in medians},
    }


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    result = run(args.rounds)
    print(f"load average at start: {result['load_average_at_start']}")
    print(f"{'isolation per test':<22} {'median ms':>10} {'vs deploy':>10}")
    for name, seconds in result["median_s"].items():
        ratio = result["ratio_to_deploy"][name]
        print(f"{name:<22} {seconds * 1000:>10.1f} {ratio:>10.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
