"""Benchmark the node's memory: resident set size of the node process while it commits
100,000 ``Anchor.anchor(bytes32)`` transactions.

Run by hand: ``.venv/bin/python bench/bench_node_memory.py [--quick] [--txs N]
[--sample-every N]``.

Starts a lianxin dev node as a real process (``lianxin init --dev`` in a temporary folder,
then ``python -m node.daemon``), deploys ``Anchor``, and sends the transactions pipelined over
one keep-alive connection in JSON-RPC batches, signed by an SM2 dev account in chunks of 500,
with at most 5,000 uncommitted at a time (the node commits blocks of up to 500). After every
``--sample-every`` committed transactions it reads ``VmRSS`` (and ``VmHWM``, the peak) from
``/proc/<pid>/status``, split into ``RssAnon`` (the heap: Python objects, caches) and
``RssFile`` (file pages mapped in, mostly LMDB's memory map of the data files, which the kernel
can drop). The goal is an RSS below 500 MB after the last one.

Prints a table and writes ``bench/results/node_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for entry in (ROOT, BENCH):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import peers  # noqa: E402
from bench_rpc import LianxinSigner, fill_lianxin, fill_roots  # noqa: E402

from contracts.artifacts import load_artifact  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "node_memory.json"
GOAL_MB = 500.0


def proc_status_mb(pid: int, field: str) -> float:
    """A ``kB`` field of ``/proc/<pid>/status`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise peers.PeerError(f"no {field} for pid {pid}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 txs, sampled every 1,000")
    parser.add_argument("--txs", type=int, default=100_000)
    parser.add_argument("--sample-every", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.quick:
        args.txs, args.sample_every = 10_000, 1_000

    load_at_start = peers.load_average()
    print("load average at start: " + " ".join(f"{value:.2f}" for value in load_at_start))
    samples: list[dict[str, Any]] = []
    with (
        peers.terminate_on_sigterm(),
        peers.scratch_dir("lianxin-bench-memory-") as workdir,
        peers.ProcessGroup() as group,
    ):
        node = peers.start_lianxin(group, workdir)
        pid = node.process.pid
        client = peers.RpcClient(node.port)
        signer = LianxinSigner(client, node.account("admin"))
        anchor = bytes.fromhex(signer.deploy(load_artifact("Anchor").bytecode)[2:])
        started = time.perf_counter()
        last = [started]

        def sample(done: int) -> None:
            now = time.perf_counter()
            interval = args.sample_every if done else 0
            samples.append(
                {
                    "txs": done,
                    "height": int(client.call("eth_blockNumber"), 16),
                    "rss_mb": proc_status_mb(pid, "VmRSS"),
                    "peak_rss_mb": proc_status_mb(pid, "VmHWM"),
                    "anon_mb": proc_status_mb(pid, "RssAnon"),
                    "file_mb": proc_status_mb(pid, "RssFile"),
                    "elapsed_s": now - started,
                    "interval_tx_per_s": interval / (now - last[0]) if interval else None,
                }
            )
            last[0] = now
            row = samples[-1]
            rate = row["interval_tx_per_s"]
            print(
                f"{row['txs']:>9,} {row['height']:>8} {row['rss_mb']:>9.1f} "
                f"{row['peak_rss_mb']:>9.1f} {row['anon_mb']:>9.1f} {row['file_mb']:>9.1f} "
                f"{row['elapsed_s']:>9.1f} "
                f"{'' if rate is None else f'{rate:.0f}':>9}",
                flush=True,
            )

        print(
            f"{'txs':>9} {'height':>8} {'RSS MB':>9} {'peak MB':>9} {'anon MB':>9} "
            f"{'file MB':>9} {'elapsed s':>9} {'tx/s':>9}"
        )
        sample(0)
        fill_lianxin(
            client,
            signer,
            anchor,
            fill_roots(args.txs),
            on_progress=sample,
            progress_every=args.sample_every,
        )
        client.close()
        data_dir_mb = sum(
            entry.stat().st_size
            for entry in (node.directory / "node").rglob("*")
            if entry.is_file()
        ) / (1 << 20)

    final = samples[-1]
    met = final["rss_mb"] < GOAL_MB
    print(
        f"RSS after {final['txs']:,} txs: {final['rss_mb']:.1f} MB "
        f"(peak {final['peak_rss_mb']:.1f}); "
        f"goal < {GOAL_MB:.0f} MB: {'met' if met else 'missed'}; "
        f"growth {final['rss_mb'] - samples[0]['rss_mb']:.1f} MB; data dir {data_dir_mb:.0f} MB"
    )
    report = {
        "benchmark": "node_memory",
        "workload": "Anchor.anchor(bytes32) pipelined, blocks of up to 500",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "args": vars(args),
        "goal_mb": GOAL_MB,
        "goal_met": met,
        "data_dir_mb": data_dir_mb,
        "samples": samples,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
