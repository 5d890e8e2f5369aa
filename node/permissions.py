"""Where the node reads account roles from.

A genesis made by ``lianxin init`` holds the Permissions system contract
(:mod:`contracts.permissions`); its storage is the one source of truth, read at the head state
by :class:`ContractRoles`. A genesis without any Permissions contract (e.g. one built in Python
by a test) keeps *static permissions*: the roles its accounts list, fixed for the life of the
chain (:class:`StaticRoles`).

:func:`check_genesis_permissions` refuses a genesis whose Permissions contract is not at the
system address or whose storage disagrees with the accounts' roles, so that the two can never
tell different stories about height 0.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from chain.errors import GenesisError
from chain.genesis import Genesis, SystemContract
from chain.primitives import Address, Hash32
from chain.types import Header
from contracts.permissions import (
    CONTRACT_NAME,
    PERMISSIONS_ADDRESS,
    genesis_storage,
    role_bits,
    roles_slot,
    storage_pairs,
)


class PermissionsGenesisError(GenesisError):
    """A genesis whose Permissions contract disagrees with its accounts."""


class RoleReader(Protocol):
    """Answers the current role bitmask of an account (see :mod:`contracts.permissions`)."""

    def roles(self, account: Address) -> int:
        """The role bits of ``account`` (0 for an unknown account)."""
        ...


class StorageReader(Protocol):
    """The part of :class:`node.ledger.Ledger` that :class:`ContractRoles` reads."""

    @property
    def head(self) -> Header:
        """The highest committed header."""
        ...

    def storage(self, header: Header, address: Address, slot: int) -> int:
        """Storage ``slot`` of ``address`` after ``header``."""
        ...


class StaticRoles:
    """Static permissions: the roles the genesis accounts list, never changing."""

    def __init__(self, roles: Mapping[Address, int]) -> None:
        """``roles``: account → role bits."""
        self._roles = dict(roles)

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> StaticRoles:
        """The roles ``genesis`` lists for its accounts."""
        return cls({account.address: role_bits(account.roles) for account in genesis.accounts})

    def roles(self, account: Address) -> int:
        """The role bits genesis gave ``account``."""
        return self._roles.get(account, 0)


class ContractRoles:
    """Roles read from the Permissions contract's storage at the ledger's head, cached until
    the head moves. Safe to call from several threads."""

    def __init__(self, ledger: StorageReader, address: Address = PERMISSIONS_ADDRESS) -> None:
        """Read ``address``'s storage through ``ledger``."""
        self._ledger = ledger
        self._address = address
        self._lock = threading.Lock()
        self._head_hash: Hash32 | None = None
        self._cache: dict[Address, int] = {}

    def roles(self, account: Address) -> int:
        """The role bits of ``account`` in the state after the current head."""
        head = self._ledger.head
        with self._lock:
            if self._head_hash != head.hash:
                self._head_hash = head.hash
                self._cache = {}
            cached = self._cache.get(account)
        if cached is not None:
            return cached
        bits = self._ledger.storage(head, self._address, roles_slot(account))
        with self._lock:
            if self._head_hash == head.hash:
                self._cache[account] = bits
        return bits


def permissions_contract_of(genesis: Genesis) -> SystemContract | None:
    """The Permissions system contract of ``genesis`` after
    :func:`check_genesis_permissions`, or ``None`` (static permissions)."""
    check_genesis_permissions(genesis)
    for contract in genesis.system_contracts:
        if contract.address == PERMISSIONS_ADDRESS:
            return contract
    return None


def check_genesis_permissions(genesis: Genesis) -> None:
    """Raise PermissionsGenesisError if a Permissions contract sits elsewhere than
    :data:`~contracts.permissions.PERMISSIONS_ADDRESS`, or if its initial storage is not
    exactly what the genesis accounts' roles give."""
    for index, contract in enumerate(genesis.system_contracts):
        if contract.name == CONTRACT_NAME and contract.address != PERMISSIONS_ADDRESS:
            raise PermissionsGenesisError(
                f"system_contracts[{index}]: {CONTRACT_NAME} must live at "
                f"0x{PERMISSIONS_ADDRESS.hex()}, not 0x{contract.address.hex()}"
            )
        if contract.address != PERMISSIONS_ADDRESS:
            continue
        expected = storage_pairs(genesis_storage(genesis.accounts))
        if contract.storage != expected:
            raise PermissionsGenesisError(
                f"system_contracts[{index}].storage: the {contract.name} contract's initial "
                "storage disagrees with the roles of the genesis accounts; regenerate it "
                "from the accounts (contracts.permissions.permissions_contract)"
            )


def role_reader(genesis: Genesis, ledger: StorageReader) -> RoleReader:
    """Where to read roles for a chain started from ``genesis``: the Permissions contract at
    the head of ``ledger`` if genesis deploys it, else static permissions. Raises
    PermissionsGenesisError (see :func:`check_genesis_permissions`)."""
    if permissions_contract_of(genesis) is None:
        return StaticRoles.from_genesis(genesis)
    return ContractRoles(ledger)
