"""The node as an operator runs it: ``lianxin init`` / ``node start`` / ``node stop`` /
``verify-chain`` as real processes, a department client on web3.py through the SDK, and
everything still there after a restart."""

from __future__ import annotations

import hashlib
import signal
import time
from typing import Any

import pytest
from e2e_harness import DevChain
from web3 import Web3
from web3.contract import Contract

from contracts.artifacts import load_artifact
from node.rpc_client import rpc_call
from sdk.account import Sm2Account
from sdk.web3_integration import lianxin_web3

pytestmark = pytest.mark.e2e

ANCHOR_COUNT = 5
SIGINT_EXIT_WITHIN_S = 5.0


def record_root(index: int) -> bytes:
    """A 32-byte root standing in for a notarization batch's SM3 Merkle root."""
    return hashlib.new("sm3", f"batch {index}".encode()).digest()


def dept_a_web3(chain: DevChain) -> tuple[Web3, Sm2Account]:
    """A web3 client of the chain's node, signing as dev account dept-a."""
    account = Sm2Account.from_keystore(chain.keystore("dept-a"), chain.password)
    return lianxin_web3(chain.url, account), account


def deploy_anchor(w3: Web3) -> tuple[Contract, Any]:
    """Deploy Anchor; return the contract object and the deployment receipt."""
    artifact = load_artifact("Anchor")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact())
    assert receipt.status == 1
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi), receipt


def snapshot(url: str, tx_hashes: list[str], contract: str) -> dict[str, Any]:
    """Everything a client can read back about the chain: each block, each receipt, every log
    of the contract and its state."""
    head = int(rpc_call(url, "eth_blockNumber"), 16)
    total_selector = "0x" + Web3.keccak(text="total()")[:4].hex()
    return {
        "blocks": [rpc_call(url, "eth_getBlockByNumber", [hex(n), False]) for n in range(head + 1)],
        "receipts": {h: rpc_call(url, "eth_getTransactionReceipt", [h]) for h in tx_hashes},
        "transactions": {h: rpc_call(url, "eth_getTransactionByHash", [h]) for h in tx_hashes},
        "logs": rpc_call(url, "eth_getLogs", [{"address": contract, "fromBlock": "0x0"}]),
        "total": rpc_call(url, "eth_call", [{"to": contract, "data": total_selector}, "latest"]),
    }


def test_background_node_serves_web3_and_keeps_everything_across_a_restart(
    dev_chain: DevChain,
) -> None:
    dev_chain.start_background()
    w3, account = dept_a_web3(dev_chain)
    anchor, deployed = deploy_anchor(w3)
    log_filter = anchor.events.Anchored.create_filter(from_block=deployed.blockNumber)
    block_filter = w3.eth.filter("latest")

    roots = [record_root(n) for n in range(ANCHOR_COUNT)] + [record_root(0)]
    receipts = [
        w3.eth.wait_for_transaction_receipt(anchor.functions.anchor(root).transact())
        for root in roots
    ]
    assert all(receipt.status == 1 for receipt in receipts)

    # Events from each receipt; anchoring root 0 a second time counts 2.
    for root, receipt in zip(roots, receipts, strict=True):
        (event,) = anchor.events.Anchored().process_receipt(receipt)
        assert event.args.root == root
        assert event.args.by == account.checksum_address
    assert [e.args["count"] for e in anchor.events.Anchored.get_logs(from_block=0)] == [
        1,
        1,
        1,
        1,
        1,
        2,
    ]
    topic = anchor.events.Anchored().topic
    by_root = w3.eth.get_logs(
        {"address": anchor.address, "fromBlock": 0, "topics": [topic, Web3.to_hex(roots[0])]}
    )
    assert [log["transactionHash"] for log in by_root] == [
        receipts[0].transactionHash,
        receipts[-1].transactionHash,
    ]

    # Filters report what happened since they were installed, once.
    changes = log_filter.get_new_entries()
    assert [entry.transactionHash for entry in changes] == [r.transactionHash for r in receipts]
    assert log_filter.get_new_entries() == []
    new_blocks = block_filter.get_new_entries()
    assert {r.blockHash for r in receipts} <= set(new_blocks)
    assert block_filter.get_new_entries() == []

    assert anchor.functions.total().call() == len(roots)
    assert anchor.functions.anchorCount(roots[0]).call() == 2

    # The operator CLI sees the same chain.
    last = receipts[-1]
    latest = dev_chain.cli("block", "latest", "--json")
    assert latest.code == 0, latest
    assert latest.json()["hash"] == Web3.to_hex(last.blockHash)
    assert int(latest.json()["number"], 16) == last.blockNumber
    tx_hash = Web3.to_hex(last.transactionHash)
    shown_tx = dev_chain.cli("tx", tx_hash, "--json")
    assert shown_tx.code == 0, shown_tx
    assert shown_tx.json()["hash"] == tx_hash
    assert shown_tx.json()["blockHash"] == Web3.to_hex(last.blockHash)
    shown_receipt = dev_chain.cli("receipt", tx_hash, "--json")
    assert shown_receipt.code == 0, shown_receipt
    assert shown_receipt.json() == rpc_call(dev_chain.url, "eth_getTransactionReceipt", [tx_hash])

    tx_hashes = [Web3.to_hex(r.transactionHash) for r in [deployed, *receipts]]
    before = snapshot(dev_chain.url, tx_hashes, anchor.address)
    dev_chain.stop_background()
    assert dev_chain.background_pid() is None

    verified = dev_chain.cli("verify-chain", "--json")
    assert verified.code == 0, verified
    assert verified.json() == {"ok": True, "head": last.blockNumber}

    dev_chain.start_background()
    assert snapshot(dev_chain.url, tx_hashes, anchor.address) == before
    w3, _ = dept_a_web3(dev_chain)
    anchor = w3.eth.contract(address=anchor.address, abi=anchor.abi)
    assert anchor.functions.anchorCount(roots[0]).call() == 2
    # The chain goes on from where it stopped.
    after = w3.eth.wait_for_transaction_receipt(anchor.functions.anchor(record_root(99)).transact())
    assert after.blockNumber == last.blockNumber + 1
    assert w3.eth.get_block(after.blockNumber).parentHash == last.blockHash
    dev_chain.stop_background()


def test_foreground_node_stops_cleanly_on_sigint(dev_chain: DevChain) -> None:
    process = dev_chain.start_foreground()
    w3, _ = dept_a_web3(dev_chain)
    anchor, deployed = deploy_anchor(w3)
    anchored = w3.eth.wait_for_transaction_receipt(
        anchor.functions.anchor(record_root(1)).transact()
    )
    head = w3.eth.get_block("latest")

    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert process.wait(timeout=SIGINT_EXIT_WITHIN_S + 5) == 0
    assert time.monotonic() - started < SIGINT_EXIT_WITHIN_S

    verified = dev_chain.cli("verify-chain", "--json")
    assert verified.code == 0, verified
    assert verified.json() == {"ok": True, "head": anchored.blockNumber}

    process = dev_chain.start_foreground()
    assert w3.eth.get_block("latest").hash == head.hash
    assert anchor.functions.total().call() == 1
    assert w3.eth.get_transaction_receipt(deployed.transactionHash) == deployed
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=SIGINT_EXIT_WITHIN_S + 5) == 0
