"""The node daemon and the registry server, as real processes, log once at start which SM2
backend signs (here: the native one)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_harness import DevChain, cli_environment, free_port, wait_for_rpc

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 30
NATIVE_LINE = "SM2 backend: native (system OpenSSL libcrypto) signs and verifies"


@contextlib.contextmanager
def running(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_node_daemon_logs_the_signing_backend_once(dev_chain: DevChain, tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    command = [sys.executable, "-m", "node.daemon", "--config", str(dev_chain.root / "node.toml")]
    with running(command, log, cli_environment()) as node:
        wait_for_rpc(dev_chain.url, node)
    assert log.read_text().count(NATIVE_LINE) == 1, log.read_text()


def test_registry_server_logs_the_signing_backend_once(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    port = free_port()
    env = {
        **os.environ,
        "LIANXIN_REGISTRY_DATA_DIR": str(tmp_path / "registry"),
        "LIANXIN_REGISTRY_PORT": str(port),
        "LIANXIN_REGISTRY_HOST": "127.0.0.1",
    }
    with running([sys.executable, "-m", "registry"], log, env) as server:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).is_success:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    assert log.read_text().count(NATIVE_LINE) == 1, log.read_text()
