"""The ``lianxin`` command line for node operators.

Exit codes (see :mod:`node.cli_common`): 0 success, 1 the checked thing is bad (e.g.
verify-chain found a fault), 2 usage or configuration error, 3 the node could not be reached.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from chain.crypto import PrivateKey
from chain.errors import ChainError
from node.chain_dir import (
    ChainDir,
    ChainDirError,
    init_chain_dir,
    keystore_address,
    save_key,
)
from node.cli_accounts import accounts_app
from node.cli_backup import register as register_backup
from node.cli_common import (
    DEFAULT_DIR,
    EXIT_BAD,
    EXIT_USAGE,
    DirOption,
    JsonOption,
    PasswordOption,
    RpcOption,
    block_tag,
    call,
    chain_password,
    console,
    emit,
    errors,
    fail,
    load_signing_key,
    read_password,
    rpc_url,
)
from node.cli_contract import contract_app
from node.cli_dev import registry_cli_environment, run_dev
from node.cli_net import net_app, net_init
from node.cli_validators import validators_app
from node.config import ConfigError, NodeConfig, load_config
from node.genesis_file import load_genesis
from node.health import DEFAULT_STALL_AFTER_S, probe
from node.rpc_client import RpcError, rpc_call
from node.storage.lmdb_store import LmdbBlockStore

DEV_ACCOUNTS_HELP = "funded dev accounts that all deploy and send; admin holds every role"
"""What ``init --dev`` and ``net init --dev`` make (see node.chain_dir.DEV_ACCOUNTS)."""
BACKGROUND_START_TIMEOUT_S = 60.0
"""Longest ``node start --background`` waits for the node to answer JSON-RPC."""

app = typer.Typer(help="lianxin (链信): operate a consortium chain node.", no_args_is_help=True)
node_app = typer.Typer(help="Start, stop and inspect the node process.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage SM2 account keys (SM4 keystores).", no_args_is_help=True)
app.add_typer(node_app, name="node")
register_backup(node_app)
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(contract_app, name="contract")
app.add_typer(net_app, name="net")
app.add_typer(validators_app, name="validators")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="chain directory to create")] = DEFAULT_DIR,
    dev: Annotated[bool, typer.Option("--dev", help=DEV_ACCOUNTS_HELP)] = False,
    chain_id: Annotated[int, typer.Option(help="chain id")] = 20_261_126,
    rpc_port: Annotated[int, typer.Option(help="JSON-RPC port")] = 8545,
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
    validators: Annotated[
        int, typer.Option(help="validators; more than one makes a local network (`lianxin net`)")
    ] = 1,
    observers: Annotated[int, typer.Option(help="non-voting full nodes of a network")] = 0,
    p2p_port: Annotated[int, typer.Option(help="p2p port of node-0 of a network")] = 26656,
) -> None:
    """Create a chain directory: genesis, encrypted validator key(s), node config(s). With
    --validators N (N > 1) it is `lianxin net init`: one folder per node on 127.0.0.1."""
    if validators > 1 or observers > 0:
        net_init(
            directory,
            validators=validators,
            observers=observers,
            dev=dev,
            chain_id=chain_id,
            rpc_port=rpc_port,
            p2p_port=p2p_port,
            password_file=password_file,
            as_json=as_json,
        )
        return
    password = read_password(password_file, confirm=True, allow_none=dev)
    try:
        result = init_chain_dir(
            directory,
            password=password,
            dev=dev,
            chain_id=chain_id,
            rpc_port=rpc_port,
            timestamp_ms=int(time.time() * 1000),
        )
    except ChainError as exc:
        raise fail(str(exc)) from exc
    summary = {
        "directory": str(directory),
        "chain_id": result.genesis.chain_id,
        "validator": result.genesis.validators[0].address.hex(),
        "accounts": {name: "0x" + address.hex() for name, address in result.accounts.items()},
    }
    emit(summary, as_json)


@node_app.command("start")
def node_start(
    directory: DirOption = DEFAULT_DIR,
    background: Annotated[bool, typer.Option("--background", "-b", help="detach")] = False,
    log_level: Annotated[str, typer.Option(help="log level")] = "INFO",
    confirm_restored_wal: Annotated[
        bool,
        typer.Option(
            "--confirm-restored-wal",
            help="start a validator restored from a backup: only once the node it replaces "
            "can never run again (else it may sign twice in one slot)",
        ),
    ] = False,
) -> None:
    """Run the node in the foreground (Ctrl-C stops it cleanly) or in the background; in the
    background, return once it answers JSON-RPC, or fail with its error and no pid file."""
    chain = ChainDir(directory)
    if not chain.config.exists():
        raise fail(f"{chain.config} not found; run `lianxin init` first")
    command = [sys.executable, "-m", "node.daemon", "--config", str(chain.config)]
    command += ["--log-level", log_level]
    if confirm_restored_wal:
        command.append("--confirm-restored-wal")
    if not background:
        os.execv(sys.executable, command)
    pid_file, log_file = chain.root / "node.pid", chain.root / "node.log"
    if _running_pid(pid_file) is not None:
        raise fail(f"the node is already running (pid file {pid_file})")
    try:
        config = load_config(chain.config)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    # Another process answering on the node's port would look like the node answering.
    for host, port in _listen_addresses(config):
        _require_free_port(host, port)
    log_start = log_file.stat().st_size if log_file.exists() else 0
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n", encoding="utf-8")
    url = f"http://{config.rpc_host}:{config.rpc_port}"
    try:
        _wait_until_serving(process, url, log_file, log_start)
    except typer.Exit:
        pid_file.unlink(missing_ok=True)
        raise
    console.print(f"node started: pid {process.pid}, JSON-RPC {url}, log {log_file}")


def _listen_addresses(config: NodeConfig) -> list[tuple[str, int]]:
    """The (host, port) pairs the node will listen on: JSON-RPC, and p2p for a node with
    peers (port 0 means "any free port" and is never taken)."""
    addresses = [(config.rpc_host, config.rpc_port)]
    if config.peers:
        addresses.append((config.p2p_host, config.p2p_port))
    return [(host, port) for host, port in addresses if port != 0]


def _require_free_port(host: str, port: int) -> None:
    """Exit 2 if something listens on ``host:port`` already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a server binds: a port left in TIME_WAIT by a stopped node counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise fail(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(another node or program uses it; change the port in node.toml)"
            ) from exc


