"""``lianxin block``, ``tx``, ``receipt`` and ``verify-chain``: what the chain holds, asked of
the node over JSON-RPC, or re-verified from the node's own store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from node.cli_common import (
    DEFAULT_DIR,
    EXIT_BAD,
    EXIT_UNREACHABLE,
    DirOption,
    JsonOption,
    RpcOption,
    block_tag,
    call,
    emit,
    errors,
    fail,
    rpc_url,
)


def block(
    number: Annotated[str, typer.Argument(help="height or 'latest'")],
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a block."""
    tag = block_tag(number)
    url = rpc_url(directory, rpc)
    found = _show(url, "eth_getBlockByNumber", [tag, False], f"no block {number}")
    if tag.startswith("0x") or tag == "earliest":
        asked = 0 if tag == "earliest" else int(tag, 16)
        if int(found["number"], 16) != asked:
            raise _not_asked("eth_getBlockByNumber", "number", found["number"], hex(asked))
    emit(found, as_json)


def tx(
    tx_hash: Annotated[str, typer.Argument(help="transaction hash (0x…)")],
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a committed transaction."""
    url = rpc_url(directory, rpc)
    found = _show(url, "eth_getTransactionByHash", [tx_hash], f"no transaction {tx_hash}")
    if found["hash"].lower() != tx_hash.lower():
        raise _not_asked("eth_getTransactionByHash", "hash", found["hash"], tx_hash)
    emit(found, as_json)


def receipt(
    tx_hash: Annotated[str, typer.Argument(help="transaction hash (0x…)")],
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a transaction's receipt."""
    url = rpc_url(directory, rpc)
    found = _show(url, "eth_getTransactionReceipt", [tx_hash], f"no receipt for {tx_hash}")
    if found["transactionHash"].lower() != tx_hash.lower():
        raise _not_asked(
            "eth_getTransactionReceipt", "transactionHash", found["transactionHash"], tx_hash
        )
    emit(found, as_json)


def _show(url: str, method: str, params: list[Any], missing: str) -> dict[str, Any]:
    """What ``method`` returns (an object: node.rpc_client checks its shape); exit 1 with
    ``missing`` if it returns nothing."""
    result = call(url, method, params)
    if result is None:
        raise fail(missing, EXIT_BAD)
    return dict(result)


def _not_asked(method: str, member: str, answered: str, asked: str) -> typer.Exit:
    """Exit 3: the node answered ``method`` with another object than the one asked for."""
    return fail(
        f"the node's answer to {method} is not the one asked for: its {member} is "
        f"{answered}, not {asked}",
        EXIT_UNREACHABLE,
    )


def verify_chain_command(directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """Re-verify every stored block from genesis (hashes, Merkle roots, signatures,
    certificates, state roots by re-execution). Stop the node first: this opens its store."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from chain.errors import ChainError
    from node.chain_dir import ChainDir
    from node.config import ConfigError, load_config
    from node.genesis_file import load_genesis
    from node.storage.lmdb_store import LmdbBlockStore
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
