"""Benchmark what operating a validator costs: scraping metrics, backing up, restoring.

Run by hand: ``.venv/bin/python bench/bench_operations.py [--rounds R] [--seconds S]
[--rate TX_PER_S] [--txs N] [--lag-blocks B]``.

- **Metrics cost**: four validators (``lianxin net init --validators 4 --dev``), ``anchor``
  calls sent open-loop at ``--rate`` for ``--seconds``; a transaction's latency runs from its
  send until node 0 shows the block holding it. Rounds alternate "no scraping" and "every
  node's /metrics scraped 10 times a second"; medians over ``--rounds`` of each, and the ratio.
- **Backup**: after ``--txs`` more transactions, ``lianxin node backup`` of node-2 while the
  network runs: wall time and size, and both per 100,000 transactions on the chain (scaled
  linearly from the transactions the chain holds, which the table states).
- **Restore and catch-up**: node-2 is stopped, its data moved aside, ``lianxin node restore``
  run (time), the network left to go ``--lag-blocks`` blocks further, then node-2 started with
  ``--confirm-restored-wal``: the time until its head reaches the others'.

Prints a table and writes ``bench/results/operations.json`` with the load average at start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import bench_consensus_net as consensus_net  # noqa: E402
import httpx  # noqa: E402
import peers  # noqa: E402

from sdk.account import Sm2Account  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "operations.json"
SCRAPES_PER_S = 10
RESTORED = 2


class Scraper(threading.Thread):
    """Scrapes every node's /metrics SCRAPES_PER_S times a second until stopped."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.stop = threading.Event()
        self.scrapes = 0
        self.bytes = 0

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                for port in self.ports:
                    body = client.get(f"http://127.0.0.1:{port}/metrics").content
                    self.scrapes += 1
                    self.bytes += len(body)
                self.stop.wait(max(0.0, 1 / SCRAPES_PER_S - (time.monotonic() - started)))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*peers.lianxin_command(), *args], cwd=ROOT, capture_output=True, text=True, check=True
    )


def metrics_cost(
    net: consensus_net.Network, signer: consensus_net.Signer, anchor: str, args: argparse.Namespace
) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for round_index in range(args.rounds):
        for mode in ("off", "on") if round_index % 2 == 0 else ("on", "off"):
            scraper = Scraper([net.port(i) for i in range(consensus_net.VALIDATORS)])
            if mode == "on":
                scraper.start()
            result = consensus_net.latency(net, signer, anchor, args.rate, args.seconds)
            if mode == "on":
                scraper.stop.set()
                scraper.join()
                result["scrapes"] = scraper.scrapes
                result["scrape_bytes_mean"] = scraper.bytes / max(scraper.scrapes, 1)
            rounds[mode].append(result)
            print(f"  round {round_index} scraping {mode}: p50 {result['p50_s']:.3f} s "
                  f"p99 {result['p99_s']:.3f} s", flush=True)  # fmt: skip
    summary: dict[str, Any] = {"rounds": rounds}
    for mode in ("off", "on"):
        for key in ("p50_s", "p99_s"):
            summary[f"{mode}_{key}"] = statistics.median(r[key] for r in rounds[mode])
    summary["p50_ratio"] = summary["on_p50_s"] / summary["off_p50_s"]
    summary["p99_ratio"] = summary["on_p99_s"] / summary["off_p99_s"]
    return summary


