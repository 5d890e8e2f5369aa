"""``lianxin net``: a local network of validators on one host.

``net init`` creates a chain directory with N validator folders (``node-0`` …), ``net start``
runs each validator as a background process (pid file ``node.pid`` and log ``node.log`` in
its folder), ``net stop`` stops them, and ``net status`` asks each one for its consensus
status (``lianxin_getConsensusStatus``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from node.cli_common import (
    DEFAULT_DIR,
    DEV_ACCOUNTS_HELP,
    EXIT_BAD,
    DirOption,
    JsonOption,
    PasswordOption,
    console,
    emit,
    fail,
    node_folder,
    node_folders,
    read_password,
)
from node.health import DEFAULT_STALL_AFTER_S, probe
from node.pid_files import pid_file, running_pid
from node.rpc_client import RpcError, rpc_call

net_app = typer.Typer(help="Run a local network of validators.", no_args_is_help=True)

NodeOption = Annotated[
    int | None, typer.Option("--node", "-n", help="only this validator index (default: all)")
]
STOP_WAIT_S = 10.0


def _node_dirs(directory: Path, only: int | None) -> list[Path]:
    return node_folders(directory) if only is None else [node_folder(directory, only)]


def _rpc_url(folder: Path) -> str:
    from node.config import ConfigError, load_config

    try:
        config = load_config(folder / "node.toml")
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    return f"http://{config.rpc_host}:{config.rpc_port}"


@net_app.command("init")
def net_init(
    directory: Annotated[Path, typer.Argument(help="chain directory to create")] = DEFAULT_DIR,
    validators: Annotated[int, typer.Option(help="number of validators")] = 4,
    observers: Annotated[
        int, typer.Option(help="non-voting full nodes after the validators (follow and serve)")
    ] = 0,
    dev: Annotated[bool, typer.Option("--dev", help=DEV_ACCOUNTS_HELP)] = False,
    chain_id: Annotated[int, typer.Option(help="chain id")] = 20_261_126,
    rpc_port: Annotated[int, typer.Option(help="JSON-RPC port of node-0 (node-i: +i)")] = 8545,
    p2p_port: Annotated[int, typer.Option(help="p2p port of node-0 (node-i: +i)")] = 26656,
    password_file: PasswordOption = None,
    hosts: Annotated[
        str | None,
        typer.Option(
            help="comma-separated address of each node, one node per host: node-i listens "
            "on the i-th and the others dial it there, every node on the same ports"
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a chain directory with VALIDATORS validator folders (and OBSERVERS non-voting
    node folders after them), on 127.0.0.1 with consecutive ports, or one per --hosts
    address. `lianxin net bundle` then splits it into one directory per host."""
    from chain.errors import ChainError
    from node.chain_dir import init_chain_dir

    if validators < 2:
        raise fail("a network needs at least 2 validators (use `lianxin init` for one)")
    host_list = None if hosts is None else [h.strip() for h in hosts.split(",") if h.strip()]

    def address(index: int) -> tuple[str, int, int]:
        if host_list is None:
            return "127.0.0.1", rpc_port + index, p2p_port + index
        return host_list[index], rpc_port, p2p_port

    password = read_password(password_file, confirm=True, allow_none=dev)
    try:
        result = init_chain_dir(
            directory,
            password=password,
            dev=dev,
            chain_id=chain_id,
            rpc_port=rpc_port,
            p2p_port=p2p_port,
            validators=validators,
            observers=observers,
            timestamp_ms=int(time.time() * 1000),
            hosts=host_list,
        )
    except ChainError as exc:
        raise fail(str(exc)) from exc
    summary = {
        "directory": str(directory),
        "chain_id": result.genesis.chain_id,
        "validators": [
            {
                "name": v.name,
                "address": "0x" + v.address.hex(),
                "folder": str(result.nodes[index]),
                "rpc": "http://{}:{}".format(*address(index)[:2]),
                "p2p": f"{address(index)[0]}:{address(index)[2]}",
            }
            for index, v in enumerate(result.genesis.validators)
        ],
        "observers": [
            {
                "folder": str(folder),
                "rpc": "http://{}:{}".format(*address(index)[:2]),
                "p2p": f"{address(index)[0]}:{address(index)[2]}",
            }
            for index, folder in enumerate(result.nodes)
            if index >= validators
        ],
        "accounts": {name: "0x" + address.hex() for name, address in result.accounts.items()},
    }
    emit(summary, as_json)


