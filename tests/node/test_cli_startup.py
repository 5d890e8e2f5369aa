"""`lianxin --help`, every group's and the light commands' help, light commands that need no
chain directory, and commands that only read one, start without the heavy libraries: each runs
the CLI's entry point in a fresh process and reads which modules it imported. Also, the role
names the help shows without importing the Permissions contract stay equal to its own."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.permissions import ROLE_BITS
from node import cli_accounts, cli_common

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("rlp", "eth_utils", "eth_abi", "eth", "lmdb", "sqlalchemy", "fastapi")
"""Libraries the operator CLI needs for some commands only (encoding, ABI, EVM, store) or never
(the registry's): none may load for help or for a command that does not use them."""

TYPER_IMPORTS = "pydantic"
"""Typer (0.2x) checks every parameter value, the root group's own unset --help among them,
with pydantic: any subcommand loads it, whatever the CLI imports. `lianxin --help` alone does
not."""

GROUPS = ("node", "keys", "accounts", "contract", "net", "validators")
LIGHT_COMMANDS = (
    ("node", "start"),
    ("node", "stop"),
    ("node", "status"),
    ("net", "start"),
    ("net", "stop"),
    ("net", "status"),
    ("keys", "list"),
    ("block",),
    ("tx",),
    ("receipt",),
    ("verify-evidence",),
)
CLI_TIMEOUT_S = 60
"""Longest one command may take."""

FORK_SERVER = """
import json, os, sys
from node.cli import main
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            quiet = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(quiet, fd)
            sys.argv = ["-c", *request["args"]]
            try:
                main()
            except SystemExit as exit:
                code = exit.code
            else:
                code = 0
            with open(request["modules_file"], "w") as out:
                json.dump({"code": code, "modules": sorted(sys.modules)}, out)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    print("done", flush=True)
"""
"""An interpreter that imports the CLI's entry module, as ``lianxin`` does before it runs
``main()``, and nothing else, then runs each command in a fork of itself: every command
starts from the same state a fresh ``lianxin`` has when ``main()`` is called (fork copies
it, and what one command imports never reaches the next), without paying for an interpreter
and the entry module per command. A command that fails with a traceback writes no modules
file, and its test fails reading it."""


class ForkingCli:
    """The fork server of :data:`FORK_SERVER`, one per test module and worker."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, tmp_path: Path, *args: str) -> tuple[int, set[str]]:
        """The exit code of ``lianxin ARGS`` run in a fresh fork of the server, and the
        top-level packages it had imported by then."""
        code, modules = self.modules(tmp_path, *args)
        return code, {name.split(".")[0] for name in modules}

    def modules(self, tmp_path: Path, *args: str) -> tuple[int, set[str]]:
        """The exit code of ``lianxin ARGS`` run in a fresh fork of the server, and every
        module it had imported by then."""
        modules_file = tmp_path / "modules.json"
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"modules_file": str(modules_file), "args": list(args)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], CLI_TIMEOUT_S)
        assert ready, f"lianxin {' '.join(args)} did not finish within {CLI_TIMEOUT_S} s"
        assert self.process.stdout.readline() == "done\n", "the fork server ended"
        result = json.loads(modules_file.read_text(encoding="utf-8"))
        return int(result["code"] or 0), set(result["modules"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def cli() -> Iterator[ForkingCli]:
    server = ForkingCli()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A node URL on a bound port that nothing listens on: a connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


def test_help_imports_no_heavy_library(cli: ForkingCli, tmp_path: Path) -> None:
    code, loaded = cli.run(tmp_path, "--help")
    assert code == 0
    assert loaded.isdisjoint({*HEAVY, TYPER_IMPORTS})


@pytest.mark.parametrize("group", GROUPS)
def test_group_help_imports_no_heavy_library(cli: ForkingCli, tmp_path: Path, group: str) -> None:
    code, loaded = cli.run(tmp_path, group, "--help")
    assert code == 0
    assert loaded.isdisjoint(HEAVY)


@pytest.mark.parametrize("command", LIGHT_COMMANDS, ids=" ".join)
def test_light_command_help_imports_no_heavy_library(
    cli: ForkingCli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    code, loaded = cli.run(tmp_path, *command, "--help")
    assert code == 0
    assert loaded.isdisjoint(HEAVY)


def test_reading_an_unreachable_node_imports_no_heavy_library(
    cli: ForkingCli, tmp_path: Path, refusing_url: str
) -> None:
    code, loaded = cli.run(tmp_path, "block", "latest", "--rpc", refusing_url)
    assert code == cli_common.EXIT_UNREACHABLE
    assert loaded.isdisjoint(HEAVY)


def test_stopping_no_node_imports_no_heavy_library(cli: ForkingCli, tmp_path: Path) -> None:
    code, loaded = cli.run(tmp_path, "node", "stop", "--dir", str(tmp_path))
    assert code == cli_common.EXIT_BAD
    assert loaded.isdisjoint(HEAVY)


@pytest.fixture(scope="module")
def chain_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A stopped dev chain and a stopped two-validator network."""
    from node.chain_dir import init_chain_dir

    root = tmp_path_factory.mktemp("chains")
    common = {"password": None, "dev": True, "timestamp_ms": 1, "iterations": 1_000}
    init_chain_dir(root / "one", **common)  # type: ignore[arg-type]
    init_chain_dir(root / "net", validators=2, **common)  # type: ignore[arg-type]
    return {"one": root / "one", "net": root / "net"}


@pytest.mark.parametrize(
    ("command", "chain", "exit_code"),
    [
        (("keys", "list"), "one", 0),
        (("node", "status"), "one", cli_common.EXIT_UNREACHABLE),
        (("net", "status"), "net", cli_common.EXIT_UNREACHABLE),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_reading_a_chain_directory_imports_no_heavy_library(
    cli: ForkingCli,
    tmp_path: Path,
    chain_dirs: dict[str, Path],
    command: tuple[str, ...],
    chain: str,
    exit_code: int,
) -> None:
    # A chain directory is read without the genesis and system contracts that create one.
    code, loaded = cli.run(tmp_path, *command, "--dir", str(chain_dirs[chain]))
    assert code == exit_code
    assert loaded.isdisjoint(HEAVY)


FRESH_RUN = """
import json, sys
from node.cli import main
modules_file = sys.argv.pop(1)
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
with open(modules_file, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


@pytest.mark.parametrize("command", [("--help",), ("net", "status", "--help")], ids=" ".join)
def test_a_fork_of_the_server_imports_what_a_fresh_interpreter_imports(
    cli: ForkingCli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # The checks above run in forks of one server: each must see the modules a fresh
    # `lianxin` would, no fewer (a heavy import hidden) and no more.
    modules_file = tmp_path / "fresh.json"
    subprocess.run(
        [sys.executable, "-c", FRESH_RUN, str(modules_file), *command],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=CLI_TIMEOUT_S,
    )
    fresh = json.loads(modules_file.read_text(encoding="utf-8"))
    assert cli.modules(tmp_path, *command) == (int(fresh["code"] or 0), set(fresh["modules"]))


def test_python_m_node_cli_runs_the_cli() -> None:
    # bench/bench_registry.py falls back to `python -m node.cli` where no lianxin script is.
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0
    assert "operate a consortium chain node" in done.stdout


def test_role_names_in_help_are_those_of_the_permissions_contract() -> None:
    assert tuple(ROLE_BITS) == cli_accounts.ROLE_NAMES
