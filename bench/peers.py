"""Start and stop the nodes the benchmarks compare: a lianxin dev node as a real process,
a Hardhat 2 node, and eth-tester in process, plus a lean keep-alive JSON-RPC client.

Hardhat and py-spy are installed on demand under ``bench/.peers/`` (npm and pip, pinned
versions); that folder is local scratch and is not committed. Every process started here runs
in its own session, and :class:`ProcessGroup` kills the whole group on exit, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PEERS_DIR = ROOT / "bench" / ".peers"
HARDHAT_VERSION = "2.29.1"
HARDHAT_DIR = PEERS_DIR / "hardhat"
HARDHAT_CONFIG = (
    "module.exports = { networks: { hardhat: { chainId: 31337, loggingEnabled: false } } };\n"
)
HARDHAT_CHAIN_ID = 31337
HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""The private key of Hardhat's first well-known dev account (public test key, no value)."""
PY_SPY_VERSION = "0.4.3"
PY_SPY_DIR = PEERS_DIR / "py-spy"
START_TIMEOUT_S = 60.0


class PeerError(RuntimeError):
    """A peer node that could not be installed, started or reached."""


class RpcFailure(PeerError):
    """A JSON-RPC call answered with an error object."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('code')} {error.get('message')}")
        self.error = error


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages of the machine."""
    return os.getloadavg()


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise PeerError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` used so far, in seconds (``/proc/<pid>/stat``):
    what a node spends on a workload, less sensitive to a loaded machine than wall time."""
    # The command name in parentheses may hold spaces; fields after it are fixed.
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RpcClient:
    """A minimal JSON-RPC client over one keep-alive HTTP/1.1 connection: what PEERS.md's
    peer figures were measured with, without web3.py's layers."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 60.0) -> None:
        """Connects lazily; reconnects once if the server closed the connection."""
        self.host = host
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._next_id = 0

    def _post(self, body: bytes) -> Any:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
            try:
                self._connection.request("POST", "/", body, {"Content-Type": "application/json"})
                response = self._connection.getresponse()
                return json.loads(response.read())
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Call ``method``; return its result or raise RpcFailure."""
        self._next_id += 1
        body = json.dumps(
            {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
        ).encode()
        answer = self._post(body)
        if "error" in answer:
            raise RpcFailure(method, answer["error"])
        return answer["result"]

    def batch(self, method: str, params_list: Sequence[Sequence[Any]]) -> list[Any]:
        """Call ``method`` once per parameter list in one JSON-RPC batch; results in order.
        Raises RpcFailure on the first error."""
        calls = []
        for params in params_list:
            self._next_id += 1
            calls.append(
                {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
            )
        answers = self._post(json.dumps(calls).encode())
        by_id = {answer["id"]: answer for answer in answers}
        results = []
        for call in calls:
            answer = by_id[call["id"]]
            if "error" in answer:
                raise RpcFailure(method, answer["error"])
            results.append(answer["result"])
        return results

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def wait_until_serving(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``eth_chainId`` answers on ``port``; raises PeerError if the process
    exits or does not answer within START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    client = RpcClient(port, timeout=2.0)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PeerError(f"exited with status {process.returncode}; see {log}")
        try:
            client.call("eth_chainId")
            client.close()
            return
        except (OSError, http.client.HTTPException, ValueError, RpcFailure):
            time.sleep(0.2)
    raise PeerError(f"not serving on port {port} after {START_TIMEOUT_S:.0f} s; see {log}")


class ProcessGroup:
    """Processes started for a benchmark; :meth:`stop_all` ends each one's session with
    SIGTERM, then SIGKILL after a grace period. Use as a context manager."""

    def __init__(self) -> None:
        """Nothing started yet."""
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self, command: Sequence[str], *, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` in a new session, output to ``log``."""
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
        """Stop one process group: SIGTERM, wait ``grace_s``, then SIGKILL."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process in self._processes:
            self._processes.remove(process)

    def stop_all(self) -> None:
        """Stop every process still running, newest first."""
        for process in reversed(list(self._processes)):
            self.stop(process)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into KeyboardInterrupt so the same clean-up runs on Ctrl-C,
    on ``kill``, and when started in the background (where SIGINT is inherited ignored)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class LianxinNode:
    """A dev chain directory and the node process serving it."""

    directory: Path
    """The chain directory made by ``lianxin init --dev``."""
    port: int
    """The JSON-RPC port."""
    process: subprocess.Popen[bytes]
    """The ``python -m node.daemon`` process."""

    @property
    def url(self) -> str:
        """The JSON-RPC URL."""
        return f"http://127.0.0.1:{self.port}"

    def account(self, name: str = "admin") -> Any:
        """The dev account ``name`` as an ``sdk.account.Sm2Account``."""
        from sdk.account import Sm2Account

        password = (self.directory / "keystore-password").read_bytes().rstrip(b"\r\n")
        keystore = (self.directory / "keys" / f"{name}.json").read_bytes()
        return Sm2Account.from_keystore(keystore, password)


