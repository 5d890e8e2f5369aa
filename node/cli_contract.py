"""``lianxin contract``: deploy a compiled contract, call its functions, send it transactions.

A contract is named by a committed artifact (``Anchor``) or by the path of an artifact JSON
file in the same format (``name``, ``abi``, ``bytecode``, ``deployedBytecode``).

Arguments are text, converted by the ABI type they fill: integers in decimal or ``0x``-hex,
``true``/``false``, addresses and bytes as ``0x``-hex, strings as they are, arrays and tuples
as JSON (``'[1, 2]'``, ``'["0xab", true]'``); put ``--`` before an argument that starts with a
dash (``-- -5``). Results and event arguments come back the other way: bytes as ``0x``-hex,
addresses in EIP-55 form.

Transactions are signed with a keystore of the chain directory (``--key NAME``), sent with
``eth_sendRawTransaction`` and waited for until their receipt arrives. Exit codes as in
:mod:`node.cli`: 0 success, 1 refused, reverted or no receipt in time, 2 usage error (bad
argument, unknown function or artifact, unreadable key), 3 the node could not be reached.

:mod:`node.cli` imports this module to register the sub-app, so the helpers shared with it
are imported inside the functions that use them, when a command runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import eth_abi
import typer
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils.abi import (
    abi_to_signature,
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)
from eth_utils.address import to_checksum_address
from rich.console import Console
from rich.table import Table

from chain.crypto import PrivateKey
from chain.errors import ChainError
from chain.primitives import ADDRESS_SIZE, Address, Hash32
from chain.types import Transaction
from chain.validation import sign_transaction
from contracts.artifacts import Artifact, load_artifact, parse_artifact
from contracts.errors import ArtifactError
from node.rpc_client import RpcError, rpc_call

contract_app = typer.Typer(
    help="Deploy contracts, call their functions and send them transactions.",
    no_args_is_help=True,
)

console = Console()

# node.cli's exit codes; it imports this module, so they cannot be imported from it here.
EXIT_BAD = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

BLOCK_LIMIT_WINDOW = 500
"""Blocks above the current height a transaction sent from here stays valid."""

GAS_MARGIN_PERCENT = 20
"""Gas allowed above the node's estimate when ``--gas`` is not given."""

EXECUTION_REVERTED = 3
"""The JSON-RPC error code of a reverted eth_call or eth_estimateGas."""

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
"""Selector of Solidity's ``Error(string)`` revert."""
PANIC_SELECTOR = bytes.fromhex("4e487b71")
"""Selector of Solidity's ``Panic(uint256)`` revert."""

