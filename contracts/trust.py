"""Python side of the trust contracts (``IssuerRegistry``, ``Notary``, ``LicenseRegistry``):
the constants they share with callers, the encodings of their arguments, and an ABI codec
over a committed artifact.

The contracts are the source of truth; every constant here mirrors one in
``contracts/src/*.sol`` and a test compares them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from chain.crypto import sm3
from chain.merkle import MerkleProof
from chain.primitives import ADDRESS_SIZE, Address, Hash32
from chain.types import Log
from contracts.artifacts import Artifact, load_artifact
from contracts.errors import ContractsError

__all__ = [
    "HOLDER_SALT_MIN_SIZE",
    "OPEN_ENDED",
    "USCC_SIZE",
    "AbiCodecError",
    "ContractCodec",
    "DecodedError",
    "DecodedEvent",
    "HistoryEntry",
    "KeyRecord",
    "LeafStatus",
    "LicenseRecord",
    "LicenseStatus",
    "Reason",
    "Role",
    "TrustEncodingError",
    "account_of",
    "direction_bits",
    "holder_commitment",
    "license_id_hash",
    "uscc_bytes",
]

OPEN_ENDED = 2**64 - 1
"""``validUntilBlock`` of a key whose validity window has no end (IssuerRegistry.OPEN_ENDED)."""

USCC_SIZE = 18
"""Characters in a unified social credit code (GB 32100); the contracts store it as bytes18."""

HOLDER_SALT_MIN_SIZE = 16
"""Fewest salt bytes accepted for a holder commitment, so the identifier cannot be guessed
from the commitment by enumerating the (small) space of identity numbers."""


class Role(enum.IntFlag):
    """Role bits of an IssuerRegistry key (a key may hold several)."""

    ISSUER = 1
    """May anchor batches and issue licenses for its department."""
    REVOKER = 2
    """May revoke batches and leaves, and suspend or revoke licenses, of its department."""
    AUDITOR = 4
    """Marks an auditor's key; grants no write power."""


class LicenseStatus(enum.IntEnum):
    """``LicenseRegistry.Status``."""

    NONE = 0
    """No license has the identifier."""
    ISSUED = 1
    """In force."""
    CHANGED = 2
    """Replaced by a new version (its ``successor``)."""
    SUSPENDED = 3
    """Not in force for now; may be resumed."""
    REVOKED = 4
    """Withdrawn for good."""
    EXPIRED = 5
    """Past its validity, recorded by ``expire`` or implied by ``validUntil``."""


class Reason(enum.IntEnum):
    """Reason codes (uint16) recorded with revocations and license changes. The contracts
    store them without interpreting them; these are the codes the registry writes."""

    UNSPECIFIED = 0
    """No reason given."""
    ISSUED_IN_ERROR = 1
    """The record or license should not have been issued."""
    KEY_COMPROMISE = 2
    """The issuing key is known or suspected to be compromised."""
    SUPERSEDED = 3
    """A corrected or newer version replaces it."""
    DATA_CHANGED = 4
    """Registered particulars (name, address, scope, ...) changed."""
    HOLDER_REQUEST = 5
    """The holder asked for it."""
    LEGAL_DECISION = 6
    """An administrative decision or court judgment orders it."""
    ENTITY_DEREGISTERED = 7
    """The holder (an enterprise) was deregistered or dissolved."""
    TERM_ENDED = 8
    """The term of validity ended."""
    UNDER_INVESTIGATION = 9
    """Suspended while a case is examined."""
    RESTORED = 10
    """A suspension ended."""


class TrustEncodingError(ContractsError):
    """A value that cannot be encoded as a trust-contract argument."""


class AbiCodecError(ContractsError):
    """A name missing from a contract's ABI, or data that does not decode against it."""


def uscc_bytes(uscc: str) -> bytes:
    """The ``bytes18`` form of a USCC: its 18 ASCII characters. The check character is
    verified on chain (``IssuerRegistry.usccValid``); here only the shape is checked, and a
    malformed code raises TrustEncodingError."""
    if not isinstance(uscc, str) or len(uscc) != USCC_SIZE or not uscc.isascii():
        raise TrustEncodingError(f"USCC must be {USCC_SIZE} ASCII characters: {uscc!r}")
    return uscc.encode("ascii")


def account_of(public_key: bytes) -> Address:
    """The account of an uncompressed SM2 public key (0x04 || x || y): the last 20 bytes of
    SM3(x || y), as ``IssuerRegistry.accountOf`` computes it."""
    if len(public_key) != 65 or public_key[0] != 0x04:
        raise TrustEncodingError("public key must be 65 bytes starting with 0x04")
    return Address(sm3(public_key[1:])[-ADDRESS_SIZE:])


