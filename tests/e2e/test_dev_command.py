"""`lianxin dev` — the README's main command — runs a dev chain and the registry together,
prints their URLs (every one of which answers), gives each dev department a registry client
whose key is in the chain directory, stops both on Ctrl-C, and reuses the chain, its contracts
and its clients next time."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from e2e_harness import cli_environment, free_port, lianxin_command, run_cli

from chain.crypto import PrivateKey
from node.cli_dev import DEV_DEPARTMENTS
from node.rpc_client import rpc_call
from sdk.trust import TrustClient

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 90
DEV_CLIENTS = tuple(department.name for department in DEV_DEPARTMENTS)
"""The dev departments' client names (``registry-clients/<name>.json``): the market
regulator, the archive and the identity provider."""


def start_dev(
    directory: Path, rpc_port: int, registry_port: int, log: Path
) -> subprocess.Popen[bytes]:
    command = [
        *lianxin_command(), "dev", "--dir", str(directory),
        "--rpc-port", str(rpc_port), "--registry-port", str(registry_port),
    ]  # fmt: skip
    with open(log, "wb") as out:
        # A session of its own, so that a run that must be killed takes its children along.
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=cli_environment(), start_new_session=True,
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
    """Ctrl-C to ``lianxin dev`` alone (as a terminal's would reach it and its children,
    which it stops itself); its exit status. Past the deadline the whole session is killed,
    so that no node outlives a failed test."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def processes_using(path: Path) -> list[int]:
    """Pids of the processes whose command line names ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(path).encode() in words:
            found.append(int(entry.name))
    return found


def dev_clients(directory: Path) -> dict[str, dict[str, object]]:
    """The registry clients ``lianxin dev`` recorded, by name."""
    folder = directory / "registry-clients"
    return {name: json.loads((folder / f"{name}.json").read_text()) for name in DEV_CLIENTS}


def registered_client_ids(cwd: Path) -> list[str]:
    """``lianxin registry clients list`` run in ``cwd``, with no directory named: the dev
    chain's registry (``./devchain``) by default."""
    listed = run_cli("registry", "clients", "list", cwd=cwd)
    assert listed.code == 0, listed
    return [client["id"] for client in listed.json()]


def check_printed_urls_answer(printed: str, registry_port: int) -> None:
    """Every concrete registry URL the banner printed answers 200."""
    found = re.finditer(rf"http://127\.0\.0\.1:{registry_port}/[^\s,<\"]*", printed)
    # A URL followed by a <placeholder> is a pattern, not a page.
    urls = {match.group() for match in found if not printed[match.end() :].startswith("<")}
    assert f"http://127.0.0.1:{registry_port}/v1" in urls, printed
    for url in sorted(urls):
        try:
            with urllib.request.urlopen(url) as reply:
                status = reply.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 200, (url, status)


def check_dev_clients(directory: Path, printed: str, registry_port: int) -> dict[str, object]:
    """Each dev department's client is printed, keeps its key in the chain directory
    (owner-only), and can notarize."""
    clients = dev_clients(directory)
    for name, client in clients.items():
        key_path = directory / "registry-clients" / f"{name}.pem"
        assert key_path.stat().st_mode & 0o077 == 0
        assert str(client["client_id"]) in printed and str(key_path) in printed
        assert client["issuer_codes"] == [client["uscc"], "350102"]
        trust = TrustClient(
            f"http://127.0.0.1:{registry_port}",
            str(client["client_id"]),
            PrivateKey.from_pem(key_path.read_bytes()),
        )
        with trust:
            accepted = trust.notarize(document=f"dev client {name}".encode())
        assert accepted.record_id
    return {name: client["client_id"] for name, client in clients.items()}


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
        check_printed_urls_answer(printed, registry_port)
        client_ids = check_dev_clients(directory, printed, registry_port)
        assert sorted(registered_client_ids(tmp_path)) == sorted(client_ids.values())
    finally:
        status = interrupt(process)
    assert status == 0, log.read_text()
    assert "stopped" in log.read_text()

    # A second run reuses the chain, the deployed contracts and the clients.
    process = start_dev(directory, rpc_port, registry_port, log)
    try:
        wait_for_urls(process, log, registry_port)
        again = json.loads((directory / "registry" / "bootstrap.json").read_text())
        assert again == bootstrap
        assert {name: c["client_id"] for name, c in dev_clients(directory).items()} == client_ids
        assert sorted(registered_client_ids(tmp_path)) == sorted(client_ids.values())
        height = int(rpc_call(f"http://127.0.0.1:{rpc_port}", "eth_blockNumber"), 16)
        assert height >= 1
    finally:
        assert interrupt(process) == 0


def test_ctrl_c_during_first_setup_stops_at_once_and_starts_nothing_more(tmp_path: Path) -> None:
    """SIGINT while the first run deploys the trust contracts: the setup step in progress is
    ended, the registry is never started, the node is stopped, and the exit is clean."""
    directory = tmp_path / "devchain"
    rpc_port, registry_port = free_port(), free_port()
    log = tmp_path / "dev.log"
    process = start_dev(directory, rpc_port, registry_port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        node_log = directory / "node.log"
        while not (node_log.exists() and "serving JSON-RPC" in node_log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        status = interrupt(process)
    assert status == 0, log.read_text()
    assert "stopped" in log.read_text()
    assert not (directory / "registry.log").exists(), "the registry was started after Ctrl-C"
    assert not (directory / "registry-clients" / f"{DEV_CLIENTS[-1]}.json").exists()
    assert processes_using(directory / "node.toml") == [], "the node outlived lianxin dev"
