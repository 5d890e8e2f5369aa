"""Benchmark a network of four validators, each its own process on 127.0.0.1.

Run by hand: ``.venv/bin/python bench/bench_consensus_net.py [--txs N] [--latency-seconds S]
[--catchup-blocks B] [--no-profile]``, or ``... --one-down [--rounds R] [--round-seconds S]``.

``lianxin net init --validators 4 --dev`` in a temporary folder (the timings ``net init``
writes), then ``python -m node.daemon`` per validator. The ``Anchor`` contract is deployed,
and ``anchor(bytes32)`` calls, SM2-signed before the clock starts, go round-robin to the four
JSON-RPC ports, one keep-alive HTTP connection per port:

- sustained throughput: N transactions sent as fast as the nodes admit them (a full mempool
  is waited out), until ``Anchor.total()`` shows every one committed;
- finality latency at 50 % of that rate: an open-loop sender for S seconds; a transaction's
  latency runs from just before its send until node 0 first shows the block holding it
  (node 0 is polled every few milliseconds); p50 / p99 and the block time meanwhile;
- one node sampled with py-spy during the sustained run (CPU samples, all threads), split
  into SM2/SM3, EVM, encoding, I/O and the rest;
- catch-up: validator 3 stopped while the others commit B blocks, then restarted; its sync
  rate against the chain's block rate over the same period.

Goals: finality p50 ≤ 0.5 s and p99 ≤ 1.5 s. Prints a table, writes
``bench/results/consensus_net.json``.

``--one-down``: consensus with one of four validators down. For each proposer behaviour, a
fresh network (``net init --dev`` timings) runs with validator 3 stopped; once the chain has
moved past the liveness window, R rounds of S seconds each measure, on node 0, the interval
between consecutive commits and the latency of ``anchor`` calls sent open-loop at a low rate
(p50 / p99 per round; the table shows the median over rounds). The behaviours: validators
absent from the recent certificates passed over as proposer (``skip_absent_proposers``, the
default), and the rotation as CometBFT has it, waiting out the propose timeout at every turn
of the stopped validator (``skip_absent_proposers = false``). Writes
``bench/results/consensus_one_down.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
from eth_utils import keccak  # noqa: E402

from contracts.artifacts import load_artifact  # noqa: E402
from sdk.account import Sm2Account  # noqa: E402
from sdk.transactions import block_limit_for, build_transaction, encode_raw  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "consensus_net.json"
ONE_DOWN_RESULTS = ROOT / "bench" / "results" / "consensus_one_down.json"
ONE_DOWN_RATE = 20.0
"""Transactions per second sent while one validator is down (a light load: the figure is the
commit latency, not throughput)."""
VALIDATORS = 4
ANCHOR_SELECTOR = keccak(text="anchor(bytes32)")[:4]
TOTAL_SELECTOR = keccak(text="total()")[:4]
ANCHOR_GAS = 100_000
DEPLOY_GAS = 3_000_000
SEND_WINDOW = 4_000
"""Most transactions sent but not yet committed in the throughput run (mempools hold 10,000)."""
POLL_S = 0.005
GOAL_P50_S = 0.5
GOAL_P99_S = 1.5

PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SM2/SM3", ("chain/crypto/",)),
    ("EVM (py-evm)", ("/eth/", "/trie/", "chain/execution/", "eth_utils", "eth_hash")),
    (
        "encoding (RLP, JSON)",
        (
            "/rlp/",
            "chain/encoding.py",
            "chain/types.py",
            "json/",
            "node/rpc/format.py",
            "node/rpc/params.py",
            "chain/consensus/messages.py",
        ),
    ),
    (
        "I/O (LMDB, sockets, event loop)",
        (
            "node/storage/",
            "lmdb",
            "asyncio/",
            "selectors.py",
            "aiohttp",
            "socket.py",
            "node/p2p/",
            "node/wal.py",
            "multidict",
            "yarl",
        ),
    ),
)
"""Components recognised in a py-spy frame; a sample counts for the innermost one."""


@dataclass
class Network:
    """The four validator processes of one benchmark run."""

    root: Path
    rpc_base: int
    group: peers.ProcessGroup
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def port(self, index: int) -> int:
        return self.rpc_base + index

    def start(self, index: int) -> None:
        folder = self.root / f"node-{index}"
        log = folder / "node.log"
        command = [sys.executable, "-m", "node.daemon", "--config", str(folder / "node.toml")]
        process = self.group.start([*command, "--log-level", "WARNING"], cwd=ROOT, log=log)
        self.processes[index] = process
        peers.wait_until_serving(self.port(index), process, log)

    def stop(self, index: int) -> None:
        self.group.stop(self.processes.pop(index))

    def head(self, index: int) -> int:
        return int(peers.RpcClient(self.port(index), timeout=5).call("eth_blockNumber"), 16)


def init_network(
    workdir: Path, name: str = "net", settings: dict[str, str] | None = None
) -> tuple[Path, int]:
    """``net init`` a network in ``workdir/name``; ``settings`` are added to every node.toml
    (top-level keys, TOML values as text)."""
    rpc_base = peers.free_port()
    while any(_busy(rpc_base + i) or _busy(rpc_base + 100 + i) for i in range(VALIDATORS)):
        rpc_base = peers.free_port()
    p2p_base = rpc_base + 100
    root = workdir / name
    subprocess.run(
        [*peers.lianxin_command(), "net", "init", str(root), "--validators", str(VALIDATORS),
         "--dev", "--rpc-port", str(rpc_base), "--p2p-port", str(p2p_base)],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for index in range(VALIDATORS):
        path = root / f"node-{index}" / "node.toml"
        text = path.read_text(encoding="utf-8")
        lines = "".join(f"{key} = {value}\n" for key, value in (settings or {}).items())
        # Top-level keys go before the first table ([[peers]]).
        head, separator, tables = text.partition("\n[")
        path.write_text(head + "\n" + lines + separator.lstrip("\n") + tables, encoding="utf-8")
    return root, rpc_base


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Signer:
    """SM2-signs anchor calls for one dev account."""

    def __init__(self, account: Sm2Account, chain_id: int) -> None:
        self.account = account
        self.chain_id = chain_id

    def raw(self, to: bytes | None, data: bytes, gas: int, height: int) -> str:
        tx = build_transaction(
            chain_id=self.chain_id,
            to=to,
            data=data,
            gas_limit=gas,
            block_limit=block_limit_for(height),
        )
        return encode_raw(self.account.sign_transaction(tx))

    def anchors(self, anchor: bytes, count: int, height: int, salt: int) -> list[tuple[str, str]]:
        """``count`` raw ``anchor(root)`` transactions with their hashes."""
        from chain.crypto import sm3

        signed = []
        for i in range(count):
            root = sm3(b"%d/%d" % (salt, i))
            raw = self.raw(anchor, ANCHOR_SELECTOR + root, ANCHOR_GAS, height)
            signed.append((raw, "0x" + sm3(bytes.fromhex(raw[2:])).hex()))
        return signed


def wait_receipt(client: peers.RpcClient, tx_hash: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        receipt = client.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return receipt
        time.sleep(0.05)
    raise peers.PeerError(f"no receipt for {tx_hash}")


def anchor_total(client: peers.RpcClient, anchor: str) -> int:
    result = client.call(
        "eth_call", [{"to": anchor, "data": "0x" + TOTAL_SELECTOR.hex()}, "latest"]
    )
    return int(result, 16)


def send_all(
    port: int, slot: int, raws: Sequence[str], committed: list[int], sent: list[int]
) -> None:
    """Send ``raws`` to one node, counting in ``sent[slot]``; a full mempool or a window
    ahead of commits is waited out."""
    client = peers.RpcClient(port)
    for raw in raws:
        while sum(sent) - committed[0] > SEND_WINDOW:
            time.sleep(0.01)
        while True:
            try:
                client.call("eth_sendRawTransaction", [raw])
                break
            except peers.RpcFailure as exc:
                if "full" not in str(exc).lower():
                    raise
                time.sleep(0.05)
        sent[slot] += 1


def throughput(net: Network, signer: Signer, anchor: str, count: int) -> dict[str, Any]:
    height = net.head(0)
    raws = [raw for raw, _ in signer.anchors(bytes.fromhex(anchor[2:]), count, height, 1)]
    observer = peers.RpcClient(net.port(0))
    before = anchor_total(observer, anchor)
    first_block = net.head(0)
    committed = [0]
    sent = [0] * VALIDATORS
    threads = [
        threading.Thread(
            target=send_all,
            args=(net.port(i), i, raws[i::VALIDATORS], committed, sent),
            daemon=True,
        )
        for i in range(VALIDATORS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while committed[0] < count:
        time.sleep(0.05)
        committed[0] = anchor_total(observer, anchor) - before
        if time.monotonic() - started > 600:
            raise peers.PeerError(f"only {committed[0]} of {count} committed in 600 s")
    seconds = time.monotonic() - started
    for thread in threads:
        thread.join()
    last_block = net.head(0)
    return {
        "transactions": count,
        "seconds": seconds,
        "tx_per_s": count / seconds,
        "blocks": last_block - first_block,
        "tx_per_block": count / max(last_block - first_block, 1),
    }


class BlockWatcher(threading.Thread):
    """Polls node 0 and notes when each transaction hash first appears in a block."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = peers.RpcClient(port)
        self.seen: dict[str, float] = {}
        self.blocks: list[tuple[int, float, int]] = []
        """(height, when node 0 first showed it, transactions)."""
        self.stop = threading.Event()

    def run(self) -> None:
        height = int(self.client.call("eth_blockNumber"), 16)
        while not self.stop.is_set():
            block = self.client.call("eth_getBlockByNumber", [hex(height + 1), False])
            if block is None:
                time.sleep(POLL_S)
                continue
            now = time.monotonic()
            height += 1
            for tx_hash in block["transactions"]:
                self.seen[tx_hash] = now
            self.blocks.append((height, now, len(block["transactions"])))


