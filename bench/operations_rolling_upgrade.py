"""The rolling-upgrade phase of ``bench_operations.py``: restart the four validators one at a
time under a steady stream of transactions, each stopped by SIGTERM and started as a new
build (``LIANXIN_BUILD``) that loads a parameter schedule appended to the genesis file, and
measure what the network felt.

- **Longest commit gap**: the largest difference between consecutive block timestamps
  (``timestampMs``, stamped by each proposer; one host, one clock) from the first stop to the
  last node signing again, next to the configured propose timeout (the rule: no halt longer
  than it, see ``docs/operations.md``), and the median gap.
- **Rounds cut short**: the rounds whose proposer the nodes found unavailable (connection
  down, or behind) and prevoted nil at once (:mod:`node.proposer_presence`; the nodes'
  ``proposer_disconnected`` / ``proposer_behind`` counters at the end, summed; a node's
  counters restart with it).
- **Lost transactions**: each client thread sends a transfer, waits for its receipt (from
  whichever node answers), and sends the next; at the end every hash sent is looked up in the
  blocks: lost (in none) and duplicated (in more than one) are counted.
- **Per node**: SIGTERM to exit, start to answering JSON-RPC, to caught up with the others'
  head, and to its signature in a commit certificate again.

The schedule entry sits far ahead (``head + 100000``): the phase measures adopting a
schedule during the restart, not the height itself (the end-to-end test
``tests/e2e/test_rolling_upgrade.py`` crosses it).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import bench_consensus_net as consensus_net
import peers

from chain.crypto import sm3
from node.config import load_config
from sdk.transactions import build_transaction, encode_raw

ROOT = Path(__file__).resolve().parent.parent
NEW_BUILD = "bench-r2"
SENDERS = 3
RECEIPT_DEADLINE_S = 240.0
REJOIN_DEADLINE_S = 300.0


class ReceiptLoad:
    """Client threads sending one transfer at a time, each waited for by its receipt; a node
    that does not answer (being restarted) is passed over, the same signed bytes sent to the
    next."""

    def __init__(self, net: consensus_net.Network, signer: consensus_net.Signer) -> None:
        self.net = net
        self.signer = signer
        self.down: set[int] = set()
        self.sent: dict[str, int | None] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(SENDERS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(RECEIPT_DEADLINE_S + 30)

    def _ask(self, turn: int, method: str, params: list[Any]) -> Any:
        deadline = time.monotonic() + REJOIN_DEADLINE_S
        while time.monotonic() < deadline:
            for k in range(consensus_net.VALIDATORS):
                node = (turn + k) % consensus_net.VALIDATORS
                if node in self.down:
                    continue
                try:
                    return peers.RpcClient(self.net.port(node), timeout=5).call(method, params)
                except peers.RpcFailure:
                    raise
                except Exception:
                    continue
            time.sleep(0.2)
        raise peers.PeerError(f"no node answered {method}")

    def _run(self, worker: int) -> None:
        turn = worker
        while not self.stop.is_set():
            turn += 1
            try:
                height = int(self._ask(turn, "eth_blockNumber", []), 16)
                tx = build_transaction(
                    chain_id=self.signer.chain_id,
                    to=bytes(20),
                    data=b"",
                    gas_limit=50_000,
                    block_limit=height + 500,
                    value=1,
                )
                raw = encode_raw(self.signer.account.sign_transaction(tx))
                tx_hash = "0x" + sm3(bytes.fromhex(raw[2:])).hex()
                with self.lock:
                    self.sent[tx_hash] = None
                try:
                    self._ask(turn, "eth_sendRawTransaction", [raw])
                except peers.RpcFailure as exc:
                    if "known" not in str(exc).lower():
                        raise
                deadline = time.monotonic() + RECEIPT_DEADLINE_S
                while time.monotonic() < deadline:
                    receipt = self._ask(turn, "eth_getTransactionReceipt", [tx_hash])
                    if receipt is not None:
                        with self.lock:
                            self.sent[tx_hash] = int(receipt["blockNumber"], 16)
                        break
                    time.sleep(0.1)
            except Exception as exc:
                with self.lock:
                    self.errors.append(repr(exc))
                return


def _signers(net: consensus_net.Network, reader: int, height: int) -> set[str]:
    header = peers.RpcClient(net.port(reader), timeout=5).call(
        "lianxin_getBlockHeader", [hex(height)]
    )
    return {s["validator"] for s in header["certificate"]["signatures"]}


def _wait(what: str, condition: Any) -> None:
    deadline = time.monotonic() + REJOIN_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise peers.PeerError(f"timed out: {what}")


def _restart_one(
    net: consensus_net.Network, index: int, address: str, load: ReceiptLoad
) -> dict[str, float]:
    others = [i for i in range(consensus_net.VALIDATORS) if i != index]
    folder = net.root / f"node-{index}"
    load.down.add(index)
    started = time.monotonic()
    net.stop(index)  # SIGTERM to the process group, then wait for the exit
    stop_s = time.monotonic() - started
    log = folder / "node.log"
    command = ["env", f"LIANXIN_BUILD={NEW_BUILD}", sys.executable, "-m", "node.daemon",
               "--config", str(folder / "node.toml"), "--log-level", "WARNING"]  # fmt: skip
    started = time.monotonic()
    net.processes[index] = net.group.start(command, cwd=ROOT, log=log)
    peers.wait_until_serving(net.port(index), net.processes[index], log)
    serving_s = time.monotonic() - started
    load.down.discard(index)
    goal = max(net.head(i) for i in others)
    _wait(f"node-{index} caught up", lambda: net.head(index) >= goal)
    caught_up_s = time.monotonic() - started

    def signs() -> bool:
        top = net.head(others[0])
        return any(address in _signers(net, others[0], h) for h in range(goal + 1, top + 1))

    _wait(f"node-{index} signing", signs)
    return {
        "stop_s": stop_s,
        "serving_s": serving_s,
        "caught_up_s": caught_up_s,
        "signing_s": time.monotonic() - started,
    }


def run_rolling_upgrade(
    net: consensus_net.Network, signer: consensus_net.Signer, addresses: list[str]
) -> dict[str, Any]:
    """Restart every validator in turn under load; returns the figures (see the module
    docstring). ``addresses`` are the validators' addresses, by index."""
    propose_ms = load_config(net.root / "node-0" / "node.toml").timeout_propose_ms
    load = ReceiptLoad(net, signer)
    load.start()
    time.sleep(2.0)
    agreed = net.head(0) + 100_000
    with (net.root / "genesis.toml").open("a", encoding="utf-8") as genesis:
        genesis.write(
            f'\n[[upgrades]]\nheight = {agreed}\nparameter = "block_gas_limit"\nvalue = 80000000\n'
        )
    first = net.head(0)
    nodes = []
    for index in range(consensus_net.VALIDATORS):
        figures = _restart_one(net, index, addresses[index], load)
        print(f"  node-{index}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()),
              flush=True)  # fmt: skip
        nodes.append(figures)
    rolled = max(net.head(i) for i in range(consensus_net.VALIDATORS))
    load.finish()
    # Transactions sent before the stop was asked for land after ``rolled``: look that far,
    # once node 0 (which answers the reads below) holds the last block a receipt named.
    last = max([rolled, *(h for h in load.sent.values() if h is not None)])
    _wait("node-0 at the last receipt's block", lambda: net.head(0) >= last)
    client = peers.RpcClient(net.port(0), timeout=10)
    stamps = {}
    found: dict[str, int] = {}
    for height in range(first, rolled + 1):
        block = client.call("eth_getBlockByNumber", [hex(height), False])
        stamps[height] = int(block["timestampMs"], 16)
    lowest = min((h for h in load.sent.values() if h is not None), default=first)
    for height in range(min(lowest, first), last + 1):
        block = client.call("eth_getBlockByNumber", [hex(height), False])
        for tx_hash in block["transactions"]:
            found[tx_hash] = found.get(tx_hash, 0) + 1
    gaps = [stamps[h] - stamps[h - 1] for h in range(first + 1, rolled + 1)]
    versions = [
        peers.RpcClient(net.port(i), timeout=5).call("web3_clientVersion")
        for i in range(consensus_net.VALIDATORS)
    ]
    statuses = [
        peers.RpcClient(net.port(i), timeout=5).call("lianxin_getConsensusStatus")
        for i in range(consensus_net.VALIDATORS)
    ]
    cut_short = {
        reason: sum(int(s["counters"].get(f"proposer_{reason}", 0)) for s in statuses)
        for reason in ("disconnected", "behind")
    }
    return {
        "propose_timeout_ms": propose_ms,
        "blocks": rolled - first,
        "longest_gap_ms": max(gaps),
        "median_gap_ms": statistics.median(gaps),
        "longest_gap_vs_propose_timeout": max(gaps) / propose_ms,
        "gaps_over_propose_timeout": sum(1 for g in gaps if g > propose_ms),
        "longest_gap_within_propose_timeout": max(gaps) <= propose_ms,
        "longest_gaps": sorted(
            ((h, stamps[h] - stamps[h - 1]) for h in range(first + 1, rolled + 1)),
            key=lambda g: -g[1],
        )[:5],
        "rounds_cut_short": cut_short,
        "transactions_sent": len(load.sent),
        "transactions_lost": sum(1 for h in load.sent if h not in found),
        "transactions_without_receipt": sum(1 for b in load.sent.values() if b is None),
        "transactions_duplicated": sum(1 for h in load.sent if found.get(h, 0) > 1),
        "client_errors": load.errors,
        "nodes": nodes,
        "versions": versions,
    }


