"""The Permissions system contract: its address, role bits, genesis storage and call data.

``contracts/src/Permissions.sol`` keeps each account's roles as a bitmask in
``mapping(address => uint256) roles`` (storage slot 0) and the number of active governance
accounts in ``governanceCount`` (slot 1). The contract's storage is the one source of truth
from height 0: :func:`genesis_storage` computes it from the genesis accounts' roles, and
:func:`permissions_contract` wraps it with the runtime code as a genesis system contract.

A single governance account signs each change for now; multi-signature governance comes with
validator governance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.crypto import keccak

from chain.genesis import GenesisAccount, SystemContract
from chain.primitives import Address, Hash32
from contracts.artifacts import load_artifact
from contracts.errors import ContractsError

CONTRACT_NAME = "Permissions"
"""Name of the contract, as in its Solidity source and in genesis."""

PERMISSIONS_ADDRESS = Address(bytes.fromhex("000000000000000000000000000000000000a001"))
"""Where the Permissions system contract lives."""

SENDER = 1
"""May send transactions."""
DEPLOYER = 2
"""May create contracts (in addition to SENDER)."""
GOVERNANCE = 4
"""May grant, revoke, freeze and unfreeze."""
ISSUER = 8
"""May issue records through the trust-service contracts."""
AUDITOR = 16
"""May read audit data."""
FROZEN = 1 << 255
"""Set while an account is frozen: it keeps its roles but may not send."""

ROLE_BITS: Mapping[str, int] = {
    "sender": SENDER,
    "deployer": DEPLOYER,
    "governance": GOVERNANCE,
    "issuer": ISSUER,
    "auditor": AUDITOR,
}
"""Role name (as in genesis) → its bit."""

ROLES_SLOT = 0
"""Storage slot of the ``roles`` mapping."""
GOVERNANCE_COUNT_SLOT = 1
"""Storage slot of ``governanceCount``."""

ROLES_CHANGED_TOPIC = Hash32(keccak(text="RolesChanged(address,uint256,address)"))
"""topic0 of ``RolesChanged(address indexed account, uint256 roles, address indexed by)``."""
FROZEN_TOPIC = Hash32(keccak(text="Frozen(address,bool,address)"))
"""topic0 of ``Frozen(address indexed account, bool frozen, address indexed by)``."""


class UnknownRole(ContractsError):
    """A role name that is not one of :data:`ROLE_BITS`."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown role {name!r} (one of {', '.join(ROLE_BITS)})")
        self.name = name


def role_bits(names: Iterable[str]) -> int:
    """The bitmask of role ``names``; raises UnknownRole."""
    bits = 0
    for name in names:
        bit = ROLE_BITS.get(name)
        if bit is None:
            raise UnknownRole(name)
        bits |= bit
    return bits


def role_names(bits: int) -> frozenset[str]:
    """The role names set in ``bits`` (FROZEN and unknown bits are not roles)."""
    return frozenset(name for name, bit in ROLE_BITS.items() if bits & bit)


def is_frozen(bits: int) -> bool:
    """Whether ``bits`` carries the FROZEN flag."""
    return bool(bits & FROZEN)


def roles_slot(account: Address) -> int:
    """The storage slot of ``roles[account]``: keccak(account ‖ slot index), as Solidity lays
    out a mapping."""
    key = bytes(12) + bytes(account) + ROLES_SLOT.to_bytes(32, "big")
    return int.from_bytes(keccak(key), "big")


def genesis_storage(accounts: Iterable[GenesisAccount]) -> dict[int, int]:
    """The contract storage (slot → value) that grants each genesis account its roles."""
    storage: dict[int, int] = {}
    governance = 0
    for account in accounts:
        bits = role_bits(account.roles)
        if bits:
            storage[roles_slot(account.address)] = bits
        if bits & GOVERNANCE:
            governance += 1
    if governance:
        storage[GOVERNANCE_COUNT_SLOT] = governance
    return storage


def storage_pairs(storage: Mapping[int, int]) -> tuple[tuple[Hash32, Hash32], ...]:
    """``storage`` as genesis (slot, value) pairs, ascending by slot, zero values left out."""
    return tuple(
        (Hash32(slot.to_bytes(32, "big")), Hash32(value.to_bytes(32, "big")))
        for slot, value in sorted(storage.items())
        if value
    )


def permissions_contract(accounts: Iterable[GenesisAccount]) -> SystemContract:
    """The Permissions system contract for a genesis with ``accounts``: runtime code from the
    committed artifact, storage granting each account its roles."""
    return SystemContract(
        name=CONTRACT_NAME,
        address=PERMISSIONS_ADDRESS,
        code=load_artifact(CONTRACT_NAME).deployed_bytecode,
        storage=storage_pairs(genesis_storage(accounts)),
    )


def _call(signature: str, types: list[str], values: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def _address_text(account: Address) -> str:
    return "0x" + bytes(account).hex()


def grant_call(account: Address, bits: int) -> bytes:
    """Call data of ``grant(account, bits)``."""
    return _call("grant(address,uint256)", ["address", "uint256"], [_address_text(account), bits])


def revoke_call(account: Address, bits: int) -> bytes:
    """Call data of ``revoke(account, bits)``."""
    return _call("revoke(address,uint256)", ["address", "uint256"], [_address_text(account), bits])


def freeze_call(account: Address) -> bytes:
    """Call data of ``freeze(account)``."""
    return _call("freeze(address)", ["address"], [_address_text(account)])


def unfreeze_call(account: Address) -> bytes:
    """Call data of ``unfreeze(account)``."""
    return _call("unfreeze(address)", ["address"], [_address_text(account)])


def roles_call(account: Address) -> bytes:
    """Call data of the ``roles(account)`` getter (returns one uint256)."""
    return _call("roles(address)", ["address"], [_address_text(account)])


def governance_count_call() -> bytes:
    """Call data of the ``governanceCount()`` getter."""
    return function_signature_to_4byte_selector("governanceCount()")
