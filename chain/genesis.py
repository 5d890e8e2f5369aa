"""The genesis description of a chain: parsed from TOML text, validated, written back.

Pure: :func:`parse_genesis` takes the text (the node reads the file), :func:`genesis_to_toml`
returns text, and ``parse_genesis(genesis_to_toml(g)) == g``. The schema::

    chain_id = 7                      # 1 .. 2**63-1
    timestamp_ms = 1700000000000      # genesis time, ms since the Unix epoch
    block_gas_limit = 30000000        # 1 .. 2**63-1
    max_block_bytes = 2097152         # optional: MIN_BLOCK_BYTES .. MAX_BLOCK_BYTES_CEILING
    governance = "0x…"                # optional: address of the governance system contract

    [[validators]]                    # at least one
    name = "审批局"
    public_key = "0x04…"              # 65-byte uncompressed SM2 point
    power = 1                         # 1 .. 2**63-1

    [[accounts]]                      # at least one holds the "governance" role
    address = "0x…"                   # 20 bytes
    roles = ["governance", "sender"]  # from ALLOWED_ROLES
    balance = 0                       # optional; an integer, or "0x…" above 2**63-1
    public_key = "0x04…"              # optional; must derive to ``address``

    [[upgrades]]                      # optional: a parameter change at an agreed height
    height = 120000                   # (chain.upgrades; not part of the genesis block)
    parameter = "block_gas_limit"
    value = 80000000

    [[system_contracts]]              # optional
    name = "Governance"
    address = "0x…"
    code = "0x…"                      # runtime bytecode, not empty
    [system_contracts.storage]        # optional: 32-byte slot = 32-byte value
    "0x00…00" = "0x00…01"

Every problem raises :class:`GenesisFieldError` naming the offending field, for example
``validators[2].public_key: not a 65-byte uncompressed key``.

:func:`genesis_block` turns a genesis into the height-0 block and the state writes of its
initial accounts and system contracts; every node derives the same block from the same
document.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from chain import limits
from chain.bounded_toml import TomlLimitError, loads_toml_bounded
from chain.commit import Validator, ValidatorSet
from chain.crypto import PublicKey
from chain.errors import GenesisError, InvalidKey
from chain.limits import DEFAULT_MAX_BLOCK_BYTES, MAX_BLOCK_BYTES_CEILING, MIN_BLOCK_BYTES
from chain.merkle import merkle_root
from chain.primitives import (
    ADDRESS_SIZE,
    HASH_SIZE,
    PUBLIC_KEY_SIZE,
    ZERO_HASH,
    Address,
    Hash32,
    PublicKeyBytes,
)
from chain.types import Block, Header
from chain.upgrades import NO_UPGRADES, ParameterSchedule, parse_schedule

ALLOWED_ROLES = frozenset({"sender", "deployer", "governance", "issuer", "auditor"})
"""Roles an account may hold at genesis."""

GOVERNANCE_ROLE = "governance"
"""The role at least one genesis account must hold."""

MAX_INT64 = 2**63 - 1
"""Upper bound of chain id, timestamps, gas limit and voting power (a TOML integer)."""

MAX_BALANCE = 2**256 - 1
"""Balances are EVM words."""

MAX_NAME_LENGTH = 64
"""Longest validator or system contract name, in characters."""

_T = TypeVar("_T")


class GenesisFieldError(GenesisError):
    """A genesis value that is missing, of the wrong type, or inconsistent; ``field`` is its
    path in the document (``validators[2].public_key``), empty for the document itself."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        """Path of the offending value, e.g. ``accounts[0].roles[1]``."""
        self.reason = reason
        """What is wrong with it."""


@dataclass(frozen=True)
class GenesisValidator:
    """A validator of the initial validator set."""

    name: str
    """Human-readable name of the operator (e.g. the department)."""
    public_key: PublicKeyBytes
    """The validator's uncompressed SM2 public key; it signs precommits."""
    power: int
    """Voting power, at least 1."""

    @property
    def address(self) -> Address:
        """The validator's address: last 20 bytes of SM3(public key without 0x04)."""
        return _address_of(self.public_key)


