"""Benchmark what operating a validator costs: scraping metrics, backing up, restoring.

Run by hand: ``.venv/bin/python bench/bench_operations.py [--rounds R] [--seconds S]
[--rate TX_PER_S] [--txs N] [--lag-blocks B]``. The defaults make a short run (about a
minute and a half on a quiet two-core machine); raise them for steadier figures.

- **Metrics cost**: four validators (``lianxin net init --validators 4 --dev``), ``anchor``
  calls sent open-loop at ``--rate`` for ``--seconds``; a transaction's latency runs from its
  send until node 0 shows the block holding it. Rounds alternate "no scraping" and "every
  node's /metrics scraped 10 times a second"; medians over ``--rounds`` of each, and the ratio.
- **Backup**: node-2 is backed up while the network runs (``node.backup.backup_node``, what
  ``lianxin node backup`` runs, timed without the CLI's start-up), once before and once after
  ``--txs`` more transactions. Per 100,000 transactions two ways: the second backup scaled
  linearly from every transaction on the chain (an upper bound: genesis, contracts and empty
  blocks are counted too), and the growth between the two backups scaled from ``--txs``.
- **Restore and catch-up**: node-2 is stopped, its whole directory moved aside, the second
  backup restored into it (``restore_node``, what ``lianxin node restore`` runs: digests
  checked, store copied), the network left to go ``--lag-blocks`` blocks past the backup, then
  node-2 started with ``--confirm-restored-wal``: the time until it answers, and until its
  head reaches the head the others had when it started.

- **Rolling upgrade** (``--skip-rolling-upgrade`` leaves it out): the four validators
  restarted one at a time under a steady stream of transactions, each by SIGTERM and started
  as a new build with a parameter schedule appended to genesis: the longest gap between
  commits against the propose timeout, and lost or duplicated transactions
  (:mod:`operations_rolling_upgrade`).

- **Large chain** (``--transactions N``, e.g. 100000; ``--skip-network`` runs it alone): node
  backup, restore and verify-chain on a dev chain grown to N transactions, and the registry's
  backup and restore with ``--registry-records`` records (:mod:`operations_large_chain`).

Prints a table and writes ``bench/results/operations.json`` with the load average at start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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
import operations_large_chain as large_chain  # noqa: E402
import operations_rolling_upgrade as rolling_upgrade  # noqa: E402
import peers  # noqa: E402

from node.backup import backup_node, restore_node  # noqa: E402
from sdk.account import Sm2Account  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "operations.json"
SCRAPES_PER_S = 10
RESTORED = 2
CATCH_UP_LIMIT_S = 300.0
"""Longest the restored node may take to catch up before the run fails."""


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


def timed_backup(net: consensus_net.Network, dest: Path, chain_txs: int) -> dict[str, Any]:
    """Back node-2 up into ``dest`` while the network runs: seconds, bytes, head height."""
    started = time.monotonic()
    manifest = backup_node(net.root / f"node-{RESTORED}" / "node.toml", dest)
    seconds = time.monotonic() - started
    return {
        "chain_transactions": chain_txs,
        "head_height": manifest.head_height,
        "seconds": seconds,
        "bytes": _du(dest),
    }


def backup_and_restore(
    net: consensus_net.Network,
    group: peers.ProcessGroup,
    workdir: Path,
    before: dict[str, Any],
    after: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    folder = net.root / f"node-{RESTORED}"
    net.stop(RESTORED)
    shutil.move(str(folder), str(workdir / "lost-node"))
    started = time.monotonic()
    folder.mkdir()
    restore_node(workdir / "backup-after", folder)
    restore_s = time.monotonic() - started
    target = after["head_height"] + args.lag_blocks
    while net.head(0) < target:
        time.sleep(0.2)
    log = folder / "node.log"
    command = [sys.executable, "-m", "node.daemon", "--config", str(folder / "node.toml"),
               "--log-level", "WARNING", "--confirm-restored-wal"]  # fmt: skip
    goal = net.head(0)
    started = time.monotonic()
    net.processes[RESTORED] = group.start(command, cwd=ROOT, log=log)
    peers.wait_until_serving(net.port(RESTORED), net.processes[RESTORED], log)
    serving_s = time.monotonic() - started
    behind = goal - after["head_height"]
    while net.head(RESTORED) < goal:
        if time.monotonic() - started > CATCH_UP_LIMIT_S:
            raise peers.PeerError(f"node-{RESTORED} did not catch up in {CATCH_UP_LIMIT_S} s")
        time.sleep(0.1)
    catch_up_s = time.monotonic() - started
    whole_chain = 100_000 / max(after["chain_transactions"], 1)
    growth = 100_000 / max(after["chain_transactions"] - before["chain_transactions"], 1)
    return {
        "before": before,
        "after": after,
        "backup_s_per_100k_tx_linear": after["seconds"] * whole_chain,
        "backup_bytes_per_100k_tx_linear": after["bytes"] * whole_chain,
        "backup_s_per_100k_tx_growth": (after["seconds"] - before["seconds"]) * growth,
        "backup_bytes_per_100k_tx_growth": (after["bytes"] - before["bytes"]) * growth,
        "restore_s": restore_s,
        "blocks_behind_at_start": behind,
        "serving_s": serving_s,
        "catch_up_s": catch_up_s,
        "catch_up_blocks_per_s": behind / (catch_up_s - serving_s)
        if catch_up_s > serving_s
        else float("nan"),
    }


def start_network(net: consensus_net.Network) -> None:
    """Start the four validators together, then wait until each serves."""
    logs = []
    for index in range(consensus_net.VALIDATORS):
        folder = net.root / f"node-{index}"
        command = [sys.executable, "-m", "node.daemon", "--config", str(folder / "node.toml"),
                   "--log-level", "WARNING"]  # fmt: skip
        net.processes[index] = net.group.start(command, cwd=ROOT, log=folder / "node.log")
        logs.append(folder / "node.log")
    for index, log in enumerate(logs):
        peers.wait_until_serving(net.port(index), net.processes[index], log)


def run(args: argparse.Namespace, workdir: Path, group: peers.ProcessGroup) -> dict[str, Any]:
    root, rpc_base = consensus_net.init_network(workdir)
    net = consensus_net.Network(root, rpc_base, group)
    start_network(net)
    while min(net.head(i) for i in range(consensus_net.VALIDATORS)) < 2:
        time.sleep(0.1)
    password = (root / "keystore-password").read_bytes().strip()
    account = Sm2Account.from_keystore((root / "keys" / "admin.json").read_bytes(), password)
    chain_id = int(peers.RpcClient(net.port(0)).call("eth_chainId"), 16)
    signer = consensus_net.Signer(account, chain_id)
    anchor = consensus_net.deploy_anchor(net, signer)
    print("metrics cost", flush=True)
    results: dict[str, Any] = {"metrics": metrics_cost(net, signer, anchor, args)}
    sent = 1 + sum(r["transactions"] for rs in results["metrics"]["rounds"].values() for r in rs)
    print(f"backup, {args.txs} more transactions, backup", flush=True)
    before = timed_backup(net, workdir / "backup-before", sent)
    consensus_net.throughput(net, signer, anchor, args.txs)
    after = timed_backup(net, workdir / "backup-after", sent + args.txs)
    print("restore, catch-up", flush=True)
    results["backup"] = backup_and_restore(net, group, workdir, before, after, args)
    if not args.skip_rolling_upgrade:
        print("rolling upgrade", flush=True)
        results["rolling_upgrade"] = rolling_upgrade_phase(net, signer)
    return results


def rolling_upgrade_phase(
    net: consensus_net.Network, signer: consensus_net.Signer
) -> dict[str, Any]:
    """The rolling-upgrade phase on the running network (node-2 restored by then)."""
    from node.genesis_file import load_genesis

    genesis = load_genesis(net.root / "genesis.toml")
    addresses = ["0x" + v.address.hex() for v in genesis.validators]
    return rolling_upgrade.run_rolling_upgrade(net, signer, addresses)


def print_table(results: dict[str, Any]) -> None:
    m, b = results["metrics"], results["backup"]
    before, after = b["before"], b["after"]
    print()
    print(f"| commit latency | no scraping | {SCRAPES_PER_S}/s per node | ratio |")
    print("|---|---|---|---|")
    for key in ("p50", "p99"):
        print(f"| {key} | {m[f'off_{key}_s']:.3f} s | {m[f'on_{key}_s']:.3f} s "
              f"| {m[f'{key}_ratio']:.2f}x |")  # fmt: skip
    print()
    print("| backup / restore (node-2, network running) | value |")
    print("|---|---|")
    for label, backup in (("first backup", before), ("second backup", after)):
        print(f"| {label}: {backup['chain_transactions']:,} tx, height "
              f"{backup['head_height']} | {backup['seconds']:.3f} s, "
              f"{backup['bytes'] / 1e6:.2f} MB |")  # fmt: skip
    print(f"| per 100,000 tx, whole chain scaled (upper bound) | "
          f"{b['backup_s_per_100k_tx_linear']:.1f} s, "
          f"{b['backup_bytes_per_100k_tx_linear'] / 1e6:.0f} MB |")  # fmt: skip
    print(f"| per 100,000 tx, growth between the backups scaled | "
          f"{b['backup_s_per_100k_tx_growth']:.1f} s, "
          f"{b['backup_bytes_per_100k_tx_growth'] / 1e6:.0f} MB |")  # fmt: skip
    print(f"| restore (digests checked, store copied) | {b['restore_s']:.3f} s |")
    print(f"| restart until it answers | {b['serving_s']:.1f} s |")
    print(f"| catch-up of {b['blocks_behind_at_start']} blocks, from start | "
          f"{b['catch_up_s']:.1f} s ({b['catch_up_blocks_per_s']:.1f} blocks/s after "
          f"answering) |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each mode")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of one round")
    parser.add_argument("--rate", type=float, default=20.0, help="transactions a second")
    parser.add_argument("--txs", type=int, default=200, help="between the two backups")
    parser.add_argument("--lag-blocks", type=int, default=8, help="made while node-2 is down")
    parser.add_argument(
        "--transactions",
        type=int,
        default=0,
        help="also grow a dev chain to N transactions and back it up (0: no)",
    )
    parser.add_argument(
        "--registry-records",
        type=int,
        default=10_000,
        help="records in the registry backed up in the large-chain phase",
    )
    parser.add_argument(
        "--skip-rolling-upgrade",
        action="store_true",
        help="leave out the rolling restart of the four validators",
    )
    parser.add_argument(
        "--skip-network",
        action="store_true",
        help="only the large-chain phase, not the four validators",
    )
    args = parser.parse_args(argv)
    load = os.getloadavg()
    results: dict[str, Any] = {}
    if not args.skip_network:
        with (
            tempfile.TemporaryDirectory(prefix="bench-operations-") as tmp,
            peers.ProcessGroup() as group,
        ):
            results = run(args, Path(tmp), group)
    if args.transactions > 0:
        with (
            tempfile.TemporaryDirectory(prefix="bench-operations-large-") as tmp,
            peers.ProcessGroup() as group,
        ):
            results["large_chain"] = large_chain.run_large_chain(
                Path(tmp), group, args.transactions, args.registry_records
            )
    results["load_average_at_start"] = load
    results["arguments"] = vars(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if "metrics" in results:
        print_table(results)
    if "rolling_upgrade" in results:
        rolling_upgrade.print_rolling_upgrade(results["rolling_upgrade"])
    if "large_chain" in results:
        large_chain.print_large_chain(results["large_chain"])
    print(json.dumps(results, indent=2))
    print(f"\nload average at start {load[0]:.1f}; written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