def backup_and_restore(
    net: consensus_net.Network,
    group: peers.ProcessGroup,
    workdir: Path,
    chain_txs: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    folder = net.root / f"node-{RESTORED}"
    backup = workdir / "backup"
    started = time.monotonic()
    summary = json.loads(_cli("node", "backup", str(backup), "--dir", str(folder), "--json").stdout)
    backup_s = time.monotonic() - started
    size = _du(backup)
    per_100k = 100_000 / max(chain_txs, 1)
    net.stop(RESTORED)
    shutil.move(str(folder / "data"), str(workdir / "lost-data"))
    started = time.monotonic()
    _cli("node", "restore", str(backup), "--dir", str(folder), "--json")
    restore_s = time.monotonic() - started
    target = net.head(0) + args.lag_blocks
    while net.head(0) < target:
        time.sleep(0.2)
    behind = net.head(0) - summary["headHeight"]
    log = folder / "node.log"
    command = [sys.executable, "-m", "node.daemon", "--config", str(folder / "node.toml"),
               "--log-level", "WARNING", "--confirm-restored-wal"]  # fmt: skip
    started = time.monotonic()
    net.processes[RESTORED] = group.start(command, cwd=ROOT, log=log)
    peers.wait_until_serving(net.port(RESTORED), net.processes[RESTORED], log)
    goal = net.head(0)
    while net.head(RESTORED) < goal:
        time.sleep(0.1)
    catch_up_s = time.monotonic() - started
    return {
        "chain_transactions": chain_txs,
        "head_height_at_backup": summary["headHeight"],
        "backup_s": backup_s,
        "backup_bytes": size,
        "backup_s_per_100k_tx": backup_s * per_100k,
        "backup_bytes_per_100k_tx": size * per_100k,
        "restore_s": restore_s,
        "blocks_behind_at_start": behind,
        "catch_up_s": catch_up_s,
        "catch_up_blocks_per_s": behind / catch_up_s if catch_up_s else float("nan"),
    }


def run(args: argparse.Namespace, workdir: Path, group: peers.ProcessGroup) -> dict[str, Any]:
    root, rpc_base = consensus_net.init_network(workdir)
    net = consensus_net.Network(root, rpc_base, group)
    for index in range(consensus_net.VALIDATORS):
        net.start(index)
    while min(net.head(i) for i in range(consensus_net.VALIDATORS)) < 2:
        time.sleep(0.1)
    password = (root / "keystore-password").read_bytes().strip()
    account = Sm2Account.from_keystore((root / "keys" / "admin.json").read_bytes(), password)
    chain_id = int(peers.RpcClient(net.port(0)).call("eth_chainId"), 16)
    signer = consensus_net.Signer(account, chain_id)
    anchor = consensus_net.deploy_anchor(net, signer)
    print("metrics cost", flush=True)
    results: dict[str, Any] = {"metrics": metrics_cost(net, signer, anchor, args)}
    sent = sum(r["transactions"] for rs in results["metrics"]["rounds"].values() for r in rs)
    print(f"{args.txs} more transactions", flush=True)
    consensus_net.throughput(net, signer, anchor, args.txs)
    print("backup, restore, catch-up", flush=True)
    results["backup"] = backup_and_restore(net, group, workdir, sent + args.txs + 1, args)
    return results


def print_table(results: dict[str, Any]) -> None:
    m, b = results["metrics"], results["backup"]
    print()
    print(f"| commit latency | no scraping | {SCRAPES_PER_S}/s per node | ratio |")
    print("|---|---|---|---|")
    for key in ("p50", "p99"):
        print(f"| {key} | {m[f'off_{key}_s']:.3f} s | {m[f'on_{key}_s']:.3f} s "
              f"| {m[f'{key}_ratio']:.2f}x |")  # fmt: skip
    print()
    print("| backup / restore | value |")
    print("|---|---|")
    print(f"| transactions on chain | {b['chain_transactions']:,} |")
    print(f"| backup (hot, node-2) | {b['backup_s']:.2f} s, {b['backup_bytes'] / 1e6:.1f} MB |")
    print(f"| per 100,000 tx (scaled linearly) | {b['backup_s_per_100k_tx']:.1f} s, "
          f"{b['backup_bytes_per_100k_tx'] / 1e6:.0f} MB |")  # fmt: skip
    print(f"| restore | {b['restore_s']:.2f} s |")
    print(f"| catch-up of {b['blocks_behind_at_start']} blocks | {b['catch_up_s']:.1f} s "
          f"({b['catch_up_blocks_per_s']:.0f} blocks/s) |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--txs", type=int, default=2000)
    parser.add_argument("--lag-blocks", type=int, default=100)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="bench-operations-") as tmp,
        peers.ProcessGroup() as group,
    ):
        results = run(args, Path(tmp), group)
    results["load_average_at_start"] = load
    results["arguments"] = vars(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print_table(results)
    print(f"\nload average at start {load[0]:.1f}; written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
