"""SIGKILL the node while several clients stream transactions at it at once, so that blocks
queue behind the disk and are written by group commit: every receipt a client was given
survives the restart unchanged, and the chain the killed process left verifies.

The kill moment and transaction contents come from a seeded generator; the seed is printed
(set ``LIANXIN_E2E_SEED`` to replay a run).
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

import e2e_harness
import pytest
from e2e_harness import DevChain
from test_node_sigkill import TransactionStream, deploy_anchor, sign_stream

from node.rpc_client import rpc_call
from sdk.account import Sm2Account

pytestmark = pytest.mark.e2e

STREAMS = 4
"""Clients sending at once: each keeps a group of transactions in flight."""
RECEIPTS_BEFORE_KILL = (20, 120)
"""Range of how many receipts the clients hold, together, when the node is killed."""
TIMEOUT_S = 60.0
NODE_START_TIMEOUT_S = 120
"""A node's start (imports, keystore) takes over 20 s when the machine is loaded; what this
test checks does not depend on how fast it starts."""


def test_receipts_survive_sigkill_during_group_commit(
    dev_chain: DevChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(e2e_harness, "NODE_START_TIMEOUT_S", NODE_START_TIMEOUT_S)
    seed = int(os.environ.get("LIANXIN_E2E_SEED", random.randrange(2**32)))
    print(f"LIANXIN_E2E_SEED={seed}")
    rng = random.Random(seed)
    account = Sm2Account.from_keystore(dev_chain.keystore("dept-a"), dev_chain.password)
    process = dev_chain.start_foreground()
    chain_id = int(rpc_call(dev_chain.url, "eth_chainId"), 16)
    anchor = deploy_anchor(dev_chain.url, account, chain_id)
    height = int(rpc_call(dev_chain.url, "eth_blockNumber"), 16)
    streams = [
        TransactionStream(dev_chain.url, sign_stream(account, chain_id, height, anchor, rng))
        for _ in range(STREAMS)
    ]
    for stream in streams:
        stream.start()
    # Kill once the clients hold a random number of receipts, with every stream still
    # sending: blocks are being executed, queued and flushed at that moment.
    target = rng.randint(*RECEIPTS_BEFORE_KILL)
    deadline = time.monotonic() + TIMEOUT_S
    while sum(len(stream.receipts) for stream in streams) < target:
        assert all(stream.is_alive() for stream in streams), "a stream ended before the kill"
        assert time.monotonic() < deadline, f"fewer than {target} receipts in {TIMEOUT_S} s"
        time.sleep(0.005)
    for stream in streams:
        stream.killed.set()
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
    confirmed: dict[str, dict[str, Any]] = {}
    for stream in streams:
        stream.join(timeout=30)
        assert not stream.is_alive()
        assert not stream.failed_before_kill, stream.failure
        confirmed.update(stream.receipts)
    heights = {int(receipt["blockNumber"], 16) for receipt in confirmed.values()}
    print(f"killed with {len(confirmed)} receipts in {len(heights)} blocks")

    # The crashed store, as the killed process left it, verifies.
    verified = dev_chain.cli("verify-chain", "--json")
    assert verified.code == 0, verified
    assert verified.json()["head"] >= max(heights)

    process = dev_chain.start_foreground()
    for tx_hash, receipt in confirmed.items():
        assert rpc_call(dev_chain.url, "eth_getTransactionReceipt", [tx_hash]) == receipt, (
            f"seed {seed}: receipt of {tx_hash} changed"
        )
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