def direction_bits(proof: MerkleProof) -> int:
    """The ``directionBits`` argument of ``Notary.revokeLeaf``: bit i set when the sibling of
    step i of ``proof.path`` is the left child."""
    return sum(1 << step for step, item in enumerate(proof.path) if item.sibling_is_left)


def holder_commitment(salt: bytes, holder_id: str) -> Hash32:
    """The salted commitment that stands for a license holder on chain: SM3(salt || holder_id
    in UTF-8). The salt stays with the registry; raises TrustEncodingError if it is shorter
    than HOLDER_SALT_MIN_SIZE bytes."""
    if len(salt) < HOLDER_SALT_MIN_SIZE:
        raise TrustEncodingError(f"holder salt must be at least {HOLDER_SALT_MIN_SIZE} bytes")
    return Hash32(sm3(salt + holder_id.encode("utf-8")))


def license_id_hash(identifier: str) -> Hash32:
    """The on-chain key of an e-license: SM3 of its GB/T 36904 identifier in ASCII."""
    if not identifier or not identifier.isascii():
        raise TrustEncodingError(f"not an e-license identifier: {identifier!r}")
    return Hash32(sm3(identifier.encode("ascii")))


@dataclass(frozen=True)
class KeyRecord:
    """One element of ``IssuerRegistry.keysOf``."""

    public_key: bytes
    """Uncompressed SM2 public key."""
    account: Address
    """The key's account."""
    roles: Role
    """Roles held by the key."""
    valid_from_block: int
    """First block of validity."""
    valid_until_block: int
    """First block past validity (OPEN_ENDED: none)."""

    @classmethod
    def from_abi(cls, value: tuple[Any, ...]) -> KeyRecord:
        """Build from a tuple decoded by :class:`ContractCodec`."""
        public_key, account, roles, valid_from, valid_until = value
        return cls(public_key, Address(account), Role(roles), valid_from, valid_until)


@dataclass(frozen=True)
class LeafStatus:
    """The answer of ``Notary.statusAt``."""

    issued: bool
    """The batch was anchored at or before the block asked about."""
    revoked: bool
    """The leaf or its batch was revoked at or before that block."""
    revoked_at_block: int
    """Block of that revocation (0 if none)."""
    reason: int
    """Reason code of that revocation (see :class:`Reason`)."""

    @property
    def valid(self) -> bool:
        """Issued and not revoked at the block asked about."""
        return self.issued and not self.revoked


@dataclass(frozen=True)
class HistoryEntry:
    """One element of a license's history (``LicenseRegistry.historyAt``)."""

    status: LicenseStatus
    """The state entered."""
    reason: int
    """Reason code (see :class:`Reason`)."""
    block_number: int
    """Block of the change."""
    by: Address
    """Account that made the change."""

    @classmethod
    def from_abi(cls, value: tuple[Any, ...]) -> HistoryEntry:
        """Build from a tuple decoded by :class:`ContractCodec`."""
        status, reason, block_number, by = value
        return cls(LicenseStatus(status), reason, block_number, Address(by))


@dataclass(frozen=True)
class LicenseRecord:
    """The answer of ``LicenseRegistry.licenseOf``."""

    department: bytes
    """USCC of the issuing department (18 bytes)."""
    status: LicenseStatus
    """The state last recorded (``statusOf`` also applies ``valid_until``)."""
    valid_until: int
    """Seconds since the epoch from which it is expired; 0 for no limit."""
    holder_commitment: Hash32
    """Salted SM3 commitment to the holder (see :func:`holder_commitment`)."""
    metadata_hash: Hash32
    """Hash of the license's metadata."""
    predecessor: Hash32
    """The version it replaced (zero if none)."""
    successor: Hash32
    """The version that replaced it (zero if none)."""

    @classmethod
    def from_abi(cls, value: tuple[Any, ...]) -> LicenseRecord:
        """Build from a tuple decoded by :class:`ContractCodec`."""
        department, status, valid_until, holder, metadata, predecessor, successor = value
        return cls(
            department,
            LicenseStatus(status),
            valid_until,
            Hash32(holder),
            Hash32(metadata),
            Hash32(predecessor),
            Hash32(successor),
        )


@dataclass(frozen=True)
class DecodedEvent:
    """A log decoded against a contract's ABI."""

    name: str
    """Event name."""
    args: Mapping[str, Any]
    """Argument name → decoded value (addresses as 20 bytes)."""