def print_rolling_upgrade(result: dict[str, Any]) -> None:
    """The phase's table."""
    print()
    print("| rolling upgrade (4 validators, SIGTERM, new build, under load) | value |")
    print("|---|---|")
    print(f"| longest commit gap | {result['longest_gap_ms']} ms "
          f"({result['longest_gap_vs_propose_timeout']:.2f}x the propose timeout of "
          f"{result['propose_timeout_ms']} ms) |")  # fmt: skip
    print(f"| median commit gap, {result['blocks']} blocks | {result['median_gap_ms']:.0f} ms |")
    within = "yes" if result["longest_gap_within_propose_timeout"] else "NO"
    print(f"| longest gap within the propose timeout | {within} |")
    print(f"| gaps over the propose timeout | {result['gaps_over_propose_timeout']} |")
    longest = ", ".join(f"{ms} ms before {h}" for h, ms in result["longest_gaps"])
    print(f"| the five longest gaps | {longest} |")
    cut = result["rounds_cut_short"]
    print(f"| rounds cut short: proposer disconnected / behind | {cut['disconnected']} / "
          f"{cut['behind']} |")  # fmt: skip
    print(f"| transactions sent / lost / duplicated | {result['transactions_sent']} / "
          f"{result['transactions_lost']} / {result['transactions_duplicated']} |")  # fmt: skip
    for index, node in enumerate(result["nodes"]):
        print(f"| node-{index}: stop, answering, caught up, signing | {node['stop_s']:.1f} / "
              f"{node['serving_s']:.1f} / {node['caught_up_s']:.1f} / "
              f"{node['signing_s']:.1f} s |")  # fmt: skip
