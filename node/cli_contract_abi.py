"""ABI in and out for ``lianxin contract`` (:mod:`node.cli_contract`): the artifact a command
names, the function it calls, its arguments encoded from command-line text, and results, events
and reverts decoded back to JSON. The commands import this module when they run, not at start-up:
it needs eth-abi and eth-utils.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_abi.grammar import ABIType, TupleType, parse
from eth_typing import ABIElement, ABIEvent
from eth_utils.abi import (
    abi_to_signature,
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)
from eth_utils.address import to_checksum_address

from chain.primitives import ADDRESS_SIZE
from contracts.artifacts import Artifact, load_artifact, parse_artifact
from contracts.errors import ArtifactError
from node.cli_common import EXIT_USAGE, from_hex

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
"""Selector of Solidity's ``Error(string)`` revert."""
PANIC_SELECTOR = bytes.fromhex("4e487b71")
"""Selector of Solidity's ``Panic(uint256)`` revert."""


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
        named = [entry for entry in functions if signature(entry) == spec]
    else:
        named = [entry for entry in functions if entry.get("name") == spec]
    matches = named
    if len(named) > 1:
        matches = [entry for entry in named if len(entry.get("inputs", [])) == arg_count]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(signature(entry) for entry in functions)) or "none"
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
        expected = ",".join(signature_type(param) for param in inputs)
        raise ArgumentError(f"expected {len(inputs)} argument(s) ({expected}), got {len(texts)}")
    values = [
        convert_argument(param, text, label=param.get("name") or f"#{index + 1}")
        for index, (param, text) in enumerate(zip(inputs, texts, strict=True))
    ]
    types = [signature_type(param) for param in inputs]
    try:
        return encode(types, values)
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
        return hex_bytes(value, label, abi_type, ADDRESS_SIZE)
    if abi_type == "bytes":
        return hex_bytes(value, label, abi_type, None)
    if abi_type.startswith("bytes"):
        return hex_bytes(value, label, abi_type, int(abi_type[len("bytes") :]))
    raise ArgumentError(f"{label}: the type {abi_type} is not supported on the command line")


def hex_bytes(value: Any, label: str, abi_type: str, size: int | None) -> bytes:
    """The bytes of 0x-hex ``value`` (``size`` of them, if given); raises ArgumentError naming
    ``label`` and ``abi_type`` otherwise."""
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
    """``data`` decoded as ``params``, in JSON form (bytes as 0x-hex, tuples as lists); raises
    ContractCommandError if it does not decode, or, for values of static types only, is not
    exactly as long as their encoding."""
    types = [signature_type(param) for param in params]
    shown = f"0x{data[:64].hex()}{'…' if len(data) > 64 else ''} ({len(data)} bytes)"
    try:
        parsed = [parse(abi_type) for abi_type in types]
        if not any(abi_type.is_dynamic for abi_type in parsed):
            size = sum(_static_size(abi_type) for abi_type in parsed)
            if len(data) != size:
                raise ContractCommandError(
                    f"cannot decode {types} from {shown}: their encoding is {size} bytes"
                )
        return [json_value(value) for value in decode(types, data)]
    except (DecodingError, UnicodeDecodeError) as exc:
        raise ContractCommandError(f"cannot decode {types} from {shown}: {exc}") from exc


def _static_size(abi_type: ABIType) -> int:
    """The length of the ABI encoding of a value of static ``abi_type``."""
    if abi_type.arrlist:
        return int(abi_type.arrlist[-1][0]) * _static_size(abi_type.item_type)
    if isinstance(abi_type, TupleType):
        return sum(_static_size(component) for component in abi_type.components)
    return 32


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
            (message,) = decode(["string"], payload)
            return f"reverted: {message}"
        if selector == PANIC_SELECTOR:
            (code,) = decode(["uint256"], payload)
            return f"reverted: panic 0x{code:02x}"
        for entry in artifact.abi:
            if entry.get("type") == "error" and _selector(entry) == selector:
                values = decode_values(entry.get("inputs", []), payload)
                shown = ", ".join(json.dumps(value) for value in values)
                return f"reverted: {entry['name']}({shown})"
    except (DecodingError, UnicodeDecodeError, ContractCommandError):
        pass
    return "reverted" if not data else f"reverted with data 0x{data.hex()}"


def decode_logs(artifact: Artifact, logs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The receipt ``logs`` as events of ``artifact`` where a topic matches one of its events
    and the log decodes as that event; other logs are kept raw (address, topics, data)."""
    events = {
        "0x" + event_abi_to_log_topic(cast(ABIEvent, entry)).hex(): entry
        for entry in artifact.abi
        if entry.get("type") == "event" and not entry.get("anonymous", False)
    }
    decoded: list[dict[str, Any]] = []
    for log in logs:
        topics = list(log.get("topics", []))
        entry = events.get(topics[0]) if topics else None
        try:
            if entry is not None:
                args = _event_arguments(entry, topics[1:], from_hex(log.get("data", "0x")))
                decoded.append(
                    {
                        "event": entry["name"],
                        "address": to_checksum_address(log["address"]),
                        "args": args,
                    }
                )
                continue
        except ContractCommandError:
            pass
        decoded.append({key: log.get(key) for key in ("address", "topics", "data")})
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
        abi_type = signature_type(param)
        if topic is None or _is_hashed_in_topic(abi_type):
            # A dynamic indexed value is stored as its Keccak hash: the topic is all there is.
            arguments[name] = topic
        else:
            (arguments[name],) = decode_values([param], from_hex(topic))
    return arguments


def _is_hashed_in_topic(abi_type: str) -> bool:
    return abi_type in ("string", "bytes") or abi_type.endswith("]") or abi_type.startswith("(")


# -- receipts ---------------------------------------------------------------------------------


def receipt_summary(artifact: Artifact, receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a receipt an operator reads, with its logs decoded, and the revert reason
    as ``error`` if the transaction failed."""
    summary = {
        "transaction": receipt["transactionHash"],
        "block_number": int(receipt["blockNumber"], 16),
        "block_hash": receipt["blockHash"],
        "status": int(receipt["status"], 16),
        "gas_used": int(receipt["gasUsed"], 16),
        "events": decode_logs(artifact, receipt.get("logs", [])),
    }
    if summary["status"] != 1:
        summary["error"] = describe_revert(artifact, from_hex(receipt.get("output") or "0x"))
    return summary


def function_call(
    artifact: Artifact, function: str, args: Sequence[str]
) -> tuple[dict[str, Any], bytes]:
    """The ABI entry of ``function`` and the call data that passes it ``args``."""
    entry = find_function(artifact, function, len(args))
    return entry, _selector(entry) + encode_arguments(entry.get("inputs", []), args)


def signature_type(param: Mapping[str, Any]) -> str:
    """The type of ABI parameter ``param`` as a signature writes it (a tuple as ``(t1,t2)``)."""
    return collapse_if_tuple(dict(param))


def signature(entry: Mapping[str, Any]) -> str:
    """The ABI entry's signature, ``name(type,...)``."""
    return abi_to_signature(cast(ABIElement, entry))


def _selector(entry: Mapping[str, Any]) -> bytes:
    return function_abi_to_4byte_selector(cast(ABIElement, entry))