@net_app.command("bundle")
def net_bundle(
    out: Annotated[Path, typer.Argument(help="new directory for the per-host bundles")],
    directory: DirOption = DEFAULT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Split the network in --dir into one directory per node (genesis, node.toml and that
    node's own validator keystore, nothing of any other), each to copy to its host. The
    keystore password is in none of them."""
    from chain.errors import ChainError
    from node.net_bundle import bundle_network

    try:
        bundles = bundle_network(directory, out)
    except ChainError as exc:
        raise fail(str(exc)) from exc
    emit({"bundles": [str(bundle) for bundle in bundles]}, as_json)


@net_app.command("start")
def net_start(
    directory: DirOption = DEFAULT_DIR,
    node: NodeOption = None,
    log_level: Annotated[str, typer.Option(help="log level")] = "INFO",
    wait: Annotated[bool, typer.Option(help="wait until each node answers JSON-RPC")] = True,
) -> None:
    """Start the validators as background processes."""
    started = []
    for folder in _node_dirs(directory, node):
        if running_pid(pid_file(folder)) is not None:
            console.print(f"{folder.name}: already running")
            continue
        command = [sys.executable, "-m", "node.daemon", "--config", str(folder / "node.toml")]
        command += ["--log-level", log_level]
        with open(folder / "node.log", "ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        pid_file(folder).write_text(f"{process.pid}\n", encoding="utf-8")
        started.append((folder, process))
    for folder, process in started:
        url = _rpc_url(folder)
        deadline = time.monotonic() + 30
        while wait and time.monotonic() < deadline:
            if process.poll() is not None:
                raise fail(f"{folder.name} exited with {process.returncode}; see its node.log")
            try:
                rpc_call(url, "eth_blockNumber", [], timeout=1)
                break
            except RpcError:
                time.sleep(0.1)
        console.print(f"{folder.name}: pid {process.pid}, JSON-RPC {url}")


@net_app.command("stop")
def net_stop(directory: DirOption = DEFAULT_DIR, node: NodeOption = None) -> None:
    """Stop the validators (SIGTERM, then wait for each to exit)."""
    stopping = []
    for folder in _node_dirs(directory, node):
        pid = running_pid(pid_file(folder))
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        stopping.append((folder, pid))
    deadline = time.monotonic() + STOP_WAIT_S
    stuck = []
    for folder, pid in stopping:
        while running_pid(pid_file(folder)) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if running_pid(pid_file(folder)) is not None:
            stuck.append(folder.name)
            continue
        pid_file(folder).unlink(missing_ok=True)
        console.print(f"{folder.name}: pid {pid} stopped")
    if stuck:
        raise fail(f"did not stop within {STOP_WAIT_S:.0f} s: {', '.join(stuck)}", EXIT_BAD)


def _status_row(folder: Path, stall_after_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {"node": folder.name, "pid": running_pid(pid_file(folder))}
    health, read = probe(_rpc_url(folder), stall_after_s=stall_after_s)
    row["health"], row["code"], row["reasons"] = health.verdict, health.code, health.reasons
    row["version"] = read.get("version")
    row["schedule_digest"] = read.get("schedule_digest")
    try:
        # Of the shape node.rpc_client checks: height, round and headHeight are quantities.
        status = rpc_call(_rpc_url(folder), "lianxin_getConsensusStatus", [], timeout=2)
    except RpcError as exc:
        row["error"] = str(exc)
        return row
    for key in ("height", "round"):
        row[key] = int(status[key], 16)
    row["step"] = status.get("step")
    row["head"] = int(status.get("headHeight") or status["height"], 16)
    row["peers"] = status.get("peers")
    row["role"] = status.get("role")
    row["counters"] = status.get("counters", {})
    return row


@net_app.command("status")
def net_status(
    directory: DirOption = DEFAULT_DIR,
    as_json: JsonOption = False,
    stall_after: Annotated[
        float, typer.Option(help="seconds without a commit that count as stalled")
    ] = DEFAULT_STALL_AFTER_S,
) -> None:
    """Health, height, round, step and peers of each validator. Exits with the worst
    node's code: 0 ok, 1 warning (a peer missing), 2 critical (stalled), 3 unknown (a node
    does not answer)."""
    rows = [_status_row(folder, stall_after) for folder in _node_dirs(directory, None)]
    worst = max((row["code"] for row in rows), default=0)
    if as_json:
        emit(rows, True)
    else:
        table = Table()
        columns = ("node", "health", "role", "pid", "head", "height", "round", "step", "peers")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(escape(str(row.get(column, "-"))) for column in columns))
        console.print(table)
        for row in rows:
            # Below the table, which already fills a terminal's width: what each node runs.
            digest = row.get("schedule_digest")
            schedule = f"schedule {digest[:18]}…" if isinstance(digest, str) else "schedule unknown"
            version = row.get("version") or "version unknown"
            console.print(escape(f"{row['node']}: {version}, {schedule}"))
        for row in rows:
            for reason in row["reasons"]:
                console.print(escape(f"{row['node']}: {reason}"))
    if worst:
        raise typer.Exit(worst)