def open_loop(
    port: int, signed: Sequence[tuple[str, str]], rate: float, sends: dict[str, float]
) -> None:
    client = peers.RpcClient(port)
    started = time.monotonic()
    for index, (raw, tx_hash) in enumerate(signed):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sends[tx_hash] = time.monotonic()
        client.call("eth_sendRawTransaction", [raw])


def latency(
    net: Network, signer: Signer, anchor: str, rate: float, seconds: float
) -> dict[str, Any]:
    count = max(int(rate * seconds), VALIDATORS)
    signed = signer.anchors(bytes.fromhex(anchor[2:]), count, net.head(0), 2)
    watcher = BlockWatcher(net.port(0))
    watcher.start()
    sends: dict[str, float] = {}
    threads = [
        threading.Thread(
            target=open_loop,
            args=(net.port(i), signed[i::VALIDATORS], rate / VALIDATORS, sends),
            daemon=True,
        )
        for i in range(VALIDATORS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 60
    while any(h not in watcher.seen for h in sends) and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop.set()
    watcher.join()
    latencies = sorted(watcher.seen[h] - t for h, t in sends.items() if h in watcher.seen)
    blocks = watcher.blocks
    block_ms = (
        1000 * (blocks[-1][1] - blocks[0][1]) / (len(blocks) - 1)
        if len(blocks) > 1
        else float("nan")
    )
    return {
        "rate_tx_per_s": rate,
        "transactions": count,
        "finalized": len(latencies),
        "p50_s": percentile(latencies, 0.50),
        "p99_s": percentile(latencies, 0.99),
        "max_s": latencies[-1],
        "block_time_ms": block_ms,
        "tx_per_block": statistics.mean(n for _, _, n in blocks) if blocks else 0.0,
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def idle_block_time(net: Network, seconds: float = 5.0) -> float:
    """Milliseconds per block while no transaction arrives."""
    first, started = net.head(0), time.monotonic()
    time.sleep(seconds)
    blocks = net.head(0) - first
    return 1000 * (time.monotonic() - started) / max(blocks, 1)


def catch_up(net: Network, blocks: int) -> dict[str, Any]:
    lagging = VALIDATORS - 1
    net.stop(lagging)
    left_at = net.head(0)
    paused = time.monotonic()
    while net.head(0) < left_at + blocks:
        time.sleep(0.2)
    missed_rate = (net.head(0) - left_at) / (time.monotonic() - paused)
    net.start(lagging)
    started = time.monotonic()
    from_height = net.head(lagging)
    target = net.head(0)
    while net.head(lagging) < target:
        time.sleep(0.02)
    seconds = time.monotonic() - started
    chain_blocks = net.head(0) - target
    sync_rate = (target - from_height) / seconds
    chain_rate = max(chain_blocks, 1) / seconds
    return {
        "blocks_synced": target - from_height,
        "seconds": seconds,
        "sync_blocks_per_s": sync_rate,
        "chain_blocks_per_s_during_sync": chain_rate,
        "chain_blocks_per_s_with_three": missed_rate,
        "ratio": sync_rate / chain_rate,
        "ratio_vs_undisturbed_chain": sync_rate / missed_rate,
    }


def classify(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        for category, markers in PROFILE_CATEGORIES:
            if any(marker in frame for marker in markers):
                return category
    return "other (consensus, ledger, mempool glue)"


def profile_shares(raw_profile: str) -> dict[str, float]:
    counts: Counter[str] = Counter()
    for line in raw_profile.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            counts[classify(stack.split(";"))] += int(count_text)
    total = sum(counts.values())
    return {name: 100 * n / total for name, n in counts.most_common()} if total else {}


def deploy_anchor(net: Network, signer: Signer) -> str:
    client = peers.RpcClient(net.port(0))
    bytecode = load_artifact("Anchor").bytecode
    tx_hash = client.call(
        "eth_sendRawTransaction", [signer.raw(None, bytecode, DEPLOY_GAS, net.head(0))]
    )
    receipt = wait_receipt(client, tx_hash)
    assert int(receipt["status"], 16) == 1, receipt
    return str(receipt["contractAddress"])


def run(args: argparse.Namespace, workdir: Path, group: peers.ProcessGroup) -> dict[str, Any]:
    root, rpc_base = init_network(workdir)
    net = Network(root, rpc_base, group)
    for index in range(VALIDATORS):
        net.start(index)
    while min(net.head(i) for i in range(VALIDATORS)) < 2:
        time.sleep(0.1)
    password = (root / "keystore-password").read_bytes().strip()
    account = Sm2Account.from_keystore((root / "keys" / "admin.json").read_bytes(), password)
    chain_id = int(peers.RpcClient(net.port(0)).call("eth_chainId"), 16)
    signer = Signer(account, chain_id)
    anchor = deploy_anchor(net, signer)
    results: dict[str, Any] = {"idle_block_time_ms": idle_block_time(net)}
    print(f"idle block time: {results['idle_block_time_ms']:.0f} ms", flush=True)

    profiled = 1
    py_spy = None if args.no_profile else peers.ensure_py_spy()
    recorder = None
    raw_out = workdir / "profile.txt"
    if py_spy is not None:
        pid = str(net.processes[profiled].pid)
        command = [str(py_spy), "record", "--pid", pid, "--format", "raw", "--output",
                   str(raw_out), "--rate", "200", "--nonblocking", "--threads"]  # fmt: skip
        recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    results["throughput"] = throughput(net, signer, anchor, args.txs)
    if recorder is not None:
        import signal

        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
        if raw_out.exists():
            results["profile_node"] = f"node-{profiled}"
            results["profile_percent"] = profile_shares(raw_out.read_text())
    print(f"sustained: {results['throughput']['tx_per_s']:.0f} tx/s", flush=True)
    time.sleep(2)
    rate = results["throughput"]["tx_per_s"] / 2
    results["latency"] = latency(net, signer, anchor, rate, args.latency_seconds)
    print(f"latency at {rate:.0f} tx/s: p50 {results['latency']['p50_s']:.3f} s", flush=True)
    if args.catchup_blocks:
        results["catch_up"] = catch_up(net, args.catchup_blocks)
    return results


def one_down_round(net: Network, signer: Signer, anchor: str, seconds: float) -> dict[str, float]:
    """One measuring round with validator 3 down: commit intervals on node 0 and the latency
    of anchor calls sent to the three running validators at :data:`ONE_DOWN_RATE`."""
    running = [i for i in range(VALIDATORS) if i in net.processes]
    count = max(int(ONE_DOWN_RATE * seconds), len(running))
    signed = signer.anchors(bytes.fromhex(anchor[2:]), count, net.head(0), int(time.time()))
    watcher = BlockWatcher(net.port(0))
    watcher.start()
    sends: dict[str, float] = {}
    threads = [
        threading.Thread(
            target=open_loop,
            args=(net.port(node), signed[k :: len(running)], ONE_DOWN_RATE / len(running), sends),
            daemon=True,
        )
        for k, node in enumerate(running)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 30
    while any(h not in watcher.seen for h in sends) and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop.set()
    watcher.join()
    latencies = sorted(watcher.seen[h] - t for h, t in sends.items() if h in watcher.seen)
    times = [when for _, when, _ in watcher.blocks]
    intervals = sorted(b - a for a, b in itertools.pairwise(times))
    # The cause, measured: the round each block was decided in, and the commit intervals of
    # the blocks decided in round 0 against those that needed a later round.
    client = peers.RpcClient(net.port(0))
    by_round: dict[bool, list[float]] = {False: [], True: []}
    for (_, before, _), (height, when, _) in itertools.pairwise(watcher.blocks):
        found = client.call("lianxin_getBlockHeader", [hex(height)])
        late = int(found["certificate"]["round"], 16) > 0
        by_round[late].append(when - before)
    return {
        "blocks": len(times),
        "blocks_after_round_0": len(by_round[True]),
        "interval_round_0_median_s": statistics.median(by_round[False] or [float("nan")]),
        "interval_later_round_median_s": statistics.median(by_round[True] or [float("nan")]),
        "commit_interval_p50_s": percentile(intervals, 0.50),
        "commit_interval_p99_s": percentile(intervals, 0.99),
        "tx_latency_p50_s": percentile(latencies, 0.50),
        "tx_latency_p99_s": percentile(latencies, 0.99),
        "finalized": len(latencies),
        "sent": count,
    }


def one_down(args: argparse.Namespace, workdir: Path, group: peers.ProcessGroup) -> dict[str, Any]:
    """Both proposer behaviours, each on its own network with validator 3 down."""
    from chain.liveness import PROPOSER_LIVENESS_WINDOW

    behaviours = {"skip absent proposers": "true", "CometBFT rotation (old)": "false"}
    results: dict[str, Any] = {}
    for label, skip in behaviours.items():
        name = "net-skip" if skip == "true" else "net-old"
        root, rpc_base = init_network(workdir, name, {"skip_absent_proposers": skip})
        net = Network(root, rpc_base, group)
        for index in range(VALIDATORS):
            net.start(index)
        while min(net.head(i) for i in range(VALIDATORS)) < 2:
            time.sleep(0.1)
        password = (root / "keystore-password").read_bytes().strip()
        account = Sm2Account.from_keystore((root / "keys" / "admin.json").read_bytes(), password)
        chain_id = int(peers.RpcClient(net.port(0)).call("eth_chainId"), 16)
        signer = Signer(account, chain_id)
        anchor = deploy_anchor(net, signer)
        net.stop(VALIDATORS - 1)
        stopped_at = net.head(0)
        while net.head(0) < stopped_at + PROPOSER_LIVENESS_WINDOW + 4:
            time.sleep(0.2)
        rounds = []
        for number in range(args.rounds):
            measured = one_down_round(net, signer, anchor, args.round_seconds)
            rounds.append(measured)
            print(
                f"{label}, round {number + 1}: commit interval p50 "
                f"{measured['commit_interval_p50_s']:.3f} s p99 "
                f"{measured['commit_interval_p99_s']:.3f} s; tx latency p50 "
                f"{measured['tx_latency_p50_s']:.3f} s p99 {measured['tx_latency_p99_s']:.3f} s; "
                f"{measured['blocks_after_round_0']} of {measured['blocks'] - 1} blocks decided "
                f"after round 0 (median interval "
                f"{measured['interval_later_round_median_s']:.3f} s vs "
                f"{measured['interval_round_0_median_s']:.3f} s in round 0)",
                flush=True,
            )
        for index in list(net.processes):
            net.stop(index)
        results[label] = {
            "rounds": rounds,
            "median": {
                key: statistics.median(r[key] for r in rounds)
                for key in rounds[0]
                if key.endswith("_s")
            },
        }
    return results


def print_one_down(results: dict[str, Any]) -> None:
    print("\nconsensus with one of four validators down (medians over rounds; busy machine):")
    columns = (
        ("commit_interval_p50_s", "interval p50"),
        ("commit_interval_p99_s", "interval p99"),
        ("tx_latency_p50_s", "tx p50"),
        ("tx_latency_p99_s", "tx p99"),
    )
    width = max(len(label) for label in results)
    print(f"{'':<{width}}  " + "  ".join(f"{title:>13}" for _, title in columns))
    for label, figures in results.items():
        median = figures["median"]
        cells = "  ".join(f"{1000 * median[key]:>10.0f} ms" for key, _ in columns)
        print(f"{label:<{width}}  {cells}")
    for label, figures in results.items():
        late = sum(r["blocks_after_round_0"] for r in figures["rounds"])
        blocks = sum(r["blocks"] - 1 for r in figures["rounds"])
        median = figures["median"]
        print(
            f"{label}: {late} of {blocks} blocks decided after round 0, median interval "
            f"{1000 * median['interval_later_round_median_s']:.0f} ms against "
            f"{1000 * median['interval_round_0_median_s']:.0f} ms for round 0"
        )
    skip, old = (results[label]["median"] for label in results)
    print(
        f"p99 commit interval: {skip['commit_interval_p99_s']:.3f} s vs "
        f"{old['commit_interval_p99_s']:.3f} s ("
        f"{skip['commit_interval_p99_s'] / old['commit_interval_p99_s']:.2f}x); goal ≤ "
        f"{GOAL_P99_S:.1f} s"
    )


def print_table(results: dict[str, Any]) -> None:
    through, lat = results["throughput"], results["latency"]
    rows = [
        ("sustained throughput (Anchor calls)", f"{through['tx_per_s']:.0f} tx/s",
         f"{through['transactions']} txs, {through['tx_per_block']:.0f} tx/block"),
        ("finality p50 at 50 % load", f"{lat['p50_s'] * 1000:.0f} ms",
         f"goal ≤ {GOAL_P50_S * 1000:.0f} ms at {lat['rate_tx_per_s']:.0f} tx/s"),
        ("finality p99 at 50 % load", f"{lat['p99_s'] * 1000:.0f} ms",
         f"goal ≤ {GOAL_P99_S * 1000:.0f} ms"),
        ("block time at 50 % load", f"{lat['block_time_ms']:.0f} ms",
         f"{lat['tx_per_block']:.1f} tx/block"),
        ("block time, idle", f"{results['idle_block_time_ms']:.0f} ms", "empty blocks"),
    ]  # fmt: skip
    if "catch_up" in results:
        c = results["catch_up"]
        rows.append(
            ("catch-up sync rate", f"{c['sync_blocks_per_s']:.0f} blocks/s",
             f"{c['ratio']:.1f}x the chain meanwhile, {c['ratio_vs_undisturbed_chain']:.1f}x "
             f"the chain with 3 validators ({c['blocks_synced']} blocks)")
        )  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")
    if "profile_percent" in results:
        print(f"\nCPU of {results['profile_node']} during the sustained run:")
        for name, share in results["profile_percent"].items():
            print(f"  {name:<40} {share:5.1f} %")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=6_000, help="transactions, throughput run")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--catchup-blocks", type=int, default=200, help="0 skips catch-up")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--one-down", action="store_true", help="only: one validator down, both proposer modes"
    )
    parser.add_argument("--rounds", type=int, default=3, help="measuring rounds, --one-down")
    parser.add_argument("--round-seconds", type=float, default=20.0, help="per round, --one-down")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with (
        peers.terminate_on_sigterm(),
        peers.scratch_dir("lianxin-consensus-net-") as workdir,
        peers.ProcessGroup() as group,
    ):
        if args.one_down:
            down = one_down(args, workdir, group)
        else:
            results = run(args, workdir, group)
    if args.one_down:
        print_one_down(down)
        ONE_DOWN_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "behaviours": down,
            "machine": {"python": platform.python_version(), "cpus": _cpus()},
            "args": vars(args),
        }
        ONE_DOWN_RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {ONE_DOWN_RESULTS.relative_to(ROOT)}")
        return
    results["machine"] = {"python": platform.python_version(), "cpus": _cpus()}
    results["args"] = vars(args)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
