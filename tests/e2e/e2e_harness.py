"""Shared pieces of the end-to-end tests: the real ``lianxin`` entry point run as
subprocesses on 127.0.0.1, a dev chain on a free port, and the node processes run on it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.rpc_client import RpcError, rpc_call

CLI_TIMEOUT_S = 120
"""Longest one CLI command may run before the test fails."""
NODE_START_TIMEOUT_S = 90
"""Longest a node process may take to answer JSON-RPC after it was started. These are
deadlines, not timings: a node that exits is seen at once, and only a slow start on a busy
machine (a node started beside other tests' processes took 20-150 s at load 15-20) waits."""


def lianxin_command() -> list[str]:
    """The installed ``lianxin`` console script next to this interpreter, so the real entry
    point is exercised; the same entry function through the interpreter if it is absent."""
    script = Path(sys.executable).parent / "lianxin"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from node.cli import main; main()"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_environment() -> dict[str, str]:
    """The environment of CLI subprocesses: no password override, so a dev chain's own
    password file is used, and no terminal colours in captured output."""
    environment = {
        key: value for key, value in os.environ.items() if key != "LIANXIN_KEYSTORE_PASSWORD"
    }
    environment.update(NO_COLOR="1", TERM="dumb", COLUMNS="200")
    return environment


@dataclass(frozen=True)
class CliResult:
    """What one CLI invocation did."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.stdout)


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """Run ``lianxin ARGS`` to completion with no stdin."""
    completed = subprocess.run(
        [*lianxin_command(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=cli_environment(),
        cwd=cwd,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def wait_for_rpc(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once the node at ``url`` answers; fail if ``process`` exits first."""
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the node exited with status {process.returncode}")
        try:
            rpc_call(url, "eth_blockNumber", timeout=1)
            return
        except RpcError:
            time.sleep(0.05)
    raise AssertionError(f"the node at {url} did not answer within {NODE_START_TIMEOUT_S} s")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class DevChain:
    """A dev chain directory made by ``lianxin init --dev`` and the processes run on it."""

    root: Path
    """The chain directory."""
    port: int
    """Its JSON-RPC port."""
    accounts: dict[str, str]
    """Dev account name → address, as ``init`` reported them."""
    foreground: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """Foreground node processes started by :meth:`start_foreground`."""

    @property
    def url(self) -> str:
        """The node's JSON-RPC URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def password(self) -> bytes:
        """The dev chain's generated keystore password."""
        return (self.root / "keystore-password").read_bytes().strip()

    def keystore(self, name: str) -> bytes:
        """The keystore file of dev account ``name``."""
        return (self.root / "keys" / f"{name}.json").read_bytes()

    def cli(self, *args: str) -> CliResult:
        """Run ``lianxin ARGS --dir ROOT``."""
        return run_cli(*args, "--dir", str(self.root))

    def start_background(self) -> None:
        """``lianxin node start --background`` and wait until it answers."""
        result = self.cli("node", "start", "--background")
        assert result.code == 0, result
        wait_for_rpc(self.url)

    def stop_background(self) -> None:
        """``lianxin node stop``."""
        result = self.cli("node", "stop")
        assert result.code == 0, result

    def start_foreground(self) -> subprocess.Popen[bytes]:
        """``lianxin node start`` as a child process (the CLI replaces itself with the daemon,
        so the child is the node), waited for until it answers. Output goes to
        ``foreground.log`` in the chain directory."""
        command = [*lianxin_command(), "node", "start", "--dir", str(self.root)]
        with open(self.root / "foreground.log", "ab") as log:
            process = subprocess.Popen(
                [*command, "--log-level", "WARNING"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=cli_environment(),
            )
        self.foreground.append(process)
        wait_for_rpc(self.url, process)
        return process

    def background_pid(self) -> int | None:
        """The pid a background node recorded, if that process still runs."""
        try:
            pid = int((self.root / "node.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def kill_leftovers(self) -> None:
        """SIGKILL every node process of this chain that still runs."""
        for process in self.foreground:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        pid = self.background_pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
