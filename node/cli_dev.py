"""``lianxin dev``: a local dev chain and the registry service, together, in the foreground.

The registry runs as its own process (``python -m registry.cli``): the node never imports the
trust service, it only starts it, the way an operator would. On first run the registry's trust
contracts are deployed and its department registered (``registry.cli bootstrap``); the
result is kept in ``<chain>/registry/bootstrap.json`` so later runs reuse the same contracts.
Each dev department then gets a registry client (``registry.cli clients add``) whose SM2 key
is kept in clear, readable by its owner only, in ``<chain>/registry-clients/<name>.pem``,
beside ``<name>.json`` (client id, department, issuer codes) — fine for a local dev chain,
never in production.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from node.cli_common import console, fail, rpc_url
from node.rpc_client import RpcError, rpc_call

if TYPE_CHECKING:
    from node.chain_dir import ChainDir

DEV_DEPARTMENT_USCC = "91350100M000100Y43"
"""A well-formed unified social credit code for the dev chain's own department."""
DEV_DEPARTMENT_NAME = "本地开发部门"
REGISTRY_SIGNER = "dept-a"
"""The dev account the registry signs anchoring transactions with (holds the issuer role)."""
GOVERNANCE_KEY = "admin"
STARTUP_TIMEOUT_S = 60.0
REGISTRY_CLIENTS_DIR = "registry-clients"
"""Folder of a chain directory holding the dev departments' registry client keys."""
DEV_CLIENT_ROLES = ("notarize", "verify", "licenses", "data", "identity", "subject")
"""Roles of a dev department's registry client: everything the registry offers."""


@dataclass(frozen=True)
class DevDepartment:
    """A department of the dev chain that calls the registry."""

    name: str
    """Short name: the file names of its client under ``registry-clients/``."""
    display_name: str
    """The department's name, shown as the issuer of what it issues."""
    uscc: str
    """Its unified social credit code (well-formed, check character included)."""
    division_code: str
    """The administrative division (GB/T 2260) it may also issue licenses as."""


DEV_DIVISION_CODE = "350102"
"""The dev chain's district (an administrative division code)."""
DEV_DEPARTMENTS = (
    DevDepartment("market", "本地开发区市场监督管理局", "11350102MB00010016", DEV_DIVISION_CODE),
    DevDepartment("archives", "本地开发区档案馆", "11350102MB00010029", DEV_DIVISION_CODE),
    DevDepartment("identity", "本地开发区身份认证中心", "11350102MB0001003C", DEV_DIVISION_CODE),
)
"""The dev departments, each provisioned a registry client by ``lianxin dev``."""


@dataclass(frozen=True)
class DevClient:
    """A dev department's registry client, as recorded in ``registry-clients/<name>.json``."""

    department: DevDepartment
    """Whose client it is."""
    client_id: str
    """The id the registry gave it (the ``X-Lianxin-Client`` of its requests)."""
    key_path: Path
    """Its SM2 private key (PKCS#8 PEM)."""


class Stopping(Exception):
    """Ctrl-C (or SIGTERM) arrived while ``lianxin dev`` was still setting up."""


@dataclass
class StopFlag:
    """Set by the SIGINT/SIGTERM handler; every setup step looks at it."""

    raised: bool = False

    def check(self) -> None:
        if self.raised:
            raise Stopping


STEP_POLL_S = 0.1
"""How often a setup step's child process is checked while it runs."""