@dataclass(frozen=True)
class DecodedError:
    """Revert data decoded against a contract's custom errors."""

    name: str
    """Error name."""
    args: tuple[Any, ...]
    """Decoded arguments (addresses as 20 bytes)."""


def _address(value: str) -> Address:
    return Address(bytes.fromhex(value.removeprefix("0x")))


def _abi_type(param: Mapping[str, Any]) -> str:
    """The canonical type of an ABI parameter, structs spelled as tuples."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


def _types(params: Iterable[Mapping[str, Any]]) -> list[str]:
    return [_abi_type(param) for param in params]


def _normalise(value: Any) -> Any:
    """eth_abi decodes addresses as hex strings; give them back as 20 bytes."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 2 + 2 * ADDRESS_SIZE:
        return _address(value)
    if isinstance(value, tuple):
        return tuple(_normalise(item) for item in value)
    return value


class ContractCodec:
    """Calldata, results, reverts and logs of one contract, from its artifact's ABI.
    Functions are looked up by name (the trust contracts have no overloads)."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        by_type: dict[str, dict[str, Mapping[str, Any]]] = {}
        for entry in artifact.abi:
            if "name" in entry:
                by_type.setdefault(entry["type"], {})[entry["name"]] = entry
        self._functions = by_type.get("function", {})
        self._events = by_type.get("event", {})
        self._errors = {
            keccak(text=self._signature(entry))[:4]: entry
            for entry in by_type.get("error", {}).values()
        }
        self._event_topics = {
            keccak(text=self._signature(entry)): entry for entry in self._events.values()
        }
        self._constructor_inputs: list[Mapping[str, Any]] = next(
            (entry["inputs"] for entry in artifact.abi if entry["type"] == "constructor"), []
        )

    @classmethod
    def load(cls, name: str) -> ContractCodec:
        """The codec of the committed artifact ``name``."""
        return cls(load_artifact(name))

    @staticmethod
    def _signature(entry: Mapping[str, Any]) -> str:
        return f"{entry['name']}({','.join(_types(entry['inputs']))})"

    def _function(self, name: str) -> Mapping[str, Any]:
        try:
            return self._functions[name]
        except KeyError:
            raise AbiCodecError(f"{self.artifact.name} has no function {name!r}") from None

    def deploy_data(self, *args: Any) -> bytes:
        """Init code with the ABI-encoded constructor arguments appended."""
        return self.artifact.bytecode + abi_encode(_types(self._constructor_inputs), args)

    def selector(self, name: str) -> bytes:
        """The 4-byte selector of function ``name``."""
        return keccak(text=self._signature(self._function(name)))[:4]

    def encode_call(self, name: str, *args: Any) -> bytes:
        """Calldata for function ``name`` with ``args``."""
        entry = self._function(name)
        return self.selector(name) + abi_encode(_types(entry["inputs"]), args)

    def decode_result(self, name: str, output: bytes) -> tuple[Any, ...]:
        """The return values of function ``name`` from its output."""
        types = _types(self._function(name)["outputs"])
        try:
            return tuple(_normalise(value) for value in abi_decode(types, output))
        except Exception as exc:  # eth_abi raises several unrelated classes
            raise AbiCodecError(f"{name}: output does not decode as {types}") from exc

    def decode_error(self, output: bytes) -> DecodedError:
        """The custom error in revert data; raises AbiCodecError if it is not one of the
        contract's errors."""
        entry = self._errors.get(output[:4])
        if entry is None:
            raise AbiCodecError(f"{self.artifact.name}: unknown revert data {output.hex()}")
        values = abi_decode(_types(entry["inputs"]), output[4:])
        return DecodedError(entry["name"], tuple(_normalise(value) for value in values))

    def decode_log(self, log: Log) -> DecodedEvent:
        """A log of this contract decoded by its first topic; raises AbiCodecError if the
        topic names none of the contract's events."""
        if not log.topics or log.topics[0] not in self._event_topics:
            raise AbiCodecError(f"{self.artifact.name}: log matches no event")
        entry = self._event_topics[log.topics[0]]
        indexed = [param for param in entry["inputs"] if param["indexed"]]
        plain = [param for param in entry["inputs"] if not param["indexed"]]
        values: dict[str, Any] = {}
        for param, topic in zip(indexed, log.topics[1:], strict=True):
            (values[param["name"]],) = abi_decode([_abi_type(param)], topic)
        for param, value in zip(plain, abi_decode(_types(plain), log.data), strict=True):
            values[param["name"]] = value
        return DecodedEvent(entry["name"], {key: _normalise(v) for key, v in values.items()})
