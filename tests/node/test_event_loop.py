"""The node process runs its event loop on uvloop when uvloop is installed, and serves and
produces blocks on it as on asyncio's own loop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from node_harness import anchor_call, make_chain, signed_tx

from chain.crypto.keystore import encrypt_keystore
from chain.genesis import genesis_to_toml
from contracts.artifacts import load_artifact
from node.daemon import event_loop_factory

ROOT = Path(__file__).resolve().parents[2]

uvloop = pytest.importorskip("uvloop")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rpc(port: int, method: str, params: list[object]) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    assert "error" not in reply, reply
    return reply["result"]


def test_the_loop_factory_is_uvloops_when_installed() -> None:
    factory = event_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_daemon_serves_and_commits_on_uvloop(tmp_path: Path) -> None:
    chain = make_chain()
    (tmp_path / "genesis.toml").write_text(genesis_to_toml(chain.genesis), encoding="utf-8")
    (tmp_path / "validator.json").write_bytes(
        encrypt_keystore(chain.validator, b"secret", iterations=1_000)
    )
    port = _free_port()
    (tmp_path / "node.toml").write_text(
        "\n".join(
            [
                'data_dir = "data"',
                'genesis = "genesis.toml"',
                'validator_keystore = "validator.json"',
                f"rpc_port = {port}",
            ]
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "LIANXIN_KEYSTORE_PASSWORD": "secret", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "node.daemon", "--config", str(tmp_path / "node.toml")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _rpc(port, "eth_blockNumber", [])
                break
            except OSError:
                assert time.monotonic() < deadline, "the node did not start serving"
                time.sleep(0.05)
        deploy = signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
        tx_hash = _rpc(port, "eth_sendRawTransaction", ["0x" + deploy.encode().hex()])
        receipt = _rpc(port, "eth_getTransactionReceipt", [tx_hash])
        assert isinstance(receipt, dict) and receipt["status"] == "0x1"
        anchor = receipt["contractAddress"]
        call = signed_tx(
            chain.deployer,
            to=bytes.fromhex(anchor[2:]),
            data=anchor_call(b"\x01" * 32),
            gas_limit=100_000,
        )
        tx_hash = _rpc(port, "eth_sendRawTransaction", ["0x" + call.encode().hex()])
        receipt = _rpc(port, "eth_getTransactionReceipt", [tx_hash])
        assert isinstance(receipt, dict) and receipt["status"] == "0x1"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read().decode() if process.stdout else ""
    assert "event loop: uvloop" in output
    assert "shutting down" in output
