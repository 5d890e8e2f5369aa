"""Decoding of system-contract calls and events by ABI, and the recognition of which address
holds which contract.

The fixed-address system contracts (Permissions, ValidatorGovernance) come from genesis; the
trust contracts (IssuerRegistry, Notary, LicenseRegistry, and any later domain contract whose
artifact is committed) are recognised by their deployment: a creation transaction whose init
code starts with the committed artifact's bytecode made that contract. Nothing is configured
by hand, so an explorer pointed at any lianxin chain names the contracts it finds.

Decoded values are made JSON-ready for storage and display: bytes as ``0x`` hex, a USCC
(``bytes18``) as its 18 characters, addresses as ``0x`` hex, integers above 2**53 as strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from chain.genesis import Genesis
from chain.primitives import Address
from chain.types import Log
from contracts.artifacts import artifact_names, load_artifact

SYSTEM_CONTRACT_NAMES = ("Permissions", "ValidatorGovernance")
"""Contracts that live at fixed addresses from genesis."""

DOMAIN_CONTRACT_NAMES = ("IssuerRegistry", "Notary", "LicenseRegistry")
"""Trust contracts recognised by their deployment; further artifacts (credit, authorization,
archive contracts) are recognised the same way as soon as they are committed."""

_SKIPPED_ARTIFACTS = frozenset({"Counter", "GmPrecompiles", "Anchor"})
"""Committed artifacts that are test or example contracts, not part of the trust service."""

MAX_SAFE_INTEGER = 2**53
"""Integers at or above this are stored as decimal strings (JSON readers lose precision)."""


class DecodingError(Exception):
    """Call data or a log that does not decode against the contract it is addressed to."""


@dataclass(frozen=True)
class Decoded:
    """A decoded call or event."""

    contract: str
    """The contract's name."""
    name: str
    """The function or event name."""
    args: Mapping[str, Any]
    """Argument name -> JSON-ready value."""


def _abi_type(param: Mapping[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


def _signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(_abi_type(p) for p in entry['inputs'])})"


def json_value(value: Any, abi_type: str) -> Any:
    """An ABI-decoded value as a JSON-ready one (see the module docstring)."""
    if isinstance(value, bytes):
        if abi_type == "bytes18":
            text = value.decode("ascii", errors="replace")
            if text.isalnum():
                return text
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value < MAX_SAFE_INTEGER else str(value)
    if isinstance(value, str):
        return value.lower() if abi_type == "address" else value
    if isinstance(value, (tuple, list)):
        inner = abi_type.removesuffix("[]") if abi_type.endswith("[]") else ""
        return [json_value(item, inner) for item in value]
    return str(value)


class ContractAbi:
    """Functions by selector and events by topic of one committed artifact."""

    def __init__(self, name: str) -> None:
        self.name = name
        artifact = load_artifact(name)
        self.bytecode = artifact.bytecode
        self.functions: dict[bytes, Mapping[str, Any]] = {}
        self.events: dict[bytes, Mapping[str, Any]] = {}
        for entry in artifact.abi:
            if entry.get("type") == "function":
                self.functions[keccak(text=_signature(entry))[:4]] = entry
            elif entry.get("type") == "event":
                self.events[keccak(text=_signature(entry))] = entry

    def decode_call(self, data: bytes) -> Decoded:
        """The function and arguments of call data to this contract."""
        entry = self.functions.get(data[:4])
        if entry is None:
            raise DecodingError(f"{self.name}: no function has selector 0x{data[:4].hex()}")
        types = [_abi_type(p) for p in entry["inputs"]]
        try:
            values = abi_decode(types, data[4:])
        except Exception as exc:  # eth_abi raises several unrelated classes
            raise DecodingError(f"{self.name}.{entry['name']}: arguments do not decode") from exc
        args = {
            p["name"] or f"arg{i}": json_value(v, t)
            for i, (p, v, t) in enumerate(zip(entry["inputs"], values, types, strict=True))
        }
        return Decoded(self.name, str(entry["name"]), args)

    def decode_log(self, log: Log) -> Decoded:
        """The event and arguments of a log this contract emitted."""
        if not log.topics or log.topics[0] not in self.events:
            raise DecodingError(f"{self.name}: log matches no event")
        entry = self.events[log.topics[0]]
        indexed = [p for p in entry["inputs"] if p["indexed"]]
        plain = [p for p in entry["inputs"] if not p["indexed"]]
        if len(indexed) != len(log.topics) - 1:
            raise DecodingError(f"{self.name}.{entry['name']}: wrong number of topics")
        args: dict[str, Any] = {}
        try:
            for param, topic in zip(indexed, log.topics[1:], strict=True):
                (value,) = abi_decode([_abi_type(param)], topic)
                args[param["name"]] = json_value(value, _abi_type(param))
            values = abi_decode([_abi_type(p) for p in plain], log.data)
        except Exception as exc:  # eth_abi raises several unrelated classes
            raise DecodingError(f"{self.name}.{entry['name']}: data does not decode") from exc
        for param, value in zip(plain, values, strict=True):
            args[param["name"]] = json_value(value, _abi_type(param))
        ordered = {p["name"]: args[p["name"]] for p in entry["inputs"]}
        return Decoded(self.name, str(entry["name"]), ordered)


