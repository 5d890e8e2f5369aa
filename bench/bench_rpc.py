"""Benchmark the node over JSON-RPC, as a client sees it, next to Hardhat 2 and eth-tester.

Run by hand: ``.venv/bin/python bench/bench_rpc.py [--quick] [--rounds R] [--pipelined N]
[--sequential N] [--tester-txs N] [--calls N] [--log-events N] [--profile]``.

One run starts a lianxin dev node as a real process (``lianxin init --dev`` in a temporary
folder, then ``python -m node.daemon``), a Hardhat 2.29.1 node (installed on demand under
``bench/.peers/``) and eth-tester in process, deploys the same ``Anchor`` contract on each and
calls ``anchor(bytes32)`` (one fresh SSTORE, one counter update, one event):

- pipelined: send N transactions as fast as one client can, then wait for every receipt;
- sequential: send one, wait for its receipt, send the next.

Clients, the same on every system that has the path:

- lean raw: one keep-alive ``http.client`` connection, ``eth_sendRawTransaction`` of
  transactions signed before the clock starts (lianxin: SM2 via the SDK; Hardhat: its first
  dev key via eth_account, legacy transactions with explicit nonces), then
  ``eth_getTransactionReceipt`` — the client PEERS.md's peer figures come from;
- web3 raw: the same pre-signed transactions through ``w3.eth.send_raw_transaction``;
- web3 transact: ``contract.functions.anchor(root).transact()``; on lianxin the SDK signs with
  SM2 in the middleware (``sdk.web3_integration.lianxin_web3``), on Hardhat the node signs for
  its unlocked dev account (``eth_sendTransaction``), on eth-tester likewise.

Both web3 clients cache ``eth_chainId`` (see PEERS.md) and pass an explicit gas limit. A
transaction's latency is from just before its send until its receipt was read.

Then ``eth_call`` of ``Anchor.total()`` per second, and ``eth_getLogs`` after 100,000 anchor
events (sent pipelined, 500 per block on both nodes: Hardhat's automine is switched off and
``evm_mine`` called per 500). If lianxin is slower than Hardhat in either mode (or with
``--profile``), the node process is sampled with py-spy during a pipelined run and the time is
split by component.

Prints tables of medians and writes ``bench/results/rpc.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
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
from eth_utils import keccak, to_checksum_address  # noqa: E402

from contracts.artifacts import load_artifact  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "rpc.json"
ANCHOR_SELECTOR = keccak(text="anchor(bytes32)")[:4]
TOTAL_SELECTOR = keccak(text="total()")[:4]
ANCHORED_TOPIC = "0x" + keccak(text="Anchored(bytes32,address,uint256)").hex()
ANCHOR_GAS = 100_000
DEPLOY_GAS = 3_000_000
HARDHAT_GAS_PRICE = 10**10
BATCH = 100
"""Calls per JSON-RPC batch when filling a chain (the node's default max_batch)."""
BLOCK_TXS = 500
FILL_WINDOW_TXS = 5_000
"""Most fill transactions sent but not yet committed (the node's mempool holds 10,000)."""
MARKED_ROOT = b"\x5a" * 32
"""Anchored once every MARKED_EVERY fill transactions: the value the topic query looks for."""
MARKED_EVERY = 100
RECEIPT_POLL_S = 0.002
SIGN_WINDOW = 900
"""Blocks a signed transaction stays valid for (the node admits at most 1,000): a pipelined
round of N transactions may take up to N blocks when the node commits as they arrive."""


def anchor_data(root: bytes) -> bytes:
    """Call data of ``anchor(root)``."""
    return ANCHOR_SELECTOR + root


def fresh_roots(count: int) -> list[bytes]:
    """``count`` random 32-byte roots."""
    return [os.urandom(32) for _ in range(count)]


def fill_roots(count: int) -> list[bytes]:
    """Roots of a fill: random, with MARKED_ROOT every MARKED_EVERY transactions."""
    return [MARKED_ROOT if index % MARKED_EVERY == 0 else os.urandom(32) for index in range(count)]


# -- lianxin ---------------------------------------------------------------------------------


class LianxinSigner:
    """Signs anchor transactions for a lianxin node with an SM2 dev account via the SDK."""

    def __init__(self, client: peers.RpcClient, account: Any) -> None:
        """``account``: an ``sdk.account.Sm2Account`` holding the deployer and sender roles."""
        self.client = client
        self.account = account
        self.chain_id = int(client.call("eth_chainId"), 16)

    def sign(self, to: bytes | None, data: bytes, gas_limit: int, height: int) -> str:
        """The hex raw transaction, valid for the SDK's default window above ``height``."""
        from sdk.transactions import block_limit_for, build_transaction, encode_raw

        tx = build_transaction(
            chain_id=self.chain_id,
            to=to,
            data=data,
            gas_limit=gas_limit,
            block_limit=block_limit_for(height, SIGN_WINDOW),
        )
        return encode_raw(self.account.sign_transaction(tx))

    def sign_anchors(self, anchor: bytes, roots: Sequence[bytes]) -> list[str]:
        """Raw ``anchor(root)`` transactions, one per root."""
        height = int(self.client.call("eth_blockNumber"), 16)
        return [self.sign(anchor, anchor_data(root), ANCHOR_GAS, height) for root in roots]

    def deploy(self, bytecode: bytes) -> str:
        """Deploy ``bytecode``; returns the contract's checksum address."""
        height = int(self.client.call("eth_blockNumber"), 16)
        tx_hash = self.client.call(
            "eth_sendRawTransaction", [self.sign(None, bytecode, DEPLOY_GAS, height)]
        )
        receipt = wait_receipt_lean(self.client, tx_hash)
        assert int(receipt["status"], 16) == 1, receipt
        return to_checksum_address(receipt["contractAddress"])


def wait_receipt_lean(client: peers.RpcClient, tx_hash: str, timeout_s: float = 120) -> Any:
    """Poll ``eth_getTransactionReceipt`` until the receipt exists (the lianxin node itself
    holds the answer for a pending transaction up to receipt_wait_ms)."""
    deadline = time.monotonic() + timeout_s
    while True:
        receipt = client.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return receipt
        if time.monotonic() > deadline:
            raise peers.PeerError(f"no receipt for {tx_hash} after {timeout_s} s")
        time.sleep(RECEIPT_POLL_S)


def fill_lianxin(
    client: peers.RpcClient,
    signer: LianxinSigner,
    anchor: bytes,
    roots: Sequence[bytes],
    on_progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> None:
    """Send one anchor transaction per root, signed in chunks of BLOCK_TXS and sent in
    JSON-RPC batches, keeping at most FILL_WINDOW_TXS uncommitted; returns once all are
    committed. ``on_progress(done)`` is called after every ``progress_every`` committed."""
    outstanding: list[tuple[int, str]] = []
    next_report = progress_every

    def settle(keep: int) -> None:
        nonlocal next_report
        while len(outstanding) > keep:
            end, last_hash = outstanding.pop(0)
            wait_receipt_lean(client, last_hash)
            while on_progress is not None and end >= next_report:
                on_progress(next_report)
                next_report += progress_every

    for start in range(0, len(roots), BLOCK_TXS):
        chunk = roots[start : start + BLOCK_TXS]
        raws = signer.sign_anchors(anchor, chunk)
        hashes: list[str] = []
        for offset in range(0, len(raws), BATCH):
            hashes += client.batch(
                "eth_sendRawTransaction", [[raw] for raw in raws[offset : offset + BATCH]]
            )
        outstanding.append((start + len(chunk), hashes[-1]))
        settle(FILL_WINDOW_TXS // BLOCK_TXS)
    settle(0)


# -- Hardhat ---------------------------------------------------------------------------------


class HardhatSigner:
    """Signs legacy anchor transactions with Hardhat's first dev key via eth_account."""

    def __init__(self, client: peers.RpcClient) -> None:
        """Reads the account's next nonce from the node at each signing."""
        from eth_account import Account

        self.client = client
        self.account = Account.from_key(peers.HARDHAT_KEY)

    def sign_anchors(self, anchor: str, roots: Sequence[bytes]) -> list[str]:
        """Raw ``anchor(root)`` transactions with consecutive nonces from the pending one."""
        nonce = int(
            self.client.call("eth_getTransactionCount", [self.account.address, "pending"]), 16
        )
        raws = []
        for offset, root in enumerate(roots):
            signed = self.account.sign_transaction(
                {
                    "nonce": nonce + offset,
                    "to": anchor,
                    "data": "0x" + anchor_data(root).hex(),
                    "gas": ANCHOR_GAS,
                    "gasPrice": HARDHAT_GAS_PRICE,
                    "chainId": peers.HARDHAT_CHAIN_ID,
                }
            )
            raws.append("0x" + bytes(signed.raw_transaction).hex())
        return raws


def fill_hardhat(client: peers.RpcClient, sender: str, anchor: str, roots: Sequence[bytes]) -> None:
    """Send one anchor transaction per root from the unlocked ``sender``, BLOCK_TXS per
    block: automine off, ``eth_sendTransaction`` in batches, ``evm_mine`` until the chunk's
    last transaction is in a block."""
    client.call("evm_setAutomine", [False])
    try:
        for start in range(0, len(roots), BLOCK_TXS):
            chunk = roots[start : start + BLOCK_TXS]
            hashes: list[str] = []
            for offset in range(0, len(chunk), BATCH):
                hashes += client.batch(
                    "eth_sendTransaction",
                    [
                        [
                            {
                                "from": sender,
                                "to": anchor,
                                "data": "0x" + anchor_data(root).hex(),
                                "gas": hex(ANCHOR_GAS),
                                "gasPrice": hex(HARDHAT_GAS_PRICE),
                            }
                        ]
                        for root in chunk[offset : offset + BATCH]
                    ],
                )
            while True:
                client.call("evm_mine")
                if client.call("eth_getTransactionReceipt", [hashes[-1]]) is not None:
                    break
    finally:
        client.call("evm_setAutomine", [True])


# -- the systems -----------------------------------------------------------------------------


def cached_chain_id_provider(url: str) -> Any:
    """An HTTPProvider that asks ``eth_chainId`` once, as ``lianxin_web3`` does."""
    from web3 import HTTPProvider
    from web3.types import RPCEndpoint

    return HTTPProvider(
        url,
        request_kwargs={"timeout": 60},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
        request_cache_validation_threshold=None,
    )


@dataclass
class System:
    """One node under test, with every client path it supports."""

    name: str
    w3: Any
    contract: Any
    lean: peers.RpcClient | None = None
    sign_anchors: Callable[[Sequence[bytes]], list[str]] | None = None
    transact_params: dict[str, Any] = field(default_factory=dict)


def lianxin_system(node: peers.LianxinNode, name: str = "lianxin") -> tuple[System, LianxinSigner]:
    """The lianxin node with the lean client, web3 via the SDK, and the Anchor contract."""
    from sdk.web3_integration import lianxin_web3

    account = node.account("admin")
    lean = peers.RpcClient(node.port)
    signer = LianxinSigner(lean, account)
    artifact = load_artifact("Anchor")
    address = signer.deploy(artifact.bytecode)
    w3 = lianxin_web3(node.url, account, request_timeout=60)
    contract = w3.eth.contract(address=address, abi=list(artifact.abi))
    anchor = bytes.fromhex(address[2:])
    system = System(
        name=name,
        w3=w3,
        contract=contract,
        lean=lean,
        sign_anchors=lambda roots: signer.sign_anchors(anchor, roots),
        transact_params={"gas": ANCHOR_GAS},
    )
    return system, signer


def hardhat_system(node: peers.HardhatNode) -> tuple[System, str]:
    """The Hardhat node with the lean client, plain web3, and the Anchor contract; also
    returns its first dev account."""
    from web3 import Web3

    artifact = load_artifact("Anchor")
    w3 = Web3(cached_chain_id_provider(node.url))
    sender = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    deploy_hash = factory.constructor().transact({"from": sender, "gas": DEPLOY_GAS})
    address = w3.eth.wait_for_transaction_receipt(deploy_hash)["contractAddress"]
    lean = peers.RpcClient(node.port)
    signer = HardhatSigner(lean)
    assert signer.account.address == sender
    system = System(
        name="hardhat",
        w3=w3,
        contract=w3.eth.contract(address=address, abi=list(artifact.abi)),
        lean=lean,
        sign_anchors=lambda roots: signer.sign_anchors(address, roots),
        transact_params={"from": sender, "gas": ANCHOR_GAS, "gasPrice": HARDHAT_GAS_PRICE},
    )
    return system, sender


def eth_tester_system() -> System:
    """A fresh eth-tester chain with Anchor deployed (web3 transact path only)."""
    artifact = load_artifact("Anchor")
    w3 = peers.eth_tester_web3()
    sender = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    deploy_hash = factory.constructor().transact({"from": sender, "gas": DEPLOY_GAS})
    address = w3.eth.wait_for_transaction_receipt(deploy_hash)["contractAddress"]
    return System(
        name="eth-tester",
        w3=w3,
        contract=w3.eth.contract(address=address, abi=list(artifact.abi)),
        transact_params={"from": sender, "gas": ANCHOR_GAS},
    )


# -- measurement -----------------------------------------------------------------------------


@dataclass
class Round:
    """One timed round."""

    seconds: float
    """Wall time from the first send to the last receipt."""
    latencies: list[float]
    """Per transaction: seconds from just before its send until its receipt was read."""
    node_cpu_s: float | None = None
    """CPU time (user + system) the node process used during the round."""
    blocks: int | None = None
    """Blocks the node made during the round (lean client paths)."""
    load_1min: float | None = None
    """The machine's 1-minute load average as the round started."""


def timed_round(
    items: Sequence[Any],
    send: Callable[[Any], Any],
    wait: Callable[[Any], bool],
    pipelined: bool,
) -> Round:
    """Send every item (pipelined: all, then wait for each; else send + wait each)."""
    latencies: list[float] = []
    started = time.perf_counter()
    if pipelined:
        sent: list[tuple[float, Any]] = []
        for item in items:
            sent.append((time.perf_counter(), send(item)))
        for sent_at, tx_hash in sent:
            assert wait(tx_hash), f"transaction {tx_hash!r} failed"
            latencies.append(time.perf_counter() - sent_at)
    else:
        for item in items:
            sent_at = time.perf_counter()
            assert wait(send(item)), "transaction failed"
            latencies.append(time.perf_counter() - sent_at)
    return Round(time.perf_counter() - started, latencies)


def lean_raw_round(system: System, count: int, pipelined: bool) -> Round:
    """Transactions signed before the clock starts, over the lean client."""
    assert system.sign_anchors is not None
    return send_and_wait(system, system.sign_anchors(fresh_roots(count)), pipelined)


def send_and_wait(system: System, raws: Sequence[str], pipelined: bool) -> Round:
    """A lean round of already signed transactions; each must succeed."""
    lean = system.lean
    assert lean is not None
    return timed_round(
        raws,
        lambda raw: lean.call("eth_sendRawTransaction", [raw]),
        lambda tx_hash: int(wait_receipt_lean(lean, tx_hash)["status"], 16) == 1,
        pipelined,
    )


def web3_wait(system: System) -> Callable[[Any], bool]:
    """web3's receipt wait, polling every 5 ms."""
    return lambda tx_hash: (
        system.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.005)[
            "status"
        ]
        == 1
    )


def web3_raw_round(system: System, count: int, pipelined: bool) -> Round:
    """Pre-signed transactions through ``w3.eth.send_raw_transaction``."""
    assert system.sign_anchors is not None
    raws = system.sign_anchors(fresh_roots(count))
    return timed_round(raws, system.w3.eth.send_raw_transaction, web3_wait(system), pipelined)


def web3_transact_round(system: System, count: int, pipelined: bool) -> Round:
    """``contract.functions.anchor(root).transact()``, signing included."""
    anchor = system.contract.functions.anchor
    params = system.transact_params
    return timed_round(
        fresh_roots(count),
        lambda root: anchor(root).transact(params),
        web3_wait(system),
        pipelined,
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def summarize(system: str, client: str, mode: str, count: int, rounds: list[Round]) -> dict:
    """Medians over rounds of tx/s, p50 and p99 latency."""
    return {
        "system": system,
        "client": client,
        "mode": mode,
        "txs_per_round": count,
        "rounds": len(rounds),
        "tx_per_s": statistics.median(count / r.seconds for r in rounds),
        "p50_ms": statistics.median(percentile(r.latencies, 0.50) * 1000 for r in rounds),
        "p99_ms": statistics.median(percentile(r.latencies, 0.99) * 1000 for r in rounds),
        "node_cpu_ms_per_tx": (
            statistics.median(r.node_cpu_s * 1000 / count for r in rounds if r.node_cpu_s)
            if all(r.node_cpu_s is not None for r in rounds)
            else None
        ),
        "load_1min_per_round": [r.load_1min for r in rounds],
        "node_cpu_ms_per_tx_per_round": [
            None if r.node_cpu_s is None else r.node_cpu_s * 1000 / count for r in rounds
        ],
        "blocks_per_round": (
            [r.blocks for r in rounds] if all(r.blocks is not None for r in rounds) else None
        ),
    }


def block_number(system: System) -> int | None:
    """The node's head height, over the lean client (``None`` without one)."""
    return None if system.lean is None else int(system.lean.call("eth_blockNumber"), 16)


def transaction_rows(
    lianxin: System,
    hardhat: System | None,
    args: argparse.Namespace,
    bases: Sequence[System] = (),
    pids: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Every client path (of ``args.clients``) on every system, both modes, rounds
    interleaved; ``bases`` are lianxin nodes from other source trees. ``pids``
    (system name -> node process) adds the node's CPU time per transaction, and the
    blocks each round made (the block count decides a pipelined round's fixed costs)."""
    pids = pids or {}
    rows = []
    for mode, count, tester_count in (
        ("pipelined", args.pipelined, args.tester_txs),
        ("sequential", args.sequential, args.tester_txs),
    ):
        if count <= 0:
            continue
        pipelined = mode == "pipelined"
        paths: list[tuple[str, str, int, Callable[[], Round]]] = []
        rounds = {"lean raw": lean_raw_round, "web3 raw": web3_raw_round}
        rounds["web3 transact"] = web3_transact_round
        systems = [*bases, lianxin, *([] if hardhat is None else [hardhat])]
        by_name = {system.name: system for system in systems}
        for system in systems:
            paths += [
                (system.name, client, count, _bind(rounds[client], system, count, pipelined))
                for client in args.clients
            ]
        if tester_count > 0:
            paths.append(
                (
                    "eth-tester",
                    "web3 transact",
                    tester_count,
                    lambda c=tester_count, p=pipelined: web3_transact_round(
                        eth_tester_system(), c, p
                    ),
                )
            )
        timings: dict[tuple[str, str], list[Round]] = {(s, c): [] for s, c, _, _ in paths}
        for round_index in range(args.rounds):
            for system_name, client, path_count, run in paths:
                pid = pids.get(system_name)
                measured = by_name.get(system_name)
                height = None if measured is None else block_number(measured)
                load = peers.load_average()[0]
                cpu_before = None if pid is None else peers.cpu_seconds(pid)
                last = run()
                last.load_1min = load
                if pid is not None and cpu_before is not None:
                    last.node_cpu_s = peers.cpu_seconds(pid) - cpu_before
                if measured is not None and height is not None:
                    last.blocks = (block_number(measured) or 0) - height
                timings[(system_name, client)].append(last)
                blocks = "" if last.blocks is None else f", {last.blocks} blocks"
                if last.node_cpu_s is not None:
                    blocks += f", node CPU {last.node_cpu_s * 1000 / path_count:.2f} ms/tx"
                print(
                    f"    {system_name} {client}: {last.seconds:.1f} s{blocks}, load {load:.1f}",
                    flush=True,
                )
            print(f"  {mode}: round {round_index + 1}/{args.rounds} done", flush=True)
        for system_name, client, path_count, _ in paths:
            rows.append(
                summarize(system_name, client, mode, path_count, timings[(system_name, client)])
            )
    return rows


def _bind(function: Callable[..., Round], *args: Any) -> Callable[[], Round]:
    return lambda: function(*args)


def call_rows(
    lianxin: System,
    hardhat: System | None,
    args: argparse.Namespace,
    bases: Sequence[System] = (),
    pids: dict[str, int] | None = None,
) -> list[dict]:
    """``eth_call`` of ``Anchor.total()`` per second: lean client on both nodes, web3's
    ``.call()`` on all three systems (and on ``bases``, lianxin nodes from other trees).
    ``pids`` (system name -> node process) adds the node's CPU time per call."""
    pids = pids or {}
    tester = eth_tester_system() if args.tester_calls > 0 else None
    paths: list[tuple[str, str, int, Callable[[], Any]]] = []
    nodes = (*bases, lianxin, *(() if hardhat is None else (hardhat,)))
    for system in nodes:
        lean = system.lean
        assert lean is not None
        request = [{"to": system.contract.address, "data": "0x" + TOTAL_SELECTOR.hex()}, "latest"]
        paths.append(
            (system.name, "lean", args.calls, lambda c=lean, r=request: c.call("eth_call", r))
        )
    for system in nodes if tester is None else (*nodes, tester):
        count = args.calls if system is not tester else args.tester_calls
        paths.append((system.name, "web3", count, system.contract.functions.total().call))
    timings: dict[tuple[str, str], list[float]] = {(s, c): [] for s, c, _, _ in paths}
    cpu_us: dict[tuple[str, str], list[float]] = {(s, c): [] for s, c, _, _ in paths}
    for _ in range(args.rounds):
        for system_name, client, count, run in paths:
            pid = pids.get(system_name)
            cpu_before = None if pid is None else peers.cpu_seconds(pid)
            started = time.perf_counter()
            for _ in range(count):
                run()
            timings[(system_name, client)].append(time.perf_counter() - started)
            if pid is not None and cpu_before is not None:
                used = peers.cpu_seconds(pid) - cpu_before
                cpu_us[(system_name, client)].append(used * 1e6 / count)
    return [
        {
            "system": system_name,
            "client": client,
            "calls_per_round": count,
            "rounds": args.rounds,
            "calls_per_s": statistics.median(count / s for s in timings[(system_name, client)]),
            "node_cpu_us_per_call": (
                statistics.median(cpu_us[(system_name, client)])
                if cpu_us[(system_name, client)]
                else None
            ),
        }
        for system_name, client, count, _ in paths
    ]


# -- eth_getLogs -----------------------------------------------------------------------------


def log_queries(anchor: str, head: int, fill_first: int) -> list[tuple[str, dict[str, Any]]]:
    """The eth_getLogs filters measured, by name."""
    return [
        ("address, whole chain", {"address": anchor, "fromBlock": "0x0", "toBlock": "latest"}),
        (
            "one topic value, whole chain",
            {
                "fromBlock": "0x0",
                "toBlock": "latest",
                "topics": [ANCHORED_TOPIC, "0x" + MARKED_ROOT.hex()],
            },
        ),
        (
            "address, 1,000-block range",
            {"address": anchor, "fromBlock": hex(max(0, head - 999)), "toBlock": hex(head)},
        ),
        (
            "address, the fill's blocks",
            {"address": anchor, "fromBlock": hex(fill_first), "toBlock": hex(head)},
        ),
        (
            "address, 10 fill blocks",
            {"address": anchor, "fromBlock": hex(fill_first), "toBlock": hex(fill_first + 9)},
        ),
    ]


def time_log_query(client: peers.RpcClient, criteria: dict, rounds: int) -> dict[str, Any]:
    """Median ms of one eth_getLogs call (request, node work, transfer, JSON decode)."""
    timings: list[float] = []
    outcome: str = ""
    for _ in range(rounds):
        started = time.perf_counter()
        try:
            outcome = f"{len(client.call('eth_getLogs', [criteria])):,} logs"
        except peers.RpcFailure as exc:
            outcome = f"error {exc.error.get('code')}: {exc.error.get('message')}"
        timings.append(time.perf_counter() - started)
    return {"median_ms": statistics.median(timings) * 1000, "result": outcome}


def log_rows(
    lianxin: System, signer: LianxinSigner, hardhat: System, sender: str, args: argparse.Namespace
) -> tuple[list[dict], dict]:
    """Fill both nodes with ``args.log_events`` anchor events, then time the queries."""
    assert lianxin.lean is not None and hardhat.lean is not None
    roots = fill_roots(args.log_events)
    fill: dict[str, Any] = {}
    firsts: dict[str, int] = {}
    for system, run in (
        (
            lianxin,
            lambda: fill_lianxin(
                lianxin.lean, signer, bytes.fromhex(lianxin.contract.address[2:]), roots
            ),
        ),
        (hardhat, lambda: fill_hardhat(hardhat.lean, sender, hardhat.contract.address, roots)),
    ):
        assert system.lean is not None
        firsts[system.name] = int(system.lean.call("eth_blockNumber"), 16) + 1
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        head = int(system.lean.call("eth_blockNumber"), 16)
        fill[system.name] = {
            "events": len(roots),
            "seconds": seconds,
            "tx_per_s": len(roots) / seconds,
            "blocks": head - firsts[system.name] + 1,
            "head": head,
        }
        print(f"  filled {system.name}: {len(roots):,} txs in {seconds:.1f} s", flush=True)
    rows = []
    queries = {
        system.name: log_queries(
            system.contract.address, fill[system.name]["head"], firsts[system.name]
        )
        for system in (lianxin, hardhat)
    }
    for index, (name, _) in enumerate(queries["lianxin"]):
        row: dict[str, Any] = {"query": name}
        for system in (lianxin, hardhat):
            assert system.lean is not None
            criteria = queries[system.name][index][1]
            row[system.name] = time_log_query(system.lean, criteria, args.log_rounds)
        rows.append(row)
    return rows, fill


# -- profile ---------------------------------------------------------------------------------

IDLE = "waiting (lock, queue, selector)"
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (IDLE, ("threading.py", "queue.py", "selectors.py", "(time.sleep)")),
    ("SM2/SM3 crypto", ("chain/crypto/",)),
    ("JSON encode/decode", ("json/", "node/rpc/format.py", "node/rpc/params.py")),
    ("RLP / canonical encoding", ("/rlp/", "chain/encoding.py", "chain/types.py")),
    ("LMDB storage + fsync", ("node/storage/", "node/log_index.py", "lmdb")),
    ("EVM execution (py-evm)", ("/eth/", "/trie/", "chain/execution/", "eth_utils", "eth_hash")),
    ("Merkle roots", ("chain/merkle.py",)),
    ("mempool + tx validation", ("node/mempool.py", "chain/validation.py")),
    ("aiohttp + asyncio", ("aiohttp", "asyncio/", "multidict", "yarl")),
    ("ledger / producer glue", ("node/ledger.py", "node/producer.py", "node/chain_state.py")),
    ("RPC methods", ("node/rpc/",)),
)
"""Components of the node, each recognised by markers in a py-spy frame (function + path).
A sample belongs to the innermost frame that carries a marker; the idle markers match a
thread parked on a lock, a queue or the event loop's selector (in a CPU profile: threads
py-spy saw runnable there, i.e. handing over the GIL or waking up)."""


C_EVENT_LOOP = "event loop in C (uvloop: polling, its own I/O)"
"""Samples whose innermost Python frame is asyncio's runner: the node runs uvloop, whose loop
is C code under it, so py-spy cannot tell its polling (idle) from its socket work there."""


def classify_stack(frames: Sequence[str]) -> str:
    """The category of the innermost frame that belongs to a known component."""
    if frames and "asyncio/runners.py" in frames[-1]:
        return C_EVENT_LOOP
    for frame in reversed(frames):
        for category, markers in PROFILE_CATEGORIES:
            if any(marker in frame for marker in markers):
                return category
    return "other"


def _percent(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {name: 100 * n / total for name, n in counts.most_common()} if total else {}


def profile_breakdown(raw_profile: str) -> dict[str, Any]:
    """Shares of samples by component, overall and per thread, from py-spy's
    ``--format raw --threads`` output."""
    shares: Counter[str] = Counter()
    by_thread: dict[str, Counter[str]] = {}
    unclassified: Counter[str] = Counter()
    for line in raw_profile.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        category = classify_stack(frames)
        shares[category] += count
        if category == "other":
            unclassified[frames[-1]] += count
        thread = next((frame for frame in frames if frame.startswith("thread")), "thread ?")
        name = thread.split("): ", 1)[-1]
        by_thread.setdefault(name, Counter())[category] += count
    return {
        "samples": sum(shares.values()),
        "percent": _percent(shares),
        "samples_by_thread": {name: sum(c.values()) for name, c in by_thread.items()},
        "percent_by_thread": {name: _percent(c) for name, c in by_thread.items()},
        "top_unclassified_frames": dict(unclassified.most_common(8)),
    }


def record_profile(
    py_spy: Path, pid: int, fmt: str, out: Path, idle: bool, workload: Callable[[], Any]
) -> None:
    """Run ``workload`` while py-spy samples process ``pid`` into ``out``."""
    command = [str(py_spy), "record", "--pid", str(pid), "--format", fmt, "--output", str(out)]
    command += ["--rate", "250", "--nonblocking", "--threads"] + (["--idle"] if idle else [])
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        workload()
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
    if not out.exists():
        raise peers.PeerError(f"py-spy wrote no {out.name} (ptrace not permitted?)")


def profile_node(
    node: peers.LianxinNode,
    lianxin: System,
    pipelined_count: int,
    sequential_count: int,
    out: Path,
) -> dict[str, Any]:
    """Sample the node with py-spy: CPU (active samples) during pipelined lean raw rounds,
    plus a flame graph; and wall time (idle included) during a sequential lean raw round,
    where the node waits on disk and wake-ups as much as it computes. The samples go next to
    ``out``: ``<stem>_profile.txt``, ``<stem>_profile.svg``, ``<stem>_profile_sequential.txt``."""
    py_spy = peers.ensure_py_spy()
    cpu_raw = out.with_name(f"{out.stem}_profile.txt")
    flamegraph = out.with_name(f"{out.stem}_profile.svg")
    wall_raw = out.with_name(f"{out.stem}_profile_sequential.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    assert lianxin.sign_anchors is not None
    sign = lianxin.sign_anchors
    # Signed just before each round: a block_limit is only valid for a window of blocks.
    record_profile(
        py_spy,
        node.process.pid,
        "raw",
        cpu_raw,
        False,
        lambda: [
            send_and_wait(lianxin, sign(fresh_roots(pipelined_count)), True) for _ in range(2)
        ],
    )
    record_profile(
        py_spy,
        node.process.pid,
        "flamegraph",
        flamegraph,
        False,
        lambda: send_and_wait(lianxin, sign(fresh_roots(pipelined_count)), True),
    )
    record_profile(
        py_spy,
        node.process.pid,
        "raw",
        wall_raw,
        True,
        lambda: send_and_wait(lianxin, sign(fresh_roots(sequential_count)), False),
    )
    cpu = profile_breakdown(cpu_raw.read_text(encoding="utf-8"))
    cpu["workload"] = f"CPU: 2 pipelined lean raw rounds of {pipelined_count} txs"
    cpu["flamegraph"] = str(flamegraph)
    wall = profile_breakdown(wall_raw.read_text(encoding="utf-8"))
    wall["workload"] = (
        f"wall time, idle included: 1 sequential lean raw round of {sequential_count}"
    )
    return {"pipelined_cpu": cpu, "sequential_wall": wall}


# -- report ----------------------------------------------------------------------------------


def ratio(ours: float, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def print_transactions(rows: list[dict]) -> None:
    by_key = {(r["system"], r["client"], r["mode"]): r for r in rows}
    print(
        f"\n{'mode':<11} {'system':<12} {'client':<14} {'N':>5} {'tx/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'vs hardhat':>11} {'node CPU ms/tx':>15} "
        f"{'blocks min/med/max':>19}"
    )
    for row in rows:
        peer = by_key.get(("hardhat", row["client"], row["mode"]))
        row["ratio_vs_hardhat"] = row["tx_per_s"] / peer["tx_per_s"] if peer else None
        cpu = row.get("node_cpu_ms_per_tx")
        blocks = row.get("blocks_per_round")
        spread = "-" if not blocks else f"{min(blocks)}/{statistics.median(blocks):g}/{max(blocks)}"
        print(
            f"{row['mode']:<11} {row['system']:<12} {row['client']:<14} "
            f"{row['txs_per_round']:>5} {row['tx_per_s']:>8.0f} {row['p50_ms']:>8.1f} "
            f"{row['p99_ms']:>8.1f} {ratio(row['tx_per_s'], peer and peer['tx_per_s']):>11} "
            f"{'-' if cpu is None else f'{cpu:.2f}':>15} {spread:>19}"
        )


def print_calls(rows: list[dict]) -> None:
    by_key = {(r["system"], r["client"]): r for r in rows}
    header = f"{'eth_call Anchor.total()':<24} {'client':<7} {'N':>5} {'calls/s':>9}"
    print(f"\n{header} {'vs hardhat':>11} {'node CPU us/call':>17}")
    for row in rows:
        peer = by_key.get(("hardhat", row["client"]))
        row["ratio_vs_hardhat"] = row["calls_per_s"] / peer["calls_per_s"] if peer else None
        cpu = row.get("node_cpu_us_per_call")
        print(
            f"{row['system']:<24} {row['client']:<7} {row['calls_per_round']:>5} "
            f"{row['calls_per_s']:>9.0f} "
            f"{ratio(row['calls_per_s'], peer and peer['calls_per_s']):>11} "
            f"{'-' if cpu is None else f'{cpu:.0f}':>17}"
        )


def print_logs(rows: list[dict], fill: dict) -> None:
    for name, info in fill.items():
        print(
            f"\n{name}: {info['events']:,} anchor txs filled in {info['seconds']:.1f} s "
            f"({info['tx_per_s']:.0f} tx/s, {info['blocks']} blocks, head {info['head']})"
        )
    print(
        f"\n{'eth_getLogs query':<30} {'lianxin ms':>11} {'hardhat ms':>11} {'ratio':>7}  results"
    )
    for row in rows:
        ours, theirs = row["lianxin"], row["hardhat"]
        row["hardhat_ms_over_lianxin_ms"] = theirs["median_ms"] / ours["median_ms"]
        print(
            f"{row['query']:<30} {ours['median_ms']:>11.1f} {theirs['median_ms']:>11.1f} "
            f"{row['hardhat_ms_over_lianxin_ms']:>6.2f}x  "
            f"lianxin {ours['result']}; hardhat {theirs['result']}"
        )


def print_profile(profile: dict) -> None:
    cpu, wall = profile["pipelined_cpu"], profile["sequential_wall"]
    print(f"\nnode profile, {cpu['workload']} ({cpu['samples']} active samples)")
    for name, share in cpu["percent"].items():
        print(f"  {name:<28} {share:>5.1f} %")
    print(
        "  samples per thread: "
        + ", ".join(f"{n} {c}" for n, c in cpu["samples_by_thread"].items())
    )
    print(f"  flamegraph: {cpu['flamegraph']}")
    print_threads(cpu, "CPU, per thread, % of its active samples")
    print(f"\nnode profile, {wall['workload']}")
    print_threads(wall, "per thread, % of its wall time")


def print_threads(breakdown: dict, title: str) -> None:
    print(f"  {title}:")
    for thread in ("lianxin-writer_0", "MainThread"):
        shares = breakdown["percent_by_thread"].get(thread, {})
        print(f"    {thread}: " + ", ".join(f"{n} {v:.1f} %" for n, v in shares.items()))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small N, 2 rounds, no profile unless --profile"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pipelined", type=int, default=1_000, help="txs per pipelined round")
    parser.add_argument("--sequential", type=int, default=200, help="txs per sequential round")
    parser.add_argument(
        "--tester-txs", type=int, default=100, help="eth-tester txs per round (0: skip)"
    )
    parser.add_argument("--calls", type=int, default=2_000, help="eth_calls per round")
    parser.add_argument("--tester-calls", type=int, default=200, help="(0: skip eth-tester)")
    parser.add_argument(
        "--log-events", type=int, default=100_000, help="events filled for eth_getLogs (0: skip)"
    )
    parser.add_argument("--log-rounds", type=int, default=5)
    parser.add_argument(
        "--no-hardhat",
        action="store_true",
        help="leave Hardhat out (lianxin nodes only, e.g. with --baseline-root; no eth_getLogs)",
    )
    parser.add_argument("--profile", action="store_true", help="profile the node in any case")
    parser.add_argument("--no-profile", action="store_true", help="never profile")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--clients",
        default="lean raw,web3 raw,web3 transact",
        help="comma-separated client paths to time (default: all three)",
    )
    parser.add_argument(
        "--baseline-root",
        type=Path,
        action="append",
        default=[],
        help="also run a lianxin node from this source tree (e.g. `git archive` of an "
        "earlier commit), as system lianxin-<folder name>, in the same run; repeatable",
    )
    args = parser.parse_args(argv)
    args.clients = [client.strip() for client in args.clients.split(",") if client.strip()]
    if args.quick:
        args.rounds, args.pipelined, args.sequential, args.tester_txs = 2, 200, 50, 30
        args.calls, args.tester_calls, args.log_events, args.log_rounds = 300, 50, 5_000, 2
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_at_start = peers.load_average()
    print("load average at start: " + " ".join(f"{value:.2f}" for value in load_at_start))
    report: dict[str, Any] = {
        "benchmark": "rpc",
        "workload": "Anchor.anchor(bytes32): 2 SSTORE + 1 LOG3",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "args": {
            name: str(value) if isinstance(value, Path) else value
            for name, value in vars(args).items()
        },
        "hardhat_version": peers.HARDHAT_VERSION,
    }
    with (
        peers.terminate_on_sigterm(),
        peers.scratch_dir("lianxin-bench-rpc-") as workdir,
        peers.ProcessGroup() as group,
    ):
        node = peers.start_lianxin(group, workdir)
        base_nodes = {
            f"lianxin-{root.name}": peers.start_lianxin(
                group, workdir, source=root, name=f"base-{root.name}"
            )
            for root in args.baseline_root
        }
        hardhat_node = None if args.no_hardhat else peers.start_hardhat(group, workdir)
        lianxin, signer = lianxin_system(node)
        bases = [lianxin_system(base, name)[0] for name, base in base_nodes.items()]
        hardhat, sender = (None, "") if hardhat_node is None else hardhat_system(hardhat_node)

        print("transactions ...", flush=True)
        pids = {"lianxin": node.process.pid}
        if hardhat_node is not None:
            pids["hardhat"] = peers.node_pid(hardhat_node.process)
        pids.update({name: base.process.pid for name, base in base_nodes.items()})
        report["transactions"] = tx_rows = transaction_rows(lianxin, hardhat, args, bases, pids)
        print_transactions(tx_rows)

        if args.calls > 0:
            print("\neth_call ...", flush=True)
            report["eth_call"] = calls = call_rows(lianxin, hardhat, args, bases, pids)
            print_calls(calls)

        missed = [
            f"{row['mode']} {row['client']}: {row['ratio_vs_hardhat']:.2f}x"
            for row in tx_rows
            if row["system"] == "lianxin"
            and row["ratio_vs_hardhat"] is not None
            and row["ratio_vs_hardhat"] < 1
        ]
        report["hardhat_goal_missed"] = missed
        if ((missed and not args.quick) or args.profile) and not args.no_profile:
            print("\nprofiling the node with py-spy ...", flush=True)
            try:
                profile = profile_node(node, lianxin, args.pipelined, args.sequential, args.out)
            except (OSError, subprocess.SubprocessError, peers.PeerError) as exc:
                profile = {"error": str(exc)}
                print(f"profile failed: {exc}")
            else:
                print_profile(profile)
            report["profile"] = profile
            for (name, base_node), base in zip(base_nodes.items(), bases, strict=True):
                print(f"\nprofiling the {name} node with py-spy ...", flush=True)
                base_out = args.out.with_name(f"{args.out.stem}_{name}{args.out.suffix}")
                try:
                    base_profile = profile_node(
                        base_node, base, args.pipelined, args.sequential, base_out
                    )
                except (OSError, subprocess.SubprocessError, peers.PeerError) as exc:
                    base_profile = {"error": str(exc)}
                    print(f"profile failed: {exc}")
                else:
                    print_profile(base_profile)
                report[f"profile_{name}"] = base_profile

        if args.log_events > 0 and hardhat is not None:
            print(f"\neth_getLogs: filling {args.log_events:,} events on each node ...", flush=True)
            log_results, fill = log_rows(lianxin, signer, hardhat, sender, args)
            report["eth_getLogs"] = {"fill": fill, "queries": log_results}
            print_logs(log_results, fill)
        report["rss_mb_at_end"] = {"lianxin": peers.rss_mb(node.process.pid)}
        if hardhat_node is not None:
            report["rss_mb_at_end"]["hardhat"] = peers.rss_mb(peers.node_pid(hardhat_node.process))
        for system in (lianxin, *bases, *(() if hardhat is None else (hardhat,))):
            assert system.lean is not None
            system.lean.close()

    if hardhat is not None:
        print("\ngoal (lianxin >= 1x Hardhat, lean raw):", end=" ")
        lean = {
            r["mode"]: r for r in tx_rows if r["system"] == "lianxin" and r["client"] == "lean raw"
        }
        print(", ".join(f"{mode} {row['ratio_vs_hardhat']:.2f}x" for mode, row in lean.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