@dataclass(frozen=True)
class GenesisAccount:
    """An account that exists from genesis on, with its permissions."""

    address: Address
    """The account's address."""
    roles: frozenset[str]
    """Permissions, a subset of :data:`ALLOWED_ROLES`."""
    balance: int = 0
    """Initial native balance (0 .. 2**256-1)."""
    public_key: PublicKeyBytes | None = None
    """The account's public key when known; it derives to ``address``."""


@dataclass(frozen=True)
class SystemContract:
    """A contract deployed at a fixed address in the genesis state."""

    name: str
    """Name of the contract (e.g. ``Governance``)."""
    address: Address
    """Where the contract lives."""
    code: bytes
    """Runtime bytecode (not init code), not empty."""
    storage: tuple[tuple[Hash32, Hash32], ...] = ()
    """Initial storage as (slot, value) pairs, strictly ascending by slot."""


@dataclass(frozen=True)
class Genesis:
    """Everything the chain starts from."""

    chain_id: int
    """Identifier of the chain, signed into every transaction and vote."""
    timestamp_ms: int
    """Timestamp of the genesis block, milliseconds since the Unix epoch."""
    validators: tuple[GenesisValidator, ...]
    """The initial validator set, in document order."""
    accounts: tuple[GenesisAccount, ...]
    """Accounts that exist at genesis, in document order."""
    system_contracts: tuple[SystemContract, ...]
    """Contracts deployed at genesis, in document order."""
    block_gas_limit: int
    """Upper bound on the gas of one block."""
    governance: Address | None = None
    """Address of the system contract that executes governance decisions, if any."""
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES
    """Upper bound on the canonical encoding of one block, in bytes (a consensus rule: a
    larger block is invalid). Between :data:`~chain.limits.MIN_BLOCK_BYTES` and
    :data:`~chain.limits.MAX_BLOCK_BYTES_CEILING`, so that any transaction fits in a block
    and any block fits in a proposal frame and a WAL record."""
    upgrades: ParameterSchedule = NO_UPGRADES
    """Parameter changes at agreed heights (:mod:`chain.upgrades`). Not part of the genesis
    block: a running chain adopts a schedule without changing its genesis hash."""

    def block_gas_limit_at(self, height: int) -> int:
        """The block gas limit ruling the block at ``height``: ``block_gas_limit`` changed by
        the schedule's entries at or below ``height``."""
        return self.upgrades.value_at("block_gas_limit", height, self.block_gas_limit)

    def validator_set(self) -> ValidatorSet:
        """The validator set that genesis installs."""
        return ValidatorSet.of(Validator(v.public_key, v.power) for v in self.validators)

    def validator_set_hash(self) -> Hash32:
        """The hash of :meth:`validator_set` (what block headers carry)."""
        return self.validator_set().hash()


def _address_of(public_key: PublicKeyBytes) -> Address:
    return PublicKey.from_bytes(public_key).address


# -- parsing -----------------------------------------------------------------------------------


class _Table:
    """One TOML table being read: typed accessors that name the field on error, and a final
    check that no unknown key is left."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise GenesisFieldError(path, "expected a table")
        self._data: dict[str, object] = data
        self._path = path
        self._read: set[str] = set()

    def path(self, name: str) -> str:
        """The document path of key ``name`` of this table."""
        return f"{self._path}.{name}" if self._path else name

    def optional(self, name: str) -> object | None:
        """The raw value of ``name``, or ``None`` if absent."""
        self._read.add(name)
        return self._data.get(name)

    def required(self, name: str) -> object:
        """The raw value of ``name``; raises if it is absent."""
        value = self.optional(name)
        if value is None:
            raise GenesisFieldError(self.path(name), "missing")
        return value

    def finish(self) -> None:
        """Raise for the first key (in sorted order) that no accessor read."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise GenesisFieldError(self.path(unknown[0]), "unknown key")