def _wait_until_serving(
    process: subprocess.Popen[bytes], url: str, log_file: Path, log_start: int
) -> None:
    """Return once the node ``process`` answers at ``url``. If it exits first, or does not
    answer within BACKGROUND_START_TIMEOUT_S (it is then stopped), exit with the last line
    it logged."""
    deadline = time.monotonic() + BACKGROUND_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            reason = _last_log_line(log_file, log_start)
            raise fail(
                f"the node exited with status {process.returncode}: {reason} (log {log_file})",
                EXIT_BAD,
            )
        try:
            rpc_call(url, "eth_blockNumber", timeout=1)
        except RpcError:
            time.sleep(0.1)
            continue
        if process.poll() is None:
            return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    raise fail(
        f"the node did not answer at {url} within {BACKGROUND_START_TIMEOUT_S:.0f} s and was "
        f"stopped: {_last_log_line(log_file, log_start)} (log {log_file})",
        EXIT_BAD,
    )


def _last_log_line(log_file: Path, start: int) -> str:
    """The last non-empty line written to ``log_file`` after byte ``start``."""
    try:
        with open(log_file, "rb") as log:
            log.seek(start)
            lines = log.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    written = [line.strip() for line in lines if line.strip()]
    return written[-1] if written else "(nothing logged)"


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


@node_app.command("stop")
def node_stop(directory: DirOption = DEFAULT_DIR) -> None:
    """Stop a background node (SIGTERM, then wait for it to exit)."""
    pid_file = ChainDir(directory).root / "node.pid"
    pid = _running_pid(pid_file)
    if pid is None:
        raise fail("no running node", EXIT_BAD)
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        if _running_pid(pid_file) is None:
            break
        time.sleep(0.05)
    else:
        raise fail(f"node {pid} did not stop within 10 s", EXIT_BAD)
    pid_file.unlink(missing_ok=True)
    console.print(f"node {pid} stopped")


@node_app.command("status")
def node_status(
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
    stall_after: Annotated[
        float, typer.Option(help="seconds without a commit that count as stalled")
    ] = DEFAULT_STALL_AFTER_S,
) -> None:
    """Is the node healthy, and if not, why. Exit code for monitoring scripts: 0 ok,
    1 warning (a peer not connected), 2 critical (no commit for --stall-after seconds),
    3 unknown (no answer)."""
    url = rpc_url(directory, rpc)
    health, status = probe(url, stall_after_s=stall_after)
    status["pid"] = _running_pid(ChainDir(directory).root / "node.pid")
    status["health"] = health.verdict
    status["reasons"] = health.reasons
    emit(status, as_json)
    if health.code:
        raise typer.Exit(health.code)


