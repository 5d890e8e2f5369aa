"""ethers v6, unchanged, against a dev chain's node (tests/compat/ethers_flow.mjs): deploy with
the node's account through JsonRpcSigner, transact, read events, the transaction, the block
with its transactions and the fee data, sign, and broadcast a raw transaction the Python SDK
signed with SM2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from compat_harness import REPO, RunningDevChain, node_js, sm2_transfer

from chain.crypto import PublicKey
from node.dev_accounts import eip191_message

FLOW = Path(__file__).with_name("ethers_flow.mjs")
ANCHOR = REPO / "contracts" / "artifacts" / "Anchor.json"


def test_ethers_application_flow(dev_chain: RunningDevChain) -> None:
    node = node_js()
    raw = sm2_transfer(dev_chain, "dept-b", dev_chain.accounts["dept-a"], 7)
    done = subprocess.run(
        [node, str(FLOW), dev_chain.url, str(ANCHOR), raw.raw, raw.hash, raw.sender],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # The node's signatures are SM2 under the first account's key, over the EIP-191 message.
    admin = PublicKey.from_bytes(dev_chain.key("admin").public_key.to_bytes())
    admin.verify(bytes.fromhex(summary["messageSignature"][2:]), eip191_message(b"hello"))
    assert summary["sm2Transaction"]["nonce"] >= 0
