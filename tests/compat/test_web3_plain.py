"""Stock web3.py (no lianxin_web3, no sdk.web3_integration) against a dev chain's node: the
same application flow as the ethers test, through web3.py's own formatters and validation."""

from __future__ import annotations

import json

from compat_harness import REPO, RunningDevChain, sm2_transfer
from web3 import Web3

ANCHOR = json.loads((REPO / "contracts" / "artifacts" / "Anchor.json").read_text("utf-8"))
ROOT = b"\xcd" * 32


def test_web3_application_flow(dev_chain: RunningDevChain) -> None:
    w3 = Web3(Web3.HTTPProvider(dev_chain.url, request_kwargs={"timeout": 60}))
    assert w3.eth.chain_id == dev_chain.chain_id
    deployer, other, third = w3.eth.accounts[:3]
    pending_filter = w3.eth.filter("pending")

    # Deploy and transact with the node's accounts (eth_sendTransaction).
    factory = w3.eth.contract(abi=ANCHOR["abi"], bytecode=ANCHOR["bytecode"])
    deploy_hash = factory.constructor().transact({"from": deployer})
    deployed = w3.eth.wait_for_transaction_receipt(deploy_hash, timeout=60)
    assert deployed.status == 1 and deployed.contractAddress is not None
    deploy_tx = w3.eth.get_transaction(deploy_hash)
    # The CREATE address follows from the transaction's sender and nonce, as on Ethereum.
    creator = bytes([0xD6, 0x94]) + bytes.fromhex(deployer[2:]) + _rlp_int(deploy_tx.nonce)
    assert deployed.contractAddress == Web3.to_checksum_address(Web3.keccak(creator)[-20:])
    anchor = w3.eth.contract(address=deployed.contractAddress, abi=ANCHOR["abi"])
    call_hash = anchor.functions.anchor(ROOT).transact({"from": deployer})
    receipt = w3.eth.wait_for_transaction_receipt(call_hash, timeout=60)
    assert receipt.status == 1
    (event,) = anchor.events.Anchored().process_receipt(receipt)
    assert event.args.root == ROOT and event.args.by == deployer and event.args["count"] == 1
    logs = anchor.events.Anchored().get_logs(from_block=receipt.blockNumber)
    assert [log.transactionHash for log in logs] == [call_hash]
    assert anchor.functions.total().call() == 1

    # The transaction and its block, through web3.py's formatters.
    tx = w3.eth.get_transaction(call_hash)
    assert tx["from"] == deployer and tx.to == anchor.address
    assert tx.nonce == deploy_tx.nonce + 1 == w3.eth.get_transaction_count(deployer) - 1
    block = w3.eth.get_block(receipt.blockNumber, full_transactions=True)
    assert call_hash in [t.hash for t in block.transactions]
    assert w3.eth.get_transaction_by_block(receipt.blockNumber, receipt.transactionIndex).hash == (
        call_hash
    )
    assert [r.transactionHash for r in w3.eth.get_block_receipts(receipt.blockNumber)] == [
        t.hash for t in block.transactions
    ]

    # Fees: non-zero figures for estimation, nothing charged.
    assert w3.eth.gas_price > 0
    assert block.baseFeePerGas > 0
    history = w3.eth.fee_history(2, "latest", [50])
    assert len(history.baseFeePerGas) == 3 and len(history.reward) == 2
    before = w3.eth.get_balance(third)
    transfer = w3.eth.send_transaction({"from": other, "to": third, "value": 999})
    paid = w3.eth.wait_for_transaction_receipt(transfer, timeout=60)
    assert w3.eth.get_balance(third) == before + 999
    assert paid.effectiveGasPrice == 0

    # A raw transaction signed with SM2 by the SDK.
    raw = sm2_transfer(dev_chain, "dept-a", bytes.fromhex(third[2:]), 5)
    sent = w3.eth.send_raw_transaction(raw.raw)
    assert sent.to_0x_hex() == raw.hash
    landed = w3.eth.wait_for_transaction_receipt(sent, timeout=60)
    assert landed.status == 1
    assert w3.eth.get_transaction(sent)["from"].lower() == raw.sender
    assert w3.eth.get_raw_transaction(sent).to_0x_hex() == raw.raw

    # The pending-transaction filter saw every transaction sent since it was installed.
    seen = set(w3.eth.get_filter_changes(pending_filter.filter_id))
    assert {deploy_hash, call_hash, transfer, sent} <= seen

    # Signatures by the node.
    assert len(w3.eth.sign(deployer, text="hello")) > 64


def _rlp_int(value: int) -> bytes:
    """RLP of a small non-negative integer (a nonce below 128 in this test)."""
    assert value < 128
    return b"\x80" if value == 0 else bytes([value])