DirOption = Annotated[Path, typer.Option("--dir", "-d", help="chain directory")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
RpcOption = Annotated[
    str | None, typer.Option("--rpc", help="node URL (default: from the chain's node.toml)")
]
KeyOption = Annotated[
    str, typer.Option("--key", "-k", help="name of the signing keystore under keys/")
]
PasswordOption = Annotated[
    Path | None, typer.Option("--password-file", help="file holding the keystore password")
]
GasOption = Annotated[
    int | None, typer.Option("--gas", min=21_000, help="gas limit (default: estimate + 20%)")
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
DEFAULT_DIR = Path("devchain")


class ContractCommandError(Exception):
    """A contract command that cannot complete; ``exit_code`` is the process exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ArgumentError(ContractCommandError):
    """A command-line argument that does not fit its ABI type."""


# -- artifacts and ABI entries ----------------------------------------------------------------


def resolve_artifact(spec: str) -> Artifact:
    """The artifact named by ``spec``: a JSON file if ``spec`` names one, else a committed
    artifact. Raises ContractCommandError if neither exists or the file is malformed."""
    path = Path(spec)
    try:
        if path.suffix == ".json" or path.is_file():
            text = path.read_text(encoding="utf-8")
            document = json.loads(text)
            name = document.get("name") if isinstance(document, dict) else None
            if not isinstance(name, str):
                raise ContractCommandError(f"{spec}: artifact has no contract name")
            return parse_artifact(name, text)
        return load_artifact(spec)
    except (OSError, ValueError) as exc:
        raise ContractCommandError(f"cannot read artifact {spec}: {exc}") from exc
    except ArtifactError as exc:
        raise ContractCommandError(str(exc)) from exc


def find_function(artifact: Artifact, spec: str, arg_count: int) -> dict[str, Any]:
    """The ABI entry of the function ``spec`` names: a name (``anchor``) or a full signature
    (``anchor(bytes32)``), the latter to choose among overloads. Among overloads of a bare
    name, the one taking ``arg_count`` arguments. Raises ContractCommandError otherwise."""
    functions = [entry for entry in artifact.abi if entry.get("type") == "function"]
    if "(" in spec:
        named = [entry for entry in functions if abi_to_signature(entry) == spec]
    else:
        named = [entry for entry in functions if entry.get("name") == spec]
    matches = named
    if len(named) > 1:
        matches = [entry for entry in named if len(entry.get("inputs", [])) == arg_count]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(abi_to_signature(entry) for entry in functions)) or "none"
    if not named:
        raise ContractCommandError(f"{artifact.name} has no function {spec}; it has: {known}")
    raise ContractCommandError(f"{spec} is overloaded in {artifact.name}; name one of: {known}")


def constructor_of(artifact: Artifact) -> dict[str, Any]:
    """The constructor's ABI entry (one without inputs if the contract declares none)."""
    for entry in artifact.abi:
        if entry.get("type") == "constructor":
            return entry
    return {"type": "constructor", "inputs": []}


# -- arguments in, results out ----------------------------------------------------------------


def encode_arguments(inputs: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> bytes:
    """The ABI encoding of ``texts`` as values of ``inputs``; raises ArgumentError for a
    wrong count or a value that does not fit its type."""
    if len(texts) != len(inputs):
        signature = ",".join(collapse_if_tuple(dict(param)) for param in inputs)
        raise ArgumentError(f"expected {len(inputs)} argument(s) ({signature}), got {len(texts)}")
    values = [
        convert_argument(param, text, label=param.get("name") or f"#{index + 1}")
        for index, (param, text) in enumerate(zip(inputs, texts, strict=True))
    ]
    types = [collapse_if_tuple(dict(param)) for param in inputs]
    try:
        return eth_abi.encode(types, values)
    except EncodingError as exc:
        raise ArgumentError(str(exc)) from exc


def convert_argument(param: Mapping[str, Any], value: Any, *, label: str) -> Any:
    """The Python value eth_abi encodes as ``param``'s type, from command-line text or (inside
    an array or tuple) a JSON value."""
    abi_type: str = param["type"]
    if abi_type.endswith("]"):
        open_at = abi_type.rindex("[")
        items = _json_list(value, label)
        size = abi_type[open_at + 1 : -1]
        if size and len(items) != int(size):
            raise ArgumentError(f"{label}: {abi_type} needs {size} items, got {len(items)}")
        element = {**param, "type": abi_type[:open_at]}
        return [
            convert_argument(element, item, label=f"{label}[{index}]")
            for index, item in enumerate(items)
        ]
    if abi_type == "tuple":
        components = param.get("components", [])
        items = _json_list(value, label)
        if len(items) != len(components):
            raise ArgumentError(f"{label}: tuple needs {len(components)} items, got {len(items)}")
        return tuple(
            convert_argument(component, item, label=f"{label}.{component.get('name') or index}")
            for index, (component, item) in enumerate(zip(components, items, strict=True))
        )
    return _convert_scalar(abi_type, value, label)


def _convert_scalar(abi_type: str, value: Any, label: str) -> Any:
    if abi_type.startswith(("uint", "int")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""), 0)
            except ValueError:
                pass
        raise ArgumentError(f"{label}: {abi_type} expects an integer, got {value!r}")
    if abi_type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ArgumentError(f"{label}: bool expects true or false, got {value!r}")
    if abi_type == "string":
        if isinstance(value, str):
            return value
        raise ArgumentError(f"{label}: string expects text, got {value!r}")
    if abi_type == "address":
        return _hex_bytes(value, label, abi_type, ADDRESS_SIZE)
    if abi_type == "bytes":
        return _hex_bytes(value, label, abi_type, None)
    if abi_type.startswith("bytes"):
        return _hex_bytes(value, label, abi_type, int(abi_type[len("bytes") :]))
    raise ArgumentError(f"{label}: the type {abi_type} is not supported on the command line")


def _hex_bytes(value: Any, label: str, abi_type: str, size: int | None) -> bytes:
    if isinstance(value, str) and value.startswith(("0x", "0X")):
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raw = None
        if raw is not None and (size is None or len(raw) == size):
            return raw
    length = "" if size is None else f" of {size} bytes"
    raise ArgumentError(f"{label}: {abi_type} expects 0x-hex{length}, got {value!r}")


def _json_list(value: Any, label: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ArgumentError(f"{label}: expects a JSON array, got {value!r}") from exc
        if isinstance(parsed, list):
            return parsed
    raise ArgumentError(f"{label}: expects a JSON array, got {value!r}")


def decode_values(params: Sequence[Mapping[str, Any]], data: bytes) -> list[Any]:
    """``data`` decoded as ``params``, in JSON form (bytes as 0x-hex, tuples as lists)."""
    types = [collapse_if_tuple(dict(param)) for param in params]
    try:
        return [json_value(value) for value in eth_abi.decode(types, data)]
    except DecodingError as exc:
        raise ContractCommandError(f"cannot decode {types} from 0x{data.hex()}: {exc}") from exc


def json_value(value: Any) -> Any:
    """A decoded ABI value in JSON form."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


def describe_revert(artifact: Artifact, data: bytes) -> str:
    """A readable account of revert ``data``: an ``Error(string)`` message, a panic code, a
    custom error declared in the ABI, or the raw bytes."""
    selector, payload = data[:4], data[4:]
    try:
        if selector == ERROR_STRING_SELECTOR:
            (message,) = eth_abi.decode(["string"], payload)
            return f"reverted: {message}"
        if selector == PANIC_SELECTOR:
            (code,) = eth_abi.decode(["uint256"], payload)
            return f"reverted: panic 0x{code:02x}"
        for entry in artifact.abi:
            if entry.get("type") == "error" and function_abi_to_4byte_selector(entry) == selector:
                values = decode_values(entry.get("inputs", []), payload)
                shown = ", ".join(json.dumps(value) for value in values)
                return f"reverted: {entry['name']}({shown})"
    except (DecodingError, ContractCommandError):
        pass
    return "reverted" if not data else f"reverted with data 0x{data.hex()}"


def decode_logs(artifact: Artifact, logs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The receipt ``logs`` as events of ``artifact`` where a topic matches one of its events;
    other logs are kept raw (address, topics, data)."""
    events = {
        "0x" + event_abi_to_log_topic(entry).hex(): entry
        for entry in artifact.abi
        if entry.get("type") == "event" and not entry.get("anonymous", False)
    }
    decoded: list[dict[str, Any]] = []
    for log in logs:
        topics = list(log.get("topics", []))
        entry = events.get(topics[0]) if topics else None
        if entry is None:
            decoded.append({key: log.get(key) for key in ("address", "topics", "data")})
            continue
        decoded.append(
            {
                "event": entry["name"],
                "address": to_checksum_address(log["address"]),
                "args": _event_arguments(entry, topics[1:], _from_hex(log.get("data", "0x"))),
            }
        )
    return decoded


def _event_arguments(
    entry: Mapping[str, Any], topics: Sequence[str], data: bytes
) -> dict[str, Any]:
    """The named arguments of one event: indexed ones from ``topics``, the rest from ``data``."""
    inputs = entry.get("inputs", [])
    plain = iter(decode_values([param for param in inputs if not param.get("indexed")], data))
    indexed = iter(topics)
    arguments: dict[str, Any] = {}
    for index, param in enumerate(inputs):
        name = param.get("name") or f"#{index + 1}"
        if not param.get("indexed"):
            arguments[name] = next(plain)
            continue
        topic = next(indexed, None)
        abi_type = collapse_if_tuple(dict(param))
        if topic is None or _is_hashed_in_topic(abi_type):
            # A dynamic indexed value is stored as its Keccak hash: the topic is all there is.
            arguments[name] = topic
        else:
            (arguments[name],) = decode_values([param], _from_hex(topic))
    return arguments


def _is_hashed_in_topic(abi_type: str) -> bool:
    return abi_type in ("string", "bytes") or abi_type.endswith("]") or abi_type.startswith("(")


def _from_hex(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)


# -- talking to the node ----------------------------------------------------------------------


def rpc(url: str, method: str, params: list[Any], artifact: Artifact | None = None) -> Any:
    """Call the node; a failure becomes ContractCommandError with the CLI's exit code, a
    revert described with ``artifact``'s errors."""
    try:
        return rpc_call(url, method, params)
    except RpcError as exc:
        if exc.code is None:
            raise ContractCommandError(str(exc), EXIT_UNREACHABLE) from exc
        if exc.code == EXECUTION_REVERTED and artifact is not None:
            data = _from_hex(exc.data) if isinstance(exc.data, str) else b""
            raise ContractCommandError(describe_revert(artifact, data), EXIT_BAD) from exc
        raise ContractCommandError(f"{exc} (code {exc.code})", EXIT_BAD) from exc


def send_transaction(
    url: str,
    key: PrivateKey,
    *,
    to: Address | None,
    data: bytes,
    gas: int | None,
    timeout: float,
    artifact: Artifact,
) -> dict[str, Any]:
    """Sign a transaction from ``key``, send it, and return its receipt once committed.
    Raises ContractCommandError if the node refuses it, the estimate reverts, or no receipt
    arrives within ``timeout`` seconds."""
    chain_id = int(rpc(url, "eth_chainId", []), 16)
    height = int(rpc(url, "eth_blockNumber", []), 16)
    if gas is None:
        request: dict[str, Any] = {
            "from": "0x" + key.public_key.address.hex(),
            "data": "0x" + data.hex(),
        }
        if to is not None:
            request["to"] = "0x" + to.hex()
        estimate = int(rpc(url, "eth_estimateGas", [request], artifact), 16)
        gas = estimate + estimate * GAS_MARGIN_PERCENT // 100
    unsigned = Transaction(
        chain_id=chain_id,
        nonce=Hash32(os.urandom(32)),
        block_limit=height + BLOCK_LIMIT_WINDOW,
        to=to,
        value=0,
        data=data,
        gas_limit=gas,
        public_key=key.public_key.to_bytes(),
    )
    signed = sign_transaction(unsigned, key)
    tx_hash = rpc(url, "eth_sendRawTransaction", ["0x" + signed.encode().hex()])
    deadline = time.monotonic() + timeout
    while True:
        # The node itself holds this call open for a while when the tx is still pending.
        receipt = rpc(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return dict(receipt)
        if time.monotonic() >= deadline:
            raise ContractCommandError(f"no receipt for {tx_hash} within {timeout:g} s", EXIT_BAD)
        time.sleep(0.1)


def receipt_summary(artifact: Artifact, receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a receipt an operator reads, with its logs decoded."""
    return {
        "transaction": receipt["transactionHash"],
        "block_number": int(receipt["blockNumber"], 16),
        "block_hash": receipt["blockHash"],
        "status": int(receipt["status"], 16),
        "gas_used": int(receipt["gasUsed"], 16),
        "events": decode_logs(artifact, receipt.get("logs", [])),
    }


def _check_status(artifact: Artifact, receipt: Mapping[str, Any], result: dict[str, Any]) -> None:
    """Add the revert reason to ``result`` if the receipt says the transaction failed."""
    if result["status"] != 1:
        result["error"] = describe_revert(artifact, _from_hex(receipt.get("output") or "0x"))


# -- shared with node.cli ---------------------------------------------------------------------


def _node_url(directory: Path, rpc_option: str | None) -> str:
    from node.cli import rpc_url

    return rpc_url(directory, rpc_option)


def _signing_key(directory: Path, name: str, password_file: Path | None) -> PrivateKey:
    from node.chain_dir import ChainDir, load_key
    from node.cli import chain_password

    chain = ChainDir(directory)
    keystore = chain.keystore(name)
    if not keystore.exists():
        raise ContractCommandError(f"no key {name!r} in {chain.keys}")
    try:
        return load_key(keystore, chain_password(chain, password_file))
    except ChainError as exc:
        raise ContractCommandError(f"cannot open key {name!r}: {exc}") from exc


def _fail(exc: ContractCommandError) -> typer.Exit:
    from node.cli import fail

    return fail(str(exc), exc.exit_code)


def _emit(result: Mapping[str, Any], as_json: bool) -> None:
    """Print ``result`` as JSON, or as a table with one row per field (and per event)."""
    if as_json:
        console.print_json(json.dumps(result))
        return
    table = Table(show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in result.items():
        if key == "events":
            for event in value:
                table.add_row("event", _event_line(event))
        else:
            table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    console.print(table)


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
    timeout: TimeoutOption = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Deploy a contract, passing ARGS to its constructor; prints its address."""
    try:
        artifact = resolve_artifact(artifact_spec)
        data = artifact.bytecode + encode_arguments(
            constructor_of(artifact).get("inputs", []), args or []
        )
        url = _node_url(directory, rpc_option)
        signer = _signing_key(directory, key, password_file)
        receipt = send_transaction(
            url, signer, to=None, data=data, gas=gas, timeout=timeout, artifact=artifact
        )
    except ContractCommandError as exc:
        raise _fail(exc) from exc
    address = receipt.get("contractAddress")
    result = {
        "contract": artifact.name,
        "address": None if address is None else to_checksum_address(address),
        **receipt_summary(artifact, receipt),
    }
    _check_status(artifact, receipt, result)
    _emit(result, as_json)
    if result["status"] != 1:
        raise typer.Exit(EXIT_BAD)


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
    try:
        artifact = resolve_artifact(artifact_spec)
        target = _hex_bytes(address, "address", "address", ADDRESS_SIZE)
        entry = find_function(artifact, function, len(args or []))
        data = function_abi_to_4byte_selector(entry) + encode_arguments(
            entry.get("inputs", []), args or []
        )
        tag = block if block in ("latest", "earliest", "pending") else hex(_height(block))
        url = _node_url(directory, rpc_option)
        output = rpc(
            url, "eth_call", [{"to": "0x" + target.hex(), "data": "0x" + data.hex()}, tag], artifact
        )
        outputs = entry.get("outputs", [])
        values = decode_values(outputs, _from_hex(output))
    except ContractCommandError as exc:
        raise _fail(exc) from exc
    result: dict[str, Any] = {"function": abi_to_signature(entry), "result": values}
    if as_json:
        _emit(result, True)
        return
    table = Table("output", "type")
    table.add_column("value", overflow="fold")
    for index, (param, value) in enumerate(zip(outputs, values, strict=True)):
        shown = value if isinstance(value, str) else json.dumps(value)
        table.add_row(param.get("name") or f"#{index + 1}", collapse_if_tuple(param), shown)
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
    timeout: TimeoutOption = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Send a transaction calling a function; waits for the receipt and prints its events."""
    try:
        artifact = resolve_artifact(artifact_spec)
        target = Address(_hex_bytes(address, "address", "address", ADDRESS_SIZE))
        entry = find_function(artifact, function, len(args or []))
        data = function_abi_to_4byte_selector(entry) + encode_arguments(
            entry.get("inputs", []), args or []
        )
        url = _node_url(directory, rpc_option)
        signer = _signing_key(directory, key, password_file)
        receipt = send_transaction(
            url, signer, to=target, data=data, gas=gas, timeout=timeout, artifact=artifact
        )
    except ContractCommandError as exc:
        raise _fail(exc) from exc
    result = {"function": abi_to_signature(entry), **receipt_summary(artifact, receipt)}
    _check_status(artifact, receipt, result)
    _emit(result, as_json)
    if result["status"] != 1:
        raise typer.Exit(EXIT_BAD)


def _height(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError as exc:
        raise ContractCommandError(f"not a block height: {text!r}") from exc
    if value < 0:
        raise ContractCommandError("block height must be non-negative")
    return value