def run_step(
    command: Sequence[str], env: dict[str, str], stop: StopFlag
) -> tuple[int, bytes, bytes]:
    """Run one setup command to its end and return (status, stdout, stderr); when ``stop``
    is raised meanwhile, terminate it and raise :class:`Stopping` at once, so that Ctrl-C
    during a first run's setup stops within a second, not when the setup is done."""
    stop.check()
    process = subprocess.Popen(
        list(command),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    while True:
        try:
            out, err = process.communicate(timeout=STEP_POLL_S)
            return process.returncode, out, err
        except subprocess.TimeoutExpired:
            if stop.raised:
                process.terminate()
                try:
                    process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
                raise Stopping from None


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


def _wait_until(child: Child, ready: Callable[[], bool], what: str, stop: StopFlag) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        stop.check()
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


def registry_environment(
    chain: ChainDir, node_url: str | None, inherited: Mapping[str, str], *, override: bool
) -> dict[str, str]:
    """``inherited`` plus the ``LIANXIN_REGISTRY_*`` settings that point the registry at this
    chain: its data under ``<chain>/registry``, its node, and the dev account it signs with
    (where the chain has one). With ``override`` False a setting ``inherited`` has already
    stays, and the data dir is not set when a database URL is."""
    settings = {"LIANXIN_REGISTRY_DATA_DIR": str(chain.root / "registry")}
    if node_url is not None:
        settings["LIANXIN_REGISTRY_NODE_URL"] = node_url
    signer = chain.keys / f"{REGISTRY_SIGNER}.json"
    if signer.exists():
        settings["LIANXIN_REGISTRY_SIGNER_KEYSTORE"] = str(signer)
    if chain.password_file.exists():
        settings["LIANXIN_REGISTRY_SIGNER_PASSWORD_FILE"] = str(chain.password_file)
    env = dict(inherited)
    if override:
        env.update(settings)
        return env
    if "LIANXIN_REGISTRY_DATABASE_URL" in env:
        del settings["LIANXIN_REGISTRY_DATA_DIR"]
    for name, value in settings.items():
        env.setdefault(name, value)
    return env


def registry_cli_environment(directory: Path, inherited: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``lianxin registry ...``: the registry of the chain in
    ``directory`` unless ``LIANXIN_REGISTRY_*`` variables say otherwise. Its data is looked
    for in ``<directory>/registry`` even when there is no chain there yet, so that nothing
    lands in a stray folder of the working directory."""
    from node.chain_dir import ChainDir

    chain = ChainDir(directory)
    node_url = rpc_url(directory, None) if chain.config.exists() else None
    return registry_environment(chain, node_url, inherited, override=False)


def bootstrap_registry(chain: ChainDir, env: dict[str, str], stop: StopFlag) -> Path:
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
    status, out, err = run_step(command, env, stop)
    if status != 0:
        raise fail(f"registry bootstrap failed: {err.decode(errors='replace').strip()}")
    record.write_bytes(out)
    return record


def provision_dev_clients(chain: ChainDir, env: dict[str, str], stop: StopFlag) -> list[DevClient]:
    """A registry client for each dev department, registered once per chain: a new SM2 key
    (``registry-clients/<name>.pem``, mode 0600), its public half (``<name>.pub.pem``), and
    the client the registry made of it (``<name>.json``), bound to the department's USCC
    and district, its department and key registered on chain by the governance account
    (so that what it signs verifies as its department's). Later runs read what is
    recorded."""
    return [_provision_dev_client(chain, department, env, stop) for department in DEV_DEPARTMENTS]


def _provision_dev_client(
    chain: ChainDir, department: DevDepartment, env: dict[str, str], stop: StopFlag
) -> DevClient:
    from chain.crypto import PrivateKey
    from node.chain_dir import write_private

    folder = chain.root / REGISTRY_CLIENTS_DIR
    record = folder / f"{department.name}.json"
    key_path = folder / f"{department.name}.pem"
    if record.exists():
        recorded = json.loads(record.read_text(encoding="utf-8"))
        return DevClient(department, str(recorded["client_id"]), key_path)
    if key_path.exists():
        key = PrivateKey.from_pem(key_path.read_bytes())
    else:
        key = PrivateKey.generate()
        write_private(key_path, key.to_pem())
    public_path = folder / f"{department.name}.pub.pem"
    public_path.write_bytes(key.public_key.to_pem())
    status, out, err = run_step(_clients_add_command(chain, department, public_path), env, stop)
    if status != 0:
        raise fail(
            f"registering the registry client of {department.name} failed: "
            f"{err.decode(errors='replace').strip()}"
        )
    added = json.loads(out)
    summary: dict[str, Any] = {
        "client_id": str(added["id"]),
        "name": added["name"],
        "uscc": added["uscc"],
        "issuer_codes": added["issuer_codes"],
        "roles": added["roles"],
        "private_key": key_path.name,
        "public_key": public_path.name,
    }
    record.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return DevClient(department, summary["client_id"], key_path)


def _clients_add_command(
    chain: ChainDir, department: DevDepartment, public_key_pem: Path
) -> list[str]:
    """``registry clients add`` of ``department``'s client: every role, bound to its USCC
    (always) and its district's division code, its key registered on chain by the dev
    chain's governance account."""
    command = [
        sys.executable, "-m", "registry.cli", "clients", "add",
        "--name", department.display_name,
        "--uscc", department.uscc,
        "--public-key-pem", str(public_key_pem),
        "--issuer-code", department.division_code,
        "--governance-keystore", str(chain.keystore(GOVERNANCE_KEY)),
        "--governance-password-file", str(chain.password_file),
    ]  # fmt: skip
    for role in DEV_CLIENT_ROLES:
        command += ["--role", role]
    return command


def run_dev(directory: Path, *, registry_port: int) -> int:
    """Run the node and the registry until SIGINT/SIGTERM; return the exit status."""
    from node.chain_dir import ChainDir

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
    stop = StopFlag()

    def on_signal(signum: int, frame: object) -> None:
        stop.raised = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _wait_until(node, lambda: _node_answers(node_url), "the node", stop)
        registry_env = registry_environment(chain, node_url, os.environ, override=True)
        bootstrap_registry(chain, registry_env, stop)
        clients = provision_dev_clients(chain, registry_env, stop)
        base = f"http://127.0.0.1:{registry_port}"
        stop.check()
        registry = _start(
            "registry",
            [sys.executable, "-m", "registry.cli", "start", "--port", str(registry_port)],
            chain.root / "registry.log",
            registry_env,
        )
        children.append(registry)
        _wait_until(registry, lambda: _http_answers(f"{base}/docs"), "the registry", stop)
        accounts = _unlocked_accounts(node_url)
        print_banner(
            directory, node_url, base, clients, [node.log_path, registry.log_path], accounts
        )
        while not stop.raised and all(child.process.poll() is None for child in children):
            time.sleep(0.2)
    except Stopping:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        statuses = [child.stop() for child in reversed(children)]
    if stop.raised:
        console.print("stopped")
        return 0
    failed = [c for c in children if c.process.returncode not in (0, -signal.SIGTERM)]
    for child in failed:
        console.print(
            f"{child.name} exited with status {child.process.returncode}; see {child.log_path}"
        )
    return 1 if failed or any(s not in (0, -signal.SIGTERM) for s in statuses) else 0


def _unlocked_accounts(node_url: str) -> list[str]:
    """The accounts the node signs for (``eth_accounts``)."""
    try:
        answer = rpc_call(node_url, "eth_accounts", timeout=5)
    except RpcError:
        return []
    return [str(address) for address in answer] if isinstance(answer, list) else []


def print_banner(
    directory: Path,
    node_url: str,
    base: str,
    clients: list[DevClient],
    logs: list[Path],
    accounts: list[str] | None = None,
) -> None:
    """Where everything is served, the accounts the node holds unlocked for Ethereum tools,
    the dev departments' registry clients, and how to use one of them."""
    table = Table(title=f"lianxin dev chain in {directory}  (Ctrl-C stops)", show_header=False)
    table.add_row("JSON-RPC", node_url)
    table.add_row(
        "unlocked accounts",
        ", ".join(accounts)
        if accounts
        else 'none: add dev_accounts_dir = "keys" to node.toml (docs/ethereum-compat.md)',
    )
    table.add_row("registry API", f"{base}/v1")
    table.add_row("API docs", f"{base}/docs")
    table.add_row("health", f"{base}/healthz, {base}/readyz")
    table.add_row("verify page", f"{base}/v/<license identifier or token>")
    table.add_row("logs", ", ".join(str(log) for log in logs))
    lines = ["Registry clients of the dev departments (keys in clear: for a dev chain only):"]
    for client in clients:
        department = client.department
        lines += [
            f"  {department.name}: {department.display_name}, USCC {department.uscc}, "
            f"may issue as {department.uscc} or {department.division_code}",
            f"    client id {client.client_id}, key {client.key_path}",
        ]
    if clients:
        first = clients[0]
        lines += [
            "Try it (README.md, “The registry on the dev chain”, has more):",
            "  .venv/bin/python -c 'from pathlib import Path; from chain.crypto import "
            "PrivateKey; from sdk.trust import TrustClient; "
            f'c = TrustClient("{base}", "{first.client_id}", '
            f'PrivateKey.from_pem(Path("{first.key_path}").read_bytes())); '
            'print(c.notarize(document=b"hello"))\'',
        ]
    # One print, so that whoever watches the output sees the banner whole.
    console.print(Group(table, Text("\n".join(lines))), soft_wrap=True, highlight=False)
