"""Benchmark the cost of p2p encryption: the same runs with frames sealed (SM4-CTR +
HMAC-SM3, the default) and in clear (``p2p_encryption = false``, a benchmark-only setting).

Run by hand: ``.venv/bin/python bench/bench_p2p.py [--rounds R] [--latency-seconds S]
[--rate TX_PER_S] [--skip-network]``.

- **Throughput between two peers over loopback**: a receiver process runs the node's
  transport (:class:`node.p2p.Network`) and counts the frames it hands on; the sender (this
  process) authenticates to it with the real handshake and writes frames through the same
  :class:`node.p2p.channel.Channel` as fast as the socket takes them. Frames of 256 B (a
  vote), 4 KiB (a transaction) and 1 MiB (a block); frames/s and MB/s of payload, from the
  first write until the receiver has counted the last frame; the median of R rounds.
  The CPU time of both processes per frame is reported too, as it depends less on the
  machine's load.
- **Commit latency of four validators**: ``lianxin net init --validators 4 --dev``, then
  ``anchor(bytes32)`` calls sent open-loop at a low rate for S seconds; a transaction's
  latency runs from its send until node 0 shows the block holding it (p50, p99), and the idle
  block time. A fresh network per setting and round, the settings alternating; the median
  over rounds.

Prints a table with the cost of encryption in % (same-run ratios), writes
``bench/results/p2p.json``. The machine is shared and has 2 cores: the JSON records the load
average at start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_consensus_net as consensus_net  # noqa: E402
import peers  # noqa: E402

from chain.crypto import PrivateKey, sm3  # noqa: E402
from node.config import PeerConfig  # noqa: E402
from node.p2p import FrameKind, Network, TransportSettings  # noqa: E402
from node.p2p.handshake import perform_handshake  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "p2p.json"
CHAIN_ID = 4242
FRAME_SIZES = {"vote 256 B": (256, 20_000), "tx 4 KiB": (4096, 8_000), "block 1 MiB": (2**20, 60)}
"""Payload size and frames per round of each throughput run."""
MAX_FRAME = 4 * 2**20 + 64 * 1024
MODES = ("sealed", "clear")


def _keys() -> tuple[PrivateKey, PrivateKey]:
    """(sender, receiver): the sender's key is the lower, so the receiver never dials."""
    one, two = (PrivateKey.from_bytes(sm3(b"bench-p2p" + bytes([i]))) for i in (1, 2))
    return tuple(sorted((one, two), key=lambda k: k.public_key.to_bytes()))  # type: ignore[return-value]


def _receiver(encrypted: bool, ready: Any, frames: Any, payload_bytes: Any) -> None:
    """Child process: a node transport that counts what it receives."""
    sender, receiver = _keys()

    def on_frame(peer: bytes, kind: FrameKind, body: bytes) -> None:
        frames.value += 1
        payload_bytes.value += len(body)

    async def main() -> None:
        network = Network(
            key=receiver, chain_id=CHAIN_ID, host="127.0.0.1", port=0, max_frame_bytes=MAX_FRAME,
            peers=(PeerConfig(sender.public_key.to_bytes(), "127.0.0.1", 9, "sender"),),
            on_frame=on_frame, settings=TransportSettings(encrypted=encrypted),
        )  # fmt: skip
        ready.put(await network.start())
        await asyncio.Event().wait()

    asyncio.run(main())