@app.command()
def block(
    number: Annotated[str, typer.Argument(help="height or 'latest'")],
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a block."""
    tag = block_tag(number)
    _show(
        rpc_url(directory, rpc), "eth_getBlockByNumber", [tag, False], f"no block {number}", as_json
    )


@app.command()
def tx(
    tx_hash: Annotated[str, typer.Argument(help="transaction hash (0x…)")],
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a committed transaction."""
    url = rpc_url(directory, rpc)
    _show(url, "eth_getTransactionByHash", [tx_hash], f"no transaction {tx_hash}", as_json)


@app.command()
def receipt(
    tx_hash: Annotated[str, typer.Argument(help="transaction hash (0x…)")],
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a transaction's receipt."""
    url = rpc_url(directory, rpc)
    _show(url, "eth_getTransactionReceipt", [tx_hash], f"no receipt for {tx_hash}", as_json)


def _show(url: str, method: str, params: list[Any], missing: str, as_json: bool) -> None:
    """Print what ``method`` returns; exit 1 with ``missing`` if it returns nothing."""
    result = call(url, method, params)
    if result is None:
        raise fail(missing, EXIT_BAD)
    emit(result, as_json)


@app.command("verify-chain")
def verify_chain_command(directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """Re-verify every stored block from genesis (hashes, Merkle roots, signatures,
    certificates, state roots by re-execution). Stop the node first: this opens its store."""
    # Re-executing blocks needs the EVM; imported here so other commands start quickly.
    from node.verify import verify_chain

    try:
        config = load_config(ChainDir(directory).config)
        genesis = load_genesis(config.genesis)
        store = LmdbBlockStore.open(config.data_dir / "blocks")
    except (ConfigError, ChainError) as exc:
        raise fail(str(exc)) from exc
    with (
        store,
        Progress(
            TextColumn("verifying"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(),
            console=errors,
            disable=as_json,
        ) as progress,
    ):
        task = progress.add_task("verify", total=None)

        def advance(height: int, head: int) -> None:
            progress.update(task, completed=height + 1, total=head + 1)

        fault = verify_chain(store, genesis, progress=advance)
        head = store.head()
    result: dict[str, Any] = {"ok": fault is None, "head": None if head is None else head.height}
    if fault is not None:
        result.update(first_bad_height=fault.height, reason=fault.reason)
    emit(result, as_json)
    if fault is not None:
        raise typer.Exit(EXIT_BAD)


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Argument(help="key name")],
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
) -> None:
    """Generate an SM2 key into an SM4 keystore under keys/."""
    chain = ChainDir(directory)
    key = PrivateKey.generate()
    try:
        save_key(
            chain.keystore(name), key, chain_password(chain, password_file), iterations=300_000
        )
    except ChainError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{name}: 0x{key.public_key.address.hex()}")


@keys_app.command("list")
def keys_list(directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """List the account keystores and their addresses (no password needed)."""
    chain = ChainDir(directory)
    entries = {
        path.stem: "0x" + keystore_address(path).hex() for path in sorted(chain.keys.glob("*.json"))
    }
    if as_json:
        emit(entries, True)
        return
    table = Table("name", "address")
    for name, address in entries.items():
        table.add_row(name, address)
    console.print(table)


@keys_app.command("show")
def keys_show(
    name: str,
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a key's address and public key (decrypts the keystore)."""
    key = load_signing_key(directory, name, password_file)
    emit(
        {
            "name": name,
            "address": "0x" + key.public_key.address.hex(),
            "public_key": "0x" + key.public_key.to_bytes().hex(),
        },
        as_json,
    )


@keys_app.command("export")
def keys_export(
    name: str,
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
    public: Annotated[bool, typer.Option("--public", help="export the public key only")] = False,
) -> None:
    """Print the key as PEM (PKCS#8 private key, or SPKI public key with --public)."""
    key = load_signing_key(directory, name, password_file)
    pem = key.public_key.to_pem() if public else key.to_pem()
    sys.stdout.write(pem.decode())


@keys_app.command("import")
def keys_import(
    name: str,
    pem_file: Annotated[Path, typer.Argument(help="PEM file (PKCS#8 or SEC1), e.g. from openssl")],
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
) -> None:
    """Import an SM2 private key from PEM into an SM4 keystore."""
    chain = ChainDir(directory)
    try:
        key = PrivateKey.from_pem(pem_file.read_bytes())
        save_key(
            chain.keystore(name), key, chain_password(chain, password_file), iterations=300_000
        )
    except (OSError, ChainError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{name}: 0x{key.public_key.address.hex()}")


@app.command()
def dev(
    directory: DirOption = DEFAULT_DIR,
    rpc_port: Annotated[int, typer.Option(help="JSON-RPC port")] = 8545,
    registry_port: Annotated[int, typer.Option(help="registry HTTP port")] = 8600,
) -> None:
    """Create a dev chain in DIR if there is none, then run its node and the registry
    service in the foreground, printing their URLs (Ctrl-C stops both)."""
    if not ChainDir(directory).exists():
        init(
            directory,
            dev=True,
            chain_id=20_261_126,
            rpc_port=rpc_port,
            password_file=None,
            as_json=False,
        )
    raise typer.Exit(run_dev(directory, registry_port=registry_port))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def registry(ctx: typer.Context) -> None:
    """The registry service's own commands (start, bootstrap, clients …), run as its own
    process on the registry of the chain in --dir (default devchain): `lianxin registry
    clients add ...`, `lianxin registry start`, `lianxin registry --help`."""
    args, directory = _split_dir_option(list(ctx.args))
    env = registry_cli_environment(directory, os.environ)
    command = [sys.executable, "-m", "registry.cli", *args]
    os.execve(sys.executable, command, env)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def archives(ctx: typer.Context) -> None:
    """E-archive commands (a fixity audit with a progress bar, offline verification of an
    access copy), run as their own process on the registry of the chain in --dir (default
    devchain): `lianxin archives audit`, `lianxin archives verify DIP.zip --genesis G`."""
    args, directory = _split_dir_option(list(ctx.args))
    env = registry_cli_environment(directory, os.environ)
    command = [sys.executable, "-m", "registry.archives.cli", *args]
    os.execve(sys.executable, command, env)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def data(ctx: typer.Context) -> None:
    """Data-sharing authorizations and access logs (list, show, accesses --verify,
    tracker), a client of the registry run as its own process (`lianxin data --help`)."""
    command = [sys.executable, "-m", "registry.authorizations.cli", *ctx.args]
    os.execve(sys.executable, command, dict(os.environ))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def credit(ctx: typer.Context) -> None:
    """A department's public-credit commands (import a 双公示 file with a progress bar,
    repair), a client of the registry run as its own process (`lianxin credit --help`)."""
    command = [sys.executable, "-m", "registry.credit.cli", *ctx.args]
    os.execve(sys.executable, command, dict(os.environ))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def explorer(ctx: typer.Context) -> None:
    """The auditors' explorer on the chain in --dir (default devchain): its indexer follows
    the chain's node and its pages are served, as their own process (`lianxin explorer
    --help` for its options)."""
    args, directory = _split_dir_option(list(ctx.args))
    command = [sys.executable, "-m", "explorer", *args, "--dir", str(directory)]
    os.execve(sys.executable, command, dict(os.environ))


@app.command("verify-evidence", context_settings={"allow_extra_args": True})
def verify_evidence(
    ctx: typer.Context,
    evidence_file: Annotated[Path, typer.Argument(help="evidence zip exported by the explorer")],
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Verify an explorer evidence zip offline (signatures, Merkle proofs, headers, commit
    certificates; the genesis validator set of --dir is trusted when it is there). Exit 0
    valid, 1 invalid."""
    command = [sys.executable, "-m", "explorer", "verify-evidence", str(evidence_file)]
    os.execve(sys.executable, [*command, "--dir", str(directory), *ctx.args], dict(os.environ))


def _split_dir_option(args: list[str]) -> tuple[list[str], Path]:
    """``args`` without the chain directory option (``--dir DIR``, ``--dir=DIR``, ``-d
    DIR``, anywhere among them), and that directory (DEFAULT_DIR if absent)."""
    rest: list[str] = []
    directory = DEFAULT_DIR
    position = 0
    while position < len(args):
        arg = args[position]
        if arg in ("--dir", "-d"):
            if position + 1 >= len(args):
                raise fail(f"{arg} needs a directory")
            directory = Path(args[position + 1])
            position += 2
            continue
        if arg.startswith("--dir="):
            directory = Path(arg.removeprefix("--dir="))
        else:
            rest.append(arg)
        position += 1
    return rest, directory


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ChainDirError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_USAGE)