def known_contract_names() -> tuple[str, ...]:
    """Every committed artifact the explorer decodes (system and domain contracts)."""
    return tuple(name for name in artifact_names() if name not in _SKIPPED_ARTIFACTS)


class ContractBook:
    """Which address holds which known contract, and their ABIs."""

    def __init__(self, abis: Iterable[ContractAbi]) -> None:
        self.abis = {abi.name: abi for abi in abis}
        self.addresses: dict[bytes, str] = {}
        # Longest bytecode first, so a contract whose code extends another's is not mistaken.
        self._by_code = sorted(self.abis.values(), key=lambda abi: -len(abi.bytecode))

    @classmethod
    def for_genesis(cls, genesis: Genesis) -> ContractBook:
        """The book of a chain: its genesis system contracts placed at their addresses."""
        book = cls(ContractAbi(name) for name in known_contract_names())
        for contract in genesis.system_contracts:
            if contract.name in book.abis:
                book.addresses[bytes(contract.address)] = contract.name
        return book

    def place(self, address: bytes, name: str) -> None:
        """Record that ``address`` holds contract ``name`` (from the index, on restart)."""
        self.addresses[bytes(address)] = name

    def recognise_deployment(self, init_code: bytes) -> str | None:
        """The contract whose bytecode ``init_code`` deploys, if any."""
        for abi in self._by_code:
            if abi.bytecode and init_code.startswith(abi.bytecode):
                return abi.name
        return None

    def name_at(self, address: bytes | None) -> str | None:
        """The contract at ``address``, or None."""
        return None if address is None else self.addresses.get(bytes(address))

    def decode_call(self, to: bytes | None, data: bytes) -> Decoded | None:
        """The decoded call, or None when ``to`` holds no known contract or ``data`` is not
        a call of it."""
        name = self.name_at(to)
        if name is None or len(data) < 4:
            return None
        try:
            return self.abis[name].decode_call(data)
        except DecodingError:
            return None

    def decode_log(self, log: Log) -> Decoded | None:
        """The decoded event, or None when its emitter is no known contract or the log is not
        one of its events."""
        name = self.name_at(log.address)
        if name is None:
            return None
        try:
            return self.abis[name].decode_log(log)
        except DecodingError:
            return None


SUBJECT_FIELDS: dict[str, str] = {
    "uscc": "uscc",
    "department": "uscc",
    "account": "account",
    "validator": "account",
    "by": "actor",
    "issuer": "account",
    "previous": "account",
    "next": "account",
    "root": "batch",
    "leafHash": "leaf",
    "id": "license",
    "oldId": "license",
    "newId": "license",
}
"""Event argument names whose value is a searchable subject, and the subject kind."""


def event_subjects(decoded: Decoded) -> list[tuple[str, str]]:
    """The (kind, key) subjects an event is about: departments, accounts, batches, leaves,
    licenses, proposals, and the account that acted (``actor``, the ``by`` argument).
    ValidatorGovernance's ``id`` is a proposal, not a license."""
    subjects: list[tuple[str, str]] = []
    for field, value in decoded.args.items():
        kind = SUBJECT_FIELDS.get(field)
        if kind is None or value is None:
            continue
        if field == "id" and decoded.contract == "ValidatorGovernance":
            kind = "proposal"
        subjects.append((kind, str(value).lower() if kind != "uscc" else str(value)))
    return subjects


def address_hex(address: bytes | Address | None) -> str | None:
    """``0x`` lowercase hex of an address, or None."""
    return None if address is None else "0x" + bytes(address).hex()