class _AnyKey(frozenset[bytes]):
    def __contains__(self, item: object) -> bool:
        return True


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _send(port: int, encrypted: bool, size: int, count: int, frames: Any) -> float:
    """Seconds from the first write until the receiver counted ``count`` more frames."""
    sender, _ = _keys()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = await perform_handshake(
        reader, writer, key=sender, chain_id=CHAIN_ID, allowed=_AnyKey(), initiator=True,
        max_bytes=MAX_FRAME, encrypted=encrypted,
    )  # fmt: skip
    channel = session.channel
    body = bytes(range(256)) * (size // 256)
    target = frames.value + count
    started = time.perf_counter()
    for index in range(count):
        writer.write(channel.encode(FrameKind.TX, body))
        if index % 32 == 31:
            await writer.drain()
    await writer.drain()
    while frames.value < target:
        await asyncio.sleep(0.0005)
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


def throughput(rounds: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results: dict[str, Any] = {}
    for mode in MODES:
        encrypted = mode == "sealed"
        ready = context.Queue()
        frames = context.RawValue("q", 0)
        payload = context.RawValue("q", 0)
        child = context.Process(target=_receiver, args=(encrypted, ready, frames, payload))
        child.start()
        try:
            port = ready.get(timeout=60)
            for name, (size, count) in FRAME_SIZES.items():
                runs = []
                for _ in range(rounds):
                    cpu_before = _cpu_seconds(os.getpid()) + _cpu_seconds(child.pid or 0)
                    seconds = asyncio.run(_send(port, encrypted, size, count, frames))
                    cpu = _cpu_seconds(os.getpid()) + _cpu_seconds(child.pid or 0) - cpu_before
                    runs.append({
                        "frames_per_s": count / seconds,
                        "mb_per_s": count * size / seconds / 1e6,
                        "cpu_us_per_frame": 1e6 * cpu / count,
                    })  # fmt: skip
                results.setdefault(name, {})[mode] = {
                    key: statistics.median(r[key] for r in runs) for key in runs[0]
                } | {"rounds": runs}
                print(f"{mode:6} {name:12} {results[name][mode]['frames_per_s']:>10,.0f} frames/s",
                      flush=True)  # fmt: skip
        finally:
            child.terminate()
            child.join(10)
    for row in results.values():
        sealed, clear = row["sealed"], row["clear"]
        row["cost_percent"] = 100 * (1 - sealed["frames_per_s"] / clear["frames_per_s"])
        row["cpu_cost_percent"] = 100 * (sealed["cpu_us_per_frame"] / clear["cpu_us_per_frame"] - 1)
    return results


def _network_round(
    workdir: Path, group: peers.ProcessGroup, mode: str, name: str, rate: float, seconds: float
) -> dict[str, Any]:
    """Start a fresh 4-validator network in ``mode``, measure it, stop it."""
    from sdk.account import Sm2Account

    settings = {} if mode == "sealed" else {
        "p2p_encryption": "false", "p2p_allow_plaintext_dev": "true",
    }  # fmt: skip
    root, rpc_base = consensus_net.init_network(workdir, name, settings)
    net = consensus_net.Network(root, rpc_base, group)
    try:
        for index in range(consensus_net.VALIDATORS):
            net.start(index)
        while min(net.head(i) for i in range(consensus_net.VALIDATORS)) < 2:
            time.sleep(0.1)
        password = (root / "keystore-password").read_bytes().strip()
        account = Sm2Account.from_keystore((root / "keys" / "admin.json").read_bytes(), password)
        chain_id = int(peers.RpcClient(net.port(0)).call("eth_chainId"), 16)
        signer = consensus_net.Signer(account, chain_id)
        anchor = consensus_net.deploy_anchor(net, signer)
        idle = consensus_net.idle_block_time(net)
        measured = consensus_net.latency(net, signer, anchor, rate, seconds)
    finally:
        for index in list(net.processes):
            net.stop(index)
    return {"idle_block_time_ms": idle, **measured}


def commit_latency(
    workdir: Path, group: peers.ProcessGroup, rate: float, seconds: float, rounds: int
) -> dict[str, Any]:
    """The two settings alternate, round after round, so that both see the same load."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for round_ in range(rounds):
        for mode in MODES:
            run = _network_round(workdir, group, mode, f"net-{mode}-{round_}", rate, seconds)
            runs[mode].append(run)
            print(f"{mode:6} commit p50 {run['p50_s']:.3f} s  p99 {run['p99_s']:.3f} s  "
                  f"idle block {run['idle_block_time_ms']:.0f} ms", flush=True)  # fmt: skip
    results: dict[str, Any] = {"rate_tx_per_s": rate, "seconds": seconds}
    for mode in MODES:
        keys = ("p50_s", "p99_s", "idle_block_time_ms")
        results[mode] = {k: statistics.median(r[k] for r in runs[mode]) for k in keys}
        results[mode]["rounds"] = runs[mode]
    for key in ("p50_s", "p99_s"):
        ratio = results["sealed"][key] / results["clear"][key]
        results[f"{key[:3]}_cost_percent"] = 100 * (ratio - 1)
    return results


def print_table(results: dict[str, Any]) -> None:
    print("\np2p throughput, two peers over loopback (median of rounds)")
    print(f"{'frames':14}{'sealed f/s':>12}{'clear f/s':>12}{'sealed MB/s':>13}"
          f"{'clear MB/s':>12}{'cost':>8}{'CPU us/frame sealed':>21}{'clear':>8}")  # fmt: skip
    for name, row in results["throughput"].items():
        sealed, clear = row["sealed"], row["clear"]
        print(f"{name:14}{sealed['frames_per_s']:>12,.0f}{clear['frames_per_s']:>12,.0f}"
              f"{sealed['mb_per_s']:>13.1f}{clear['mb_per_s']:>12.1f}"
              f"{row['cost_percent']:>7.1f}%{sealed['cpu_us_per_frame']:>21,.1f}"
              f"{clear['cpu_us_per_frame']:>8,.1f}")  # fmt: skip
    print("(cost: fewer frames/s sealed than in clear; CPU: sender and receiver together)")
    latency = results.get("commit_latency")
    if latency:
        print(f"\ncommit latency, 4 validators, {latency['rate_tx_per_s']:.0f} tx/s "
              "(median of rounds)")  # fmt: skip
        print(f"{'':10}{'p50 s':>8}{'p99 s':>8}{'idle block ms':>15}")
        for mode in MODES:
            row = latency[mode]
            print(f"{mode:10}{row['p50_s']:>8.3f}{row['p99_s']:>8.3f}"
                  f"{row['idle_block_time_ms']:>15.0f}")  # fmt: skip
        p50, p99 = latency["p50_cost_percent"], latency["p99_cost_percent"]
        print(f"cost: p50 {p50:+.1f}%, p99 {p99:+.1f}%")
    print(f"(load average at start: {results['load_average']})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per size")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--latency-rounds", type=int, default=2, help="networks per setting")
    parser.add_argument("--rate", type=float, default=20.0, help="tx/s of the latency run")
    parser.add_argument("--skip-network", action="store_true", help="throughput only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results: dict[str, Any] = {"load_average": peers.load_average()}
    results["throughput"] = throughput(args.rounds)
    if not args.skip_network:
        with (
            peers.terminate_on_sigterm(),
            peers.scratch_dir("lianxin-p2p-") as workdir,
            peers.ProcessGroup() as group,
        ):
            results["commit_latency"] = commit_latency(
                workdir, group, args.rate, args.latency_seconds, args.latency_rounds
            )
    results["machine"] = {"python": platform.python_version()}
    results["args"] = vars(args)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
