"""``lianxin dev``: a local dev chain and the registry service, together, in the foreground.

The registry runs as its own process (``python -m registry.cli``): the node never imports the
trust service, it only starts it, the way an operator would. On first run the registry's trust
contracts are deployed and its department registered (``registry.cli bootstrap``); the
result is kept in ``<chain>/registry/bootstrap.json`` so later runs reuse the same contracts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rich.table import Table

from node.chain_dir import ChainDir
from node.cli_common import console, fail, rpc_url
from node.rpc_client import RpcError, rpc_call

DEV_DEPARTMENT_USCC = "91350100M000100Y43"
"""A well-formed unified social credit code for the dev chain's own department."""
DEV_DEPARTMENT_NAME = "本地开发部门"
REGISTRY_SIGNER = "dept-a"
"""The dev account the registry signs anchoring transactions with (holds the issuer role)."""
GOVERNANCE_KEY = "admin"
STARTUP_TIMEOUT_S = 60.0


@dataclass
class Child:
    """A started child process and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def stop(self) -> int:
        """Terminate (SIGTERM, then SIGKILL after 10 s) and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def _start(name: str, command: Sequence[str], log_path: Path, env: dict[str, str]) -> Child:
    log = open(log_path, "ab")  # noqa: SIM115 - closed by Child.stop
    process = subprocess.Popen(
        list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )
    return Child(name, process, log_path, log)


def _wait_until(child: Child, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise fail(
                f"{child.name} exited with status {child.process.returncode}; see {child.log_path}"
            )
        if ready():
            return
        time.sleep(0.2)
    raise fail(f"{what} did not come up within {STARTUP_TIMEOUT_S:.0f} s; see {child.log_path}")


def _node_answers(url: str) -> bool:
    try:
        rpc_call(url, "eth_blockNumber", timeout=1)
    except RpcError:
        return False
    return True


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def registry_environment(chain: ChainDir, node_url: str) -> dict[str, str]:
    """The environment that points the registry at this dev chain (its settings are read
    from ``LIANXIN_REGISTRY_*`` variables)."""
    env = dict(os.environ)
    env.update(
        LIANXIN_REGISTRY_DATA_DIR=str(chain.root / "registry"),
        LIANXIN_REGISTRY_NODE_URL=node_url,
        LIANXIN_REGISTRY_SIGNER_KEYSTORE=str(chain.keystore(REGISTRY_SIGNER)),
        LIANXIN_REGISTRY_SIGNER_PASSWORD_FILE=str(chain.password_file),
    )
    return env


def bootstrap_registry(chain: ChainDir, env: dict[str, str]) -> Path:
    """Deploy the trust contracts and register the dev department, once per chain."""
    record = chain.root / "registry" / "bootstrap.json"
    if record.exists():
        return record
    record.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "registry.cli", "bootstrap",
        "--governance-keystore", str(chain.keystore(GOVERNANCE_KEY)),
        "--governance-password-file", str(chain.password_file),
        "--uscc", DEV_DEPARTMENT_USCC,
        "--department-name", DEV_DEPARTMENT_NAME,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise fail(f"registry bootstrap failed: {done.stderr.decode(errors='replace').strip()}")
    record.write_bytes(done.stdout)
    return record


def run_dev(directory: Path, *, registry_port: int) -> int:
    """Run the node and the registry until SIGINT/SIGTERM; return the exit status."""
    chain = ChainDir(directory)
    node_url = rpc_url(directory, None)
    env = dict(os.environ)
    node = _start(
        "node",
        [sys.executable, "-m", "node.daemon", "--config", str(chain.config)],
        chain.root / "node.log",
        env,
    )
    children = [node]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _wait_until(node, lambda: _node_answers(node_url), "the node")
        registry_env = registry_environment(chain, node_url)
        bootstrap_registry(chain, registry_env)
        base = f"http://127.0.0.1:{registry_port}"
        registry = _start(
            "registry",
            [sys.executable, "-m", "registry.cli", "start", "--port", str(registry_port)],
            chain.root / "registry.log",
            registry_env,
        )
        children.append(registry)
        _wait_until(registry, lambda: _http_answers(f"{base}/docs"), "the registry")
        table = Table(title=f"lianxin dev chain in {directory}  (Ctrl-C stops)", show_header=False)
        table.add_row("JSON-RPC", node_url)
        table.add_row("registry API", f"{base}/v1")
        table.add_row("API docs", f"{base}/docs")
        table.add_row("verify page", f"{base}/v/<license identifier or token>")
        table.add_row("logs", f"{node.log_path}, {registry.log_path}")
        console.print(table)
        while not stopping and all(child.process.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        statuses = [child.stop() for child in reversed(children)]
    if stopping:
        console.print("stopped")
        return 0
    failed = [c for c in children if c.process.returncode not in (0, -signal.SIGTERM)]
    for child in failed:
        console.print(
            f"{child.name} exited with status {child.process.returncode}; see {child.log_path}"
        )
    return 1 if failed or any(s not in (0, -signal.SIGTERM) for s in statuses) else 0