def _integer(value: object, field: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenesisFieldError(field, f"expected an integer, got {_type_name(value)}")
    if not minimum <= value <= maximum:
        raise GenesisFieldError(field, f"must be between {minimum} and {maximum}")
    return value


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise GenesisFieldError(field, f"expected a string, got {_type_name(value)}")
    return value


def _name(value: object, field: str) -> str:
    name = _string(value, field)
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise GenesisFieldError(field, f"must be 1 to {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise GenesisFieldError(field, "must not contain control characters")
    return name


def _hex(value: object, field: str, size: int | None = None) -> bytes:
    text = _string(value, field)
    if not text.startswith("0x"):
        raise GenesisFieldError(field, 'expected a hex string starting with "0x"')
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        raise GenesisFieldError(field, "not valid hex") from None
    if len(text) != 2 + 2 * len(raw):  # fromhex skips whitespace
        raise GenesisFieldError(field, "not valid hex")
    if size is not None and len(raw) != size:
        raise GenesisFieldError(field, f"expected {size} bytes, got {len(raw)}")
    return raw


def _address(value: object, field: str) -> Address:
    return Address(_hex(value, field, ADDRESS_SIZE))


def _public_key(value: object, field: str) -> PublicKeyBytes:
    raw = _hex(value, field)
    if len(raw) != PUBLIC_KEY_SIZE or raw[0] != 0x04:
        raise GenesisFieldError(field, "not a 65-byte uncompressed key")
    try:
        PublicKey.from_bytes(raw)
    except InvalidKey:
        raise GenesisFieldError(field, "not a point on the SM2 curve") from None
    return PublicKeyBytes(raw)


def _array(value: object, field: str) -> list[object]:
    if not isinstance(value, list):
        raise GenesisFieldError(field, f"expected an array, got {_type_name(value)}")
    return value


def _tables(
    document: _Table, name: str, parse: Callable[[_Table], _T], *, required: bool
) -> tuple[_T, ...]:
    """Parse the array of tables ``name`` with ``parse``, each checked for unknown keys."""
    raw = document.required(name) if required else document.optional(name)
    if raw is None:
        return ()
    items: list[_T] = []
    for index, item in enumerate(_array(raw, document.path(name))):
        table = _Table(item, f"{document.path(name)}[{index}]")
        items.append(parse(table))
        table.finish()
    return tuple(items)


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _parse_validator(table: _Table) -> GenesisValidator:
    return GenesisValidator(
        name=_name(table.required("name"), table.path("name")),
        public_key=_public_key(table.required("public_key"), table.path("public_key")),
        power=_integer(table.required("power"), table.path("power"), 1, MAX_INT64),
    )


def _parse_roles(value: object, field: str) -> frozenset[str]:
    roles: set[str] = set()
    for index, item in enumerate(_array(value, field)):
        role = _string(item, f"{field}[{index}]")
        if role not in ALLOWED_ROLES:
            allowed = ", ".join(sorted(ALLOWED_ROLES))
            raise GenesisFieldError(f"{field}[{index}]", f"unknown role {role!r} ({allowed})")
        if role in roles:
            raise GenesisFieldError(f"{field}[{index}]", f"duplicate role {role!r}")
        roles.add(role)
    return frozenset(roles)


def _parse_balance(value: object, field: str) -> int:
    if not isinstance(value, str):
        return _integer(value, field, 0, MAX_INT64)
    raw = _hex(value, field)
    if len(raw) > HASH_SIZE:
        raise GenesisFieldError(field, f"must be at most {MAX_BALANCE}")
    return int.from_bytes(raw, "big")


def _parse_account(table: _Table) -> GenesisAccount:
    address = _address(table.required("address"), table.path("address"))
    raw_balance = table.optional("balance")
    raw_key = table.optional("public_key")
    public_key = None if raw_key is None else _public_key(raw_key, table.path("public_key"))
    if public_key is not None and _address_of(public_key) != address:
        raise GenesisFieldError(table.path("public_key"), "does not derive to the account address")
    return GenesisAccount(
        address=address,
        roles=_parse_roles(table.required("roles"), table.path("roles")),
        balance=0 if raw_balance is None else _parse_balance(raw_balance, table.path("balance")),
        public_key=public_key,
    )


def _parse_storage(value: object | None, field: str) -> tuple[tuple[Hash32, Hash32], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise GenesisFieldError(field, f"expected a table, got {_type_name(value)}")
    slots: dict[Hash32, Hash32] = {}
    for key, item in value.items():
        slot_field = f'{field}."{key}"'
        slot = Hash32(_hex(key, slot_field, HASH_SIZE))
        if slot in slots:
            raise GenesisFieldError(slot_field, "duplicate storage slot")
        slots[slot] = Hash32(_hex(item, slot_field, HASH_SIZE))
    return tuple(sorted(slots.items()))


def _parse_system_contract(table: _Table) -> SystemContract:
    code = _hex(table.required("code"), table.path("code"))
    if not code:
        raise GenesisFieldError(table.path("code"), "must not be empty")
    return SystemContract(
        name=_name(table.required("name"), table.path("name")),
        address=_address(table.required("address"), table.path("address")),
        code=code,
        storage=_parse_storage(table.optional("storage"), table.path("storage")),
    )


def _reject_duplicates(field: str, attribute: str, values: Iterable[object]) -> None:
    seen: set[object] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise GenesisFieldError(f"{field}[{index}].{attribute}", f"duplicate {attribute}")
        seen.add(value)


def _check_consistency(genesis: Genesis) -> None:
    """Rules across entries: uniqueness, a governance account, a known governance contract."""
    if not genesis.validators:
        raise GenesisFieldError("validators", "at least one validator is required")
    _reject_duplicates("validators", "public_key", (v.public_key for v in genesis.validators))
    _reject_duplicates("validators", "name", (v.name for v in genesis.validators))
    _reject_duplicates("accounts", "address", (a.address for a in genesis.accounts))
    contracts = genesis.system_contracts
    _reject_duplicates("system_contracts", "name", (c.name for c in contracts))
    _reject_duplicates("system_contracts", "address", (c.address for c in contracts))
    account_addresses = {a.address for a in genesis.accounts}
    for index, contract in enumerate(contracts):
        if contract.address in account_addresses:
            raise GenesisFieldError(
                f"system_contracts[{index}].address", "already the address of an account"
            )
    if not any(GOVERNANCE_ROLE in a.roles for a in genesis.accounts):
        raise GenesisFieldError("accounts", "no account holds the governance role")
    if genesis.governance is not None and genesis.governance not in {c.address for c in contracts}:
        raise GenesisFieldError("governance", "not the address of a system contract")


def _optional_max_block_bytes(document: _Table) -> int:
    raw = document.optional("max_block_bytes")
    if raw is None:
        return DEFAULT_MAX_BLOCK_BYTES
    return _integer(raw, "max_block_bytes", MIN_BLOCK_BYTES, MAX_BLOCK_BYTES_CEILING)


def parse_genesis(text: str) -> Genesis:
    """Parse and validate a genesis document. Raises :class:`GenesisFieldError` (a
    GenesisError) naming the first offending field, or a
    :class:`~chain.upgrades.ScheduleError` (also a GenesisError) naming the first offending
    ``[[upgrades]]`` entry."""
    try:
        data = loads_toml_bounded(
            text, max_bytes=limits.MAX_GENESIS_BYTES, max_depth=limits.MAX_TOML_DEPTH
        )
    except TomlLimitError as exc:
        raise GenesisFieldError("", str(exc)) from exc
    document = _Table(data, "")
    raw_governance = document.optional("governance")
    genesis = Genesis(
        chain_id=_integer(document.required("chain_id"), "chain_id", 1, MAX_INT64),
        timestamp_ms=_integer(document.required("timestamp_ms"), "timestamp_ms", 0, MAX_INT64),
        block_gas_limit=_integer(
            document.required("block_gas_limit"), "block_gas_limit", 1, MAX_INT64
        ),
        governance=None if raw_governance is None else _address(raw_governance, "governance"),
        max_block_bytes=_optional_max_block_bytes(document),
        validators=_tables(document, "validators", _parse_validator, required=True),
        accounts=_tables(document, "accounts", _parse_account, required=True),
        system_contracts=_tables(
            document, "system_contracts", _parse_system_contract, required=False
        ),
        upgrades=parse_schedule(document.optional("upgrades")),
    )
    document.finish()
    _check_consistency(genesis)
    return genesis


# -- the genesis block -------------------------------------------------------------------------


def genesis_block(genesis: Genesis) -> tuple[Block, dict[bytes, bytes]]:
    """The height-0 block of ``genesis`` and the state writes of its initial accounts and
    system contracts. Same genesis, same block (and block hash)."""
    # Imported here: the EVM (py-evm) takes about a second to import, and reading or
    # checking a genesis file (every ``lianxin`` command that opens a chain directory) does
    # not need it; only building the genesis state does.
    from chain.execution import AccountAlloc, genesis_state

    alloc: dict[Address, AccountAlloc] = {}
    for account in genesis.accounts:
        alloc[account.address] = AccountAlloc(balance=account.balance, code=b"", storage={})
    for contract in genesis.system_contracts:
        storage = {
            int.from_bytes(slot, "big"): int.from_bytes(value, "big")
            for slot, value in contract.storage
        }
        alloc[contract.address] = AccountAlloc(balance=0, code=contract.code, storage=storage)
    update = genesis_state(alloc)
    empty_root = merkle_root([])
    header = Header(
        parent_hash=ZERO_HASH,
        height=0,
        timestamp_ms=genesis.timestamp_ms,
        proposer=Address(bytes(ADDRESS_SIZE)),
        tx_root=empty_root,
        receipt_root=empty_root,
        state_root=update.state_root,
        validator_set_hash=genesis.validator_set_hash(),
        last_commit_hash=ZERO_HASH,
    )
    return Block(header=header, transactions=(), last_commit=None), dict(update.writes)


# -- writing -----------------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_hex(value: bytes) -> str:
    return _toml_string("0x" + value.hex())


def _toml_balance(value: int) -> str:
    if value <= MAX_INT64:
        return str(value)
    return _toml_hex(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def genesis_to_toml(genesis: Genesis) -> str:
    """Write ``genesis`` as a TOML document that :func:`parse_genesis` reads back equal."""
    lines = [
        f"chain_id = {genesis.chain_id}",
        f"timestamp_ms = {genesis.timestamp_ms}",
        f"block_gas_limit = {genesis.block_gas_limit}",
    ]
    if genesis.max_block_bytes != DEFAULT_MAX_BLOCK_BYTES:
        lines.append(f"max_block_bytes = {genesis.max_block_bytes}")
    if genesis.governance is not None:
        lines.append(f"governance = {_toml_hex(genesis.governance)}")
    for validator in genesis.validators:
        lines += [
            "",
            "[[validators]]",
            f"name = {_toml_string(validator.name)}",
            f"public_key = {_toml_hex(validator.public_key)}",
            f"power = {validator.power}",
        ]
    for account in genesis.accounts:
        roles = ", ".join(_toml_string(role) for role in sorted(account.roles))
        lines += [
            "",
            "[[accounts]]",
            f"address = {_toml_hex(account.address)}",
            f"roles = [{roles}]",
            f"balance = {_toml_balance(account.balance)}",
        ]
        if account.public_key is not None:
            lines.append(f"public_key = {_toml_hex(account.public_key)}")
    for contract in genesis.system_contracts:
        lines += [
            "",
            "[[system_contracts]]",
            f"name = {_toml_string(contract.name)}",
            f"address = {_toml_hex(contract.address)}",
            f"code = {_toml_hex(contract.code)}",
        ]
        if contract.storage:
            lines += ["", "[system_contracts.storage]"]
            lines += [f"{_toml_hex(slot)} = {_toml_hex(value)}" for slot, value in contract.storage]
    lines += genesis.upgrades.to_toml()
    return "\n".join(lines) + "\n"
