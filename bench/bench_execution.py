"""Benchmark contract execution: ``Anchor.anchor(bytes32)`` (one fresh SSTORE, one counter
update, one event) through ``chain.execution.execute_block``, next to eth-tester's py-evm
backend driven through web3.py as a user would (send a transaction, wait for its receipt).

Run by hand: ``.venv/bin/python bench/bench_execution.py [--block-size N] [--tester-txs N]
[--rounds R]``. Needs ``web3`` and ``eth-tester[py-evm]`` for the comparison column.

- lianxin, execution: ``execute_block`` on a block of pre-signed transactions, each round a new
  block on top of the previous one (writes fed back into a dict-backed store).
- lianxin, verify + execution: the same plus SM2 verification of every signature
  (one process, ``chain.crypto.verify_batch(workers=1)``).
- eth-tester: a fresh ``EthereumTesterProvider`` per round, Anchor deployed, then
  ``anchor(root).transact()`` + ``wait_for_transaction_receipt`` one by one (it mines a block
  per transaction and slows down as its chain grows, so its rounds stay short).

Prints a table of medians and writes ``bench/results/execution.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from eth_utils import keccak  # noqa: E402

from chain.crypto import PrivateKey, verify_batch  # noqa: E402
from chain.execution import BlockContext, execute_block, genesis_state  # noqa: E402
from chain.primitives import Address, Hash32  # noqa: E402
from chain.types import Transaction  # noqa: E402
from contracts.artifacts import load_artifact  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "execution.json"
CHAIN_ID = 1
ANCHOR_SELECTOR = keccak(text="anchor(bytes32)")[:4]
ANCHOR_GAS = 100_000


class Chain:
    """A dict-backed state store and a signing key."""

    def __init__(self) -> None:
        genesis = genesis_state({})
        self.store: dict[bytes, bytes] = dict(genesis.writes)
        self.root = genesis.state_root
        self.height = 0
        self.key = PrivateKey.generate()

    def context(self) -> BlockContext:
        return BlockContext(
            chain_id=CHAIN_ID,
            height=self.height + 1,
            timestamp_ms=1_700_000_000_000 + self.height,
            proposer=Address(bytes(20)),
        )

    def sign(self, to: Address | None, data: bytes, gas_limit: int) -> Transaction:
        unsigned = Transaction(
            chain_id=CHAIN_ID,
            nonce=Hash32(os.urandom(32)),
            block_limit=1_000_000,
            to=to,
            value=0,
            data=data,
            gas_limit=gas_limit,
            public_key=self.key.public_key.to_bytes(),
        )
        return dataclasses.replace(unsigned, signature=self.key.sign(unsigned.sign_bytes()))

    def commit(self, transactions: list[Transaction]) -> Any:
        result = execute_block(self.store, self.root, self.context(), transactions)
        self.store.update(result.writes)
        self.root = result.state_root
        self.height += 1
        return result


def lianxin_rounds(block_size: int, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per block for execution alone, and for verification + execution."""
    chain = Chain()
    (deployed,) = chain.commit(
        [chain.sign(None, load_artifact("Anchor").bytecode, 3_000_000)]
    ).receipts
    anchor = deployed.contract_address
    assert anchor is not None
    execute_only: list[float] = []
    verify_and_execute: list[float] = []
    for _ in range(rounds):
        for timings, verify in ((execute_only, False), (verify_and_execute, True)):
            block = [
                chain.sign(anchor, ANCHOR_SELECTOR + os.urandom(32), ANCHOR_GAS)
                for _ in range(block_size)
            ]
            started = time.perf_counter()
            if verify:
                items = [(tx.public_key, tx.signature, tx.sign_bytes()) for tx in block]
                assert all(verify_batch(items, workers=1))
            result = chain.commit(block)
            timings.append(time.perf_counter() - started)
            assert all(receipt.status == 1 for receipt in result.receipts)
    return execute_only, verify_and_execute


def eth_tester_rounds(tx_count: int, rounds: int) -> list[float] | str:
    """Seconds to send ``tx_count`` anchor transactions through web3 + eth-tester, per round;
    or the reason it could not run."""
    try:
        from web3 import EthereumTesterProvider, Web3
    except ImportError as exc:
        return f"web3 / eth-tester not installed ({exc})"
    artifact = load_artifact("Anchor")
    timings: list[float] = []
    for _ in range(rounds):
        w3 = Web3(EthereumTesterProvider())
        account = w3.eth.accounts[0]
        factory = w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
        deploy_hash = factory.constructor().transact({"from": account})
        address = w3.eth.wait_for_transaction_receipt(deploy_hash)["contractAddress"]
        contract = w3.eth.contract(address=address, abi=list(artifact.abi))
        roots = [os.urandom(32) for _ in range(tx_count)]
        started = time.perf_counter()
        for root in roots:
            tx_hash = contract.functions.anchor(root).transact({"from": account, "gas": ANCHOR_GAS})
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
            assert receipt["status"] == 1
        timings.append(time.perf_counter() - started)
    return timings


def median_rate(count: int, timings: list[float]) -> float:
    return count / statistics.median(timings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-size", type=int, default=500)
    parser.add_argument("--tester-txs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    execute_only, verify_and_execute = lianxin_rounds(args.block_size, args.rounds)
    tester = eth_tester_rounds(args.tester_txs, args.rounds)

    rows: list[dict[str, Any]] = [
        {
            "name": "lianxin execute_block",
            "txs_per_round": args.block_size,
            "median_s": statistics.median(execute_only),
            "tx_per_s": median_rate(args.block_size, execute_only),
        },
        {
            "name": "lianxin SM2 verify + execute_block",
            "txs_per_round": args.block_size,
            "median_s": statistics.median(verify_and_execute),
            "tx_per_s": median_rate(args.block_size, verify_and_execute),
        },
    ]
    if isinstance(tester, list):
        rows.append(
            {
                "name": "eth-tester (web3, send + wait receipt)",
                "txs_per_round": args.tester_txs,
                "median_s": statistics.median(tester),
                "tx_per_s": median_rate(args.tester_txs, tester),
            }
        )
    baseline = rows[2]["tx_per_s"] if isinstance(tester, list) else None
    ratio: Callable[[float], str] = (
        (lambda rate: f"{rate / baseline:.1f}x") if baseline else (lambda rate: "n/a")
    )

    print(f"Anchor.anchor(bytes32), median of {args.rounds} rounds")
    print(f"{'path':<42} {'txs/round':>9} {'median s':>9} {'tx/s':>9} {'vs eth-tester':>14}")
    for row in rows:
        print(
            f"{row['name']:<42} {row['txs_per_round']:>9} {row['median_s']:>9.3f} "
            f"{row['tx_per_s']:>9.0f} {ratio(row['tx_per_s']):>14}"
        )
        row["ratio_vs_eth_tester"] = row["tx_per_s"] / baseline if baseline else None
    if not isinstance(tester, list):
        print(f"eth-tester skipped: {tester}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "execution",
        "workload": "Anchor.anchor(bytes32): 2 SSTORE + 1 LOG3",
        "rounds": args.rounds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "eth_tester_skipped": None if isinstance(tester, list) else tester,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
