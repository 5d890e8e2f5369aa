"""What the Ethereum compatibility tests share: a dev chain's node as its own process, made
the way ``lianxin init --dev`` makes it (keystores with few KDF rounds, so that the node unlocks
its dev accounts at once) and started with ``lianxin node start``; Node.js; SM2 transactions
signed by the Python SDK."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chain.crypto import PrivateKey
from node.chain_dir import init_chain_dir, load_key
from node.rpc_client import RpcError, rpc_call
from sdk.account import Sm2Account
from sdk.transactions import block_limit_for, build_transaction, encode_raw

KDF_ROUNDS = 1024
"""PBKDF2 rounds of the test chain's keystores (a real dev chain uses 300,000)."""


NODE_START_TIMEOUT_S = 120.0
"""Longest the node may take to answer after it was started (a loaded 2-core machine)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_rpc(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the node exited ({process.returncode}): {log.read_text()}")
        try:
            rpc_call(url, "eth_blockNumber", timeout=1)
            return
        except RpcError:
            time.sleep(0.1)
    raise AssertionError(f"the node did not answer within {NODE_START_TIMEOUT_S} s")


@dataclass(frozen=True)
class RunningDevChain:
    """A running dev node and its chain directory."""

    root: Path
    """The chain directory."""
    url: str
    """The node's JSON-RPC URL."""
    chain_id: int
    """The chain id."""
    accounts: dict[str, bytes]
    """Dev account name → address."""
    genesis_snapshot: list[str] = field(default_factory=list)
    """The ``evm_snapshot`` id of the genesis block (one; replaced by each
    :meth:`back_to_genesis`)."""

    def back_to_genesis(self) -> None:
        """Revert the chain to its genesis block (``evm_revert``), for tests that assume a
        chain holding their own blocks only (web3.py's suites, written for a fixture chain).
        Every compatibility test deploys what it uses, so discarding the blocks of those run
        before costs them nothing."""
        (snapshot,) = self.genesis_snapshot
        assert rpc_call(self.url, "evm_revert", [snapshot]) is True
        self.genesis_snapshot[:] = [rpc_call(self.url, "evm_snapshot")]

    def key(self, name: str) -> PrivateKey:
        """The SM2 key of dev account ``name``, from its keystore."""
        password = (self.root / "keystore-password").read_bytes().strip()
        return load_key(self.root / "keys" / f"{name}.json", password)


REPO = Path(__file__).resolve().parents[2]


def node_js() -> str:
    """The Node.js binary, with the project's npm dev dependencies installed; skips the
    test when either is missing (scripts/test.sh installs them)."""
    binary = shutil.which("node")
    if binary is None or not (REPO / "node_modules" / "ethers").is_dir():
        pytest.skip("Node.js or the npm dev dependencies (npm ci) are not installed")
    return binary


@dataclass(frozen=True)
class Sm2RawTransaction:
    """A transaction signed with SM2 by the Python SDK, not yet sent."""

    raw: str
    """Its canonical encoding, 0x hex."""
    hash: str
    """Its SM3 hash, 0x hex."""
    sender: str
    """The sender's address, 0x hex."""


def sm2_transfer(chain: RunningDevChain, sender: str, to: bytes, value: int) -> Sm2RawTransaction:
    """A value transfer from dev account ``sender``, signed with the SDK."""
    key = chain.key(sender)
    head = int(rpc_call(chain.url, "eth_blockNumber"), 16)
    unsigned = build_transaction(
        chain_id=chain.chain_id,
        to=to,
        data=b"",
        gas_limit=21_000,
        block_limit=block_limit_for(head),
        value=value,
    )
    signed = Sm2Account.from_private_key(key).sign_transaction(unsigned)
    return Sm2RawTransaction(
        encode_raw(signed), "0x" + signed.hash.hex(), "0x" + key.public_key.address.hex()
    )


@contextmanager
def running_dev_chain(root: Path) -> Iterator[RunningDevChain]:
    """A new dev chain in ``root`` with its node (``lianxin node start``) running; the node
    is killed on exit."""
    port = _free_port()
    result = init_chain_dir(
        root,
        password=None,
        dev=True,
        rpc_port=port,
        timestamp_ms=int(time.time() * 1000),
        iterations=KDF_ROUNDS,
    )
    url = f"http://127.0.0.1:{port}"
    log = root / "node.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from node.cli import main; main()",
                "node",
                "start",
                "--dir",
                str(root),
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "LIANXIN_KEYSTORE_PASSWORD"},
        )
    try:
        _wait_for_rpc(url, process, log)
        genesis = rpc_call(url, "evm_snapshot")
        assert rpc_call(url, "eth_blockNumber") == "0x0"
        yield RunningDevChain(
            root, url, result.genesis.chain_id, dict(result.accounts), [str(genesis)]
        )
        assert process.poll() is None, f"the node process died: {log.read_text()}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