def lianxin_command() -> list[str]:
    """The ``lianxin`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "lianxin"
    if script.exists():
        return [str(script)]
    found = shutil.which("lianxin")
    if found is None:
        raise PeerError("the lianxin console script is not installed (pip install -e .)")
    return [found]


def start_lianxin(
    group: ProcessGroup,
    workdir: Path,
    *,
    log_level: str = "WARNING",
    source: Path = ROOT,
    name: str = "chain",
) -> LianxinNode:
    """``lianxin init --dev`` a fresh chain ``workdir/name`` on a free port and start
    ``python -m node.daemon`` on it, importing the node from the source tree ``source``
    (another checkout, e.g. ``git archive`` of an earlier commit, compares two versions in
    one run)."""
    directory = workdir / name
    port = free_port()
    subprocess.run(
        [*lianxin_command(), "init", str(directory), "--dev", "--rpc-port", str(port)],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    log = workdir / f"{name}-node.log"
    process = group.start(
        [
            sys.executable,
            "-m",
            "node.daemon",
            "--config",
            str(directory / "node.toml"),
            "--log-level",
            log_level,
        ],
        cwd=source,
        log=log,
    )
    wait_until_serving(port, process, log)
    return LianxinNode(directory=directory, port=port, process=process)


def ensure_hardhat() -> Path:
    """Install Hardhat under bench/.peers/hardhat if it is not there; return that folder."""
    binary = HARDHAT_DIR / "node_modules" / ".bin" / "hardhat"
    if not binary.exists():
        if shutil.which("npm") is None:
            raise PeerError("npm is not installed; Hardhat needs Node.js 20 and npm")
        HARDHAT_DIR.mkdir(parents=True, exist_ok=True)
        if not (HARDHAT_DIR / "package.json").exists():
            (HARDHAT_DIR / "package.json").write_text(
                '{"name": "lianxin-bench-hardhat", "private": true}\n', encoding="utf-8"
            )
        print(f"installing hardhat@{HARDHAT_VERSION} into {HARDHAT_DIR} ...", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"hardhat@{HARDHAT_VERSION}"],
            cwd=HARDHAT_DIR,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    (HARDHAT_DIR / "hardhat.config.js").write_text(HARDHAT_CONFIG, encoding="utf-8")
    return HARDHAT_DIR


@dataclass
class HardhatNode:
    """A ``hardhat node`` process."""

    port: int
    """The JSON-RPC port."""
    process: subprocess.Popen[bytes]
    """The npx process (its session holds the node)."""

    @property
    def url(self) -> str:
        """The JSON-RPC URL."""
        return f"http://127.0.0.1:{self.port}"


def start_hardhat(group: ProcessGroup, workdir: Path) -> HardhatNode:
    """Start ``npx hardhat node`` on a free port of 127.0.0.1."""
    folder = ensure_hardhat()
    port = free_port()
    log = workdir / "hardhat.log"
    env_npx = shutil.which("npx") or "npx"
    process = group.start(
        [env_npx, "hardhat", "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        log=log,
    )
    wait_until_serving(port, process, log)
    return HardhatNode(port=port, process=process)


def node_pid(process: subprocess.Popen[bytes]) -> int:
    """The pid doing the serving: ``process`` itself, or for ``npx`` its node.js child."""
    return node_pid_of(process.pid)


def child_pids(pid: int) -> list[int]:
    """Pids whose parent is ``pid``, oldest first (from ``/proc/<pid>/stat``)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name in parentheses may hold spaces; fields after it are fixed.
            fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return sorted(children)


def node_pid_of(pid: int) -> int:
    """Follow the chain of started processes (npx → node) down to the last one."""
    children = child_pids(pid)
    return node_pid_of(children[-1]) if children else pid


def eth_tester_web3() -> Any:
    """A web3.py client on a fresh in-process eth-tester (py-evm) chain."""
    from web3 import EthereumTesterProvider, Web3

    return Web3(EthereumTesterProvider())


def ensure_py_spy() -> Path:
    """The py-spy binary: on PATH, or installed from PyPI under bench/.peers/py-spy."""
    found = shutil.which("py-spy")
    if found is not None:
        return Path(found)
    binary = PY_SPY_DIR / "bin" / "py-spy"
    if not binary.exists():
        print(f"installing py-spy=={PY_SPY_VERSION} into {PY_SPY_DIR} ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(PY_SPY_DIR),
                f"py-spy=={PY_SPY_VERSION}",
            ],
            check=True,
        )
    return binary


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
