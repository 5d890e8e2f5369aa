"""``lianxin contract``: deploy a compiled contract, call its functions, send it transactions.

A contract is named by a committed artifact (``Anchor``) or by the path of an artifact JSON
file in the same format (``name``, ``abi``, ``bytecode``, ``deployedBytecode``).

Arguments are text, converted by the ABI type they fill: integers in decimal or ``0x``-hex,
``true``/``false``, addresses and bytes as ``0x``-hex, strings as they are, arrays and tuples
as JSON (``'[1, 2]'``, ``'["0xab", true]'``); put ``--`` before an argument that starts with a
dash (``-- -5``). Results and event arguments come back the other way: bytes as ``0x``-hex,
addresses in EIP-55 form.

Transactions are signed with a keystore of the chain directory (``--key NAME``), sent with
``eth_sendRawTransaction`` and waited for until their receipt arrives (:mod:`node.tx_send`).
Exit codes as in :mod:`node.cli_common`: 0 success, 1 refused, reverted, no receipt in time or
a key that does not decrypt, 2 usage error (bad argument, unknown function or artifact, no
such key), 3 the node could not be reached or answered with what is not a node's answer.

The ABI work is in :mod:`node.cli_contract_abi`, which the commands import when they run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from node.cli_common import (
    DEFAULT_DIR,
    EXIT_BAD,
    GAS_MARGIN_PERCENT,
    RECEIPT_TIMEOUT_S,
    DirOption,
    JsonOption,
    KeyOption,
    PasswordOption,
    RpcOption,
    block_tag,
    call,
    cell,
    console,
    emit,
    fail,
    field_table,
    load_signing_key,
    rpc_url,
    to_hex,
)
from node.rpc_client import hex_data

if TYPE_CHECKING:
    from chain.primitives import Address
    from contracts.artifacts import Artifact
    from node.cli_contract_abi import ContractCommandError

contract_app = typer.Typer(
    help="Deploy contracts, call their functions and send them transactions.",
    no_args_is_help=True,
)

GasOption = Annotated[
    int | None,
    typer.Option(
        "--gas", min=21_000, help=f"gas limit (default: estimate + {GAS_MARGIN_PERCENT}%)"
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="seconds to wait for the receipt")
]
ArtifactArgument = Annotated[
    str,
    typer.Argument(
        metavar="ARTIFACT", help="committed artifact name (e.g. Anchor) or artifact JSON file"
    ),
]
ArgsArgument = Annotated[list[str] | None, typer.Argument(help="arguments, one per ABI input")]


def _transact(
    artifact: Artifact,
    to: Address | None,
    data: bytes,
    head: Mapping[str, Any],
    *,
    directory: Path,
    rpc_option: str | None,
    key: str,
    password_file: Path | None,
    gas: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Send ``data`` to ``to`` (None: deploy) signed with the key called ``key``, then print
    ``head`` followed by the receipt's summary; exit 1 if the transaction failed. A deployment's
    ``address`` in ``head`` is filled in from the receipt."""
    from eth_utils.address import to_checksum_address

    from node.cli_contract_abi import describe_revert, receipt_summary
    from node.tx_send import send_transaction

    url = rpc_url(directory, rpc_option)
    signer = load_signing_key(directory, key, password_file)
    receipt = send_transaction(
        url,
        signer,
        to=to,
        data=data,
        gas=gas,
        timeout=timeout,
        describe_revert=partial(describe_revert, artifact),
    )
    result = {**head, **receipt_summary(artifact, receipt)}
    if to is None:
        address = receipt.get("contractAddress")
        result["address"] = None if address is None else to_checksum_address(address)
    _emit(result, as_json)
    if result["status"] != 1:
        raise typer.Exit(EXIT_BAD)


def _fail(exc: ContractCommandError) -> typer.Exit:
    return fail(str(exc), exc.exit_code)


def _emit(result: Mapping[str, Any], as_json: bool) -> None:
    """Print ``result`` as JSON, or as a table with one row per field (and per event)."""
    if as_json:
        emit(result, True)
        return
    rows: list[tuple[str, str]] = []
    for key, value in result.items():
        if key == "events":
            rows += [("event", _event_line(event)) for event in value]
        else:
            rows.append((key, cell(value)))
    console.print(field_table(rows))


