"""``lianxin init`` and ``lianxin dev``: create a chain directory, and run a dev chain (created
on its first run) with the registry service beside it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from node.cli_common import (
    DEFAULT_DIR,
    DEV_ACCOUNTS_HELP,
    DirOption,
    JsonOption,
    PasswordOption,
    emit,
    fail,
    read_password,
)
from node.cli_net import net_init


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
    from chain.errors import ChainError
    from node.chain_dir import init_chain_dir

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


def dev(
    directory: DirOption = DEFAULT_DIR,
    rpc_port: Annotated[int, typer.Option(help="JSON-RPC port")] = 8545,
    registry_port: Annotated[int, typer.Option(help="registry HTTP port")] = 8600,
) -> None:
    """Create a dev chain in DIR if there is none, then run its node and the registry
    service in the foreground, printing their URLs (Ctrl-C stops both)."""
    from node.chain_dir import ChainDir
    from node.cli_dev import run_dev

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
