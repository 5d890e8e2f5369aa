"""`lianxin dev` — the README's main command — runs a dev chain and the registry together,
prints their URLs, stops both on Ctrl-C, and reuses the chain and its contracts next time."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from e2e_harness import cli_environment, free_port, lianxin_command

from node.rpc_client import rpc_call

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 90


def start_dev(
    directory: Path, rpc_port: int, registry_port: int, log: Path
) -> subprocess.Popen[bytes]:
    command = [
        *lianxin_command(), "dev", "--dir", str(directory),
        "--rpc-port", str(rpc_port), "--registry-port", str(registry_port),
    ]  # fmt: skip
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=cli_environment(),
        )  # fmt: skip


def wait_for_urls(process: subprocess.Popen[bytes], log: Path, registry_port: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if f"http://127.0.0.1:{registry_port}/docs" in text:
            return text
        assert process.poll() is None, text
        time.sleep(0.3)
    raise AssertionError(log.read_text(encoding="utf-8", errors="replace"))


def interrupt(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def test_dev_runs_node_and_registry_and_stops_cleanly(tmp_path: Path) -> None:
    directory = tmp_path / "devchain"
    rpc_port, registry_port = free_port(), free_port()
    log = tmp_path / "dev.log"
    process = start_dev(directory, rpc_port, registry_port, log)
    try:
        printed = wait_for_urls(process, log, registry_port)
        assert f"http://127.0.0.1:{rpc_port}" in printed
        assert rpc_call(f"http://127.0.0.1:{rpc_port}", "eth_chainId") == hex(20_261_126)
        with urllib.request.urlopen(f"http://127.0.0.1:{registry_port}/openapi.json") as reply:
            assert "/v1/records" in json.load(reply)["paths"]
        bootstrap = json.loads((directory / "registry" / "bootstrap.json").read_text())
        code = rpc_call(
            f"http://127.0.0.1:{rpc_port}", "eth_getCode", [bootstrap["notary"], "latest"]
        )
        assert len(code) > 2
    finally:
        status = interrupt(process)
    assert status == 0, log.read_text()
    assert "stopped" in log.read_text()

    # A second run reuses the chain and the deployed contracts.
    process = start_dev(directory, rpc_port, registry_port, log)
    try:
        wait_for_urls(process, log, registry_port)
        again = json.loads((directory / "registry" / "bootstrap.json").read_text())
        assert again == bootstrap
        height = int(rpc_call(f"http://127.0.0.1:{rpc_port}", "eth_blockNumber"), 16)
        assert height >= 1
    finally:
        assert interrupt(process) == 0
