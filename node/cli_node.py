"""``lianxin node``: start the node process (in the foreground, or in the background with a pid
file and a log in its chain directory), stop it, and ask whether it is healthy; its backup and
restore commands are in :mod:`node.cli_backup`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli_backup import register as register_backup
from node.cli_common import (
    DEFAULT_DIR,
    EXIT_BAD,
    DirOption,
    JsonOption,
    RpcOption,
    console,
    emit,
    fail,
    rpc_url,
)
from node.health import DEFAULT_STALL_AFTER_S, probe
from node.pid_files import pid_file, running_pid
from node.rpc_client import RpcError, rpc_call

if TYPE_CHECKING:
    from node.config import NodeConfig

BACKGROUND_START_TIMEOUT_S = 60.0
"""Longest ``node start --background`` waits for the node to answer JSON-RPC."""

node_app = typer.Typer(help="Start, stop and inspect the node process.", no_args_is_help=True)
register_backup(node_app)


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
    from node.chain_dir import ChainDir
    from node.config import ConfigError, load_config

    chain = ChainDir(directory)
    if not chain.config.exists():
        raise fail(f"{chain.config} not found; run `lianxin init` first")
    command = [sys.executable, "-m", "node.daemon", "--config", str(chain.config)]
    command += ["--log-level", log_level]
    if confirm_restored_wal:
        command.append("--confirm-restored-wal")
    if not background:
        os.execv(sys.executable, command)
    pid_path, log_file = pid_file(chain.root), chain.root / "node.log"
    if running_pid(pid_path) is not None:
        raise fail(f"the node is already running (pid file {pid_path})")
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
    pid_path.write_text(f"{process.pid}\n", encoding="utf-8")
    url = f"http://{config.rpc_host}:{config.rpc_port}"
    try:
        _wait_until_serving(process, url, log_file, log_start)
    except typer.Exit:
        pid_path.unlink(missing_ok=True)
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


@node_app.command("stop")
def node_stop(directory: DirOption = DEFAULT_DIR) -> None:
    """Stop a background node (SIGTERM, then wait for it to exit)."""
    pid_path = pid_file(directory)
    pid = running_pid(pid_path)
    if pid is None:
        raise fail("no running node", EXIT_BAD)
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        if running_pid(pid_path) is None:
            break
        time.sleep(0.05)
    else:
        raise fail(f"node {pid} did not stop within 10 s", EXIT_BAD)
    pid_path.unlink(missing_ok=True)
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
    status["pid"] = running_pid(pid_file(directory))
    status["health"] = health.verdict
    status["reasons"] = health.reasons
    emit(status, as_json)
    if health.code:
        raise typer.Exit(health.code)