def _event_line(event: Mapping[str, Any]) -> str:
    if "event" not in event:
        return json.dumps(event)
    args = ", ".join(f"{name}={json.dumps(value)}" for name, value in event["args"].items())
    return f"{event['event']}({args})"


# -- commands ---------------------------------------------------------------------------------


@contract_app.command("deploy")
def deploy(
    artifact_spec: ArtifactArgument,
    key: KeyOption,
    args: ArgsArgument = None,
    directory: DirOption = DEFAULT_DIR,
    rpc_option: RpcOption = None,
    password_file: PasswordOption = None,
    gas: GasOption = None,
    timeout: TimeoutOption = RECEIPT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Deploy a contract, passing ARGS to its constructor; prints its address."""
    from node.cli_contract_abi import (
        ContractCommandError,
        constructor_of,
        encode_arguments,
        resolve_artifact,
    )

    try:
        artifact = resolve_artifact(artifact_spec)
        data = artifact.bytecode + encode_arguments(
            constructor_of(artifact).get("inputs", []), args or []
        )
    except ContractCommandError as exc:
        raise _fail(exc) from exc
    head = {"contract": artifact.name, "address": None}
    _transact(
        artifact,
        None,
        data,
        head,
        directory=directory,
        rpc_option=rpc_option,
        key=key,
        password_file=password_file,
        gas=gas,
        timeout=timeout,
        as_json=as_json,
    )


@contract_app.command("call")
def call_function(
    address: Annotated[str, typer.Argument(help="contract address (0x…)")],
    artifact_spec: ArtifactArgument,
    function: Annotated[str, typer.Argument(help="function name or signature")],
    args: ArgsArgument = None,
    block: Annotated[str, typer.Option("--block", help="height or 'latest'")] = "latest",
    directory: DirOption = DEFAULT_DIR,
    rpc_option: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Call a function without a transaction (eth_call) and print what it returns."""
    from chain.primitives import ADDRESS_SIZE
    from node.cli_contract_abi import (
        ContractCommandError,
        decode_values,
        describe_revert,
        function_call,
        hex_bytes,
        resolve_artifact,
        signature,
        signature_type,
    )

    try:
        artifact = resolve_artifact(artifact_spec)
        target = hex_bytes(address, "address", "address", ADDRESS_SIZE)
        entry, data = function_call(artifact, function, args or [])
        tag = block_tag(block)
        url = rpc_url(directory, rpc_option)
        output = call(
            url,
            "eth_call",
            [{"to": to_hex(target), "data": to_hex(data)}, tag],
            partial(describe_revert, artifact),
            read=hex_data,
        )
        outputs = entry.get("outputs", [])
        values = decode_values(outputs, output)
    except ContractCommandError as exc:
        raise _fail(exc) from exc
    result: dict[str, Any] = {"function": signature(entry), "result": values}
    if as_json:
        emit(result, True)
        return
    table = Table("output", "type")
    table.add_column("value", overflow="fold")
    for index, (param, value) in enumerate(zip(outputs, values, strict=True)):
        name = param.get("name") or f"#{index + 1}"
        table.add_row(escape(name), signature_type(param), escape(cell(value)))
    console.print(table)


@contract_app.command("send")
def send(
    address: Annotated[str, typer.Argument(help="contract address (0x…)")],
    artifact_spec: ArtifactArgument,
    function: Annotated[str, typer.Argument(help="function name or signature")],
    key: KeyOption,
    args: ArgsArgument = None,
    directory: DirOption = DEFAULT_DIR,
    rpc_option: RpcOption = None,
    password_file: PasswordOption = None,
    gas: GasOption = None,
    timeout: TimeoutOption = RECEIPT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Send a transaction calling a function; waits for the receipt and prints its events."""
    from chain.primitives import ADDRESS_SIZE, Address
    from node.cli_contract_abi import (
        ContractCommandError,
        function_call,
        hex_bytes,
        resolve_artifact,
        signature,
    )

    try:
        artifact = resolve_artifact(artifact_spec)
        target = Address(hex_bytes(address, "address", "address", ADDRESS_SIZE))
        entry, data = function_call(artifact, function, args or [])
    except ContractCommandError as exc:
        raise _fail(exc) from exc
    _transact(
        artifact,
        target,
        data,
        {"function": signature(entry)},
        directory=directory,
        rpc_option=rpc_option,
        key=key,
        password_file=password_file,
        gas=gas,
        timeout=timeout,
        as_json=as_json,
    )
