"""SIGKILL the node while a client streams transactions at it: every receipt the client was
given survives the restart unchanged, and the chain still verifies.

The kill moments and transaction contents come from a seeded generator; the seed is printed
(set ``LIANXIN_E2E_SEED`` to replay a run) and ``LIANXIN_E2E_KILLS`` sets how many kills.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from typing import Any

import pytest
from e2e_harness import DevChain
from eth_utils import function_signature_to_4byte_selector

from contracts.artifacts import load_artifact
from node.rpc_client import rpc_call
from sdk.account import Sm2Account
from sdk.transactions import build_transaction, encode_raw

pytestmark = pytest.mark.e2e

KILLS = int(os.environ.get("LIANXIN_E2E_KILLS", "5"))
IN_FLIGHT = 8
"""Transactions the client sends before asking for their receipts."""
STREAM_LENGTH = 400
"""Transactions signed for each round; more than the client gets through before the kill."""
KILL_AFTER_S = (0.0, 0.8)
"""Range of the delay between the stream's first receipt and the kill."""
FIRST_RECEIPT_TIMEOUT_S = 30.0
"""Longest a round waits for the stream's first receipt."""
BLOCK_LIMIT_WINDOW = 900
ANCHOR_SELECTOR = function_signature_to_4byte_selector("anchor(bytes32)")


class TransactionStream(threading.Thread):
    """Sends pre-signed transactions in groups of IN_FLIGHT, then asks for each one's receipt;
    records every receipt the node returned. Ends at the first failure (the node went away)
    or when the transactions run out."""

    def __init__(self, url: str, raw_transactions: list[tuple[str, str]]) -> None:
        super().__init__(name="tx-stream", daemon=True)
        self.url = url
        self.raw_transactions = raw_transactions
        self.receipts: dict[str, dict[str, Any]] = {}
        """tx hash → the receipt the node answered with."""
        self.failure: Exception | None = None
        self.killed = threading.Event()
        """Set by the test just before it kills the node."""
        self.failed_before_kill = False

    def run(self) -> None:
        try:
            for start in range(0, len(self.raw_transactions), IN_FLIGHT):
                group = self.raw_transactions[start : start + IN_FLIGHT]
                for tx_hash, raw in group:
                    assert rpc_call(self.url, "eth_sendRawTransaction", [raw]) == tx_hash
                for tx_hash, _ in group:
                    receipt = rpc_call(self.url, "eth_getTransactionReceipt", [tx_hash])
                    if receipt is not None:
                        self.receipts[tx_hash] = receipt
        # Whatever the dying node left the client with (refused connection, cut response).
        except Exception as exc:
            self.failure = exc
            self.failed_before_kill = not self.killed.is_set()


def sign_stream(
    account: Sm2Account, chain_id: int, height: int, anchor: bytes, rng: random.Random
) -> list[tuple[str, str]]:
    """STREAM_LENGTH signed calls of ``anchor(root)`` with random roots: (tx hash, raw hex)."""
    stream = []
    for _ in range(STREAM_LENGTH):
        tx = build_transaction(
            chain_id=chain_id,
            to=anchor,
            data=ANCHOR_SELECTOR + rng.randbytes(32),
            gas_limit=100_000,
            block_limit=height + BLOCK_LIMIT_WINDOW,
            nonce=rng.randbytes(32),
        )
        signed = account.sign_transaction(tx)
        stream.append(("0x" + signed.hash.hex(), encode_raw(signed)))
    return stream


def deploy_anchor(url: str, account: Sm2Account, chain_id: int) -> bytes:
    """Deploy Anchor with a raw transaction; return its address."""
    tx = build_transaction(
        chain_id=chain_id,
        to=None,
        data=load_artifact("Anchor").bytecode,
        gas_limit=3_000_000,
        block_limit=int(rpc_call(url, "eth_blockNumber"), 16) + BLOCK_LIMIT_WINDOW,
    )
    tx_hash = rpc_call(url, "eth_sendRawTransaction", [encode_raw(account.sign_transaction(tx))])
    for _ in range(20):
        receipt = rpc_call(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            assert receipt["status"] == "0x1"
            return bytes.fromhex(receipt["contractAddress"][2:])
    raise AssertionError("the deployment was not committed")


def test_receipts_survive_sigkill(dev_chain: DevChain) -> None:
    seed = int(os.environ.get("LIANXIN_E2E_SEED", random.randrange(2**32)))
    print(f"LIANXIN_E2E_SEED={seed} LIANXIN_E2E_KILLS={KILLS}")
    rng = random.Random(seed)
    account = Sm2Account.from_keystore(dev_chain.keystore("dept-a"), dev_chain.password)
    process = dev_chain.start_foreground()
    chain_id = int(rpc_call(dev_chain.url, "eth_chainId"), 16)
    anchor = deploy_anchor(dev_chain.url, account, chain_id)
    confirmed: dict[str, dict[str, Any]] = {}

    for round_number in range(KILLS):
        height = int(rpc_call(dev_chain.url, "eth_blockNumber"), 16)
        stream = TransactionStream(
            dev_chain.url, sign_stream(account, chain_id, height, anchor, rng)
        )
        stream.start()
        # The kill lands at a random moment after the first receipt, so every round kills a
        # node that is committing and answering, however slow the machine is today.
        first_receipt_deadline = time.monotonic() + FIRST_RECEIPT_TIMEOUT_S
        while not stream.receipts and stream.is_alive():
            assert time.monotonic() < first_receipt_deadline, f"round {round_number}: no receipt"
            time.sleep(0.01)
        delay = rng.uniform(*KILL_AFTER_S)
        stream.join(timeout=delay)
        stream.killed.set()
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        stream.join(timeout=30)
        assert not stream.is_alive()
        assert not stream.failed_before_kill, stream.failure
        assert stream.receipts, f"round {round_number}: no receipt before the kill"
        confirmed.update(stream.receipts)
        print(f"round {round_number}: killed after {delay:.2f} s, {len(stream.receipts)} receipts")

        # The crashed store, as the killed process left it, verifies.
        verified = dev_chain.cli("verify-chain", "--json")
        assert verified.code == 0, (round_number, verified)

        process = dev_chain.start_foreground()
        for tx_hash, receipt in confirmed.items():
            assert rpc_call(dev_chain.url, "eth_getTransactionReceipt", [tx_hash]) == receipt, (
                f"seed {seed}, round {round_number}: receipt of {tx_hash} changed"
            )

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    verified = dev_chain.cli("verify-chain", "--json")
    assert verified.code == 0, verified
    head = max(int(receipt["blockNumber"], 16) for receipt in confirmed.values())
    assert verified.json()["head"] >= head
