"""Where the node reads account roles from.

A genesis made by ``lianxin init`` holds the Permissions system contract
(:mod:`contracts.permissions`); its storage is the one source of truth, read at the head state
by :class:`ContractRoles`. A genesis without any Permissions contract (e.g. one built in Python
by a test) keeps *static permissions*: the roles its accounts list, fixed for the life of the
chain (:class:`StaticRoles`).

:func:`check_genesis_permissions` refuses a genesis whose Permissions contract is not at the
system address or whose storage disagrees with the accounts' roles, so that the two can never
tell different stories about height 0.

:class:`Permissions` turns roles into a verdict on a transaction (sender role, not frozen,
deployer role to create a contract). The same verdict serves mempool admission (roles at the
head, :meth:`Permissions.at_head`) and block validity (roles in the state of the block's
parent, :func:`roles_at`): a block that includes a transaction its parent's state does not
permit is not a valid block, whoever proposed it and however it arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from chain.errors import GenesisError, ValidationError
from chain.execution import AccountInfo, sender_address
from chain.genesis import Genesis, SystemContract
from chain.primitives import Address, Hash32
from chain.types import Header, Transaction
from contracts.permissions import (
    CONTRACT_NAME,
    DEPLOYER,
    PERMISSIONS_ADDRESS,
    SENDER,
    genesis_storage,
    is_frozen,
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

    def account(self, header: Header, address: Address) -> AccountInfo:
        """The account at ``address`` after ``header`` (its storage root included)."""
        ...

    def roles_epoch(self, header: Header) -> int | None:
        """A number that committed heads share only when the Permissions contract's storage
        is the same after each of them, or ``None`` if unknown (:mod:`node.roles_watch`)."""
        ...


class LedgerReader(StorageReader, Protocol):
    """A :class:`StorageReader` that also knows the genesis it started from."""

    @property
    def genesis(self) -> Genesis:
        """The chain's genesis."""
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
    """Roles read from the Permissions contract's storage at the ledger's head. Safe to call
    from several threads.

    Roles read are kept for as long as the contract's storage root stays the same: when the
    head moves to one of the same roles epoch (its blocks left the contract alone, see
    :meth:`StorageReader.roles_epoch`) nothing is read; otherwise the contract's account is
    read at the new head (one account lookup, a quarter of an admission's CPU) and the roles
    are read again only if its storage changed. Keyed by the head's hash instead, every
    admission of a chain making a block per transaction read its sender's roles again (the
    account and then the storage trie: half of admission's CPU)."""

    def __init__(self, ledger: StorageReader, address: Address = PERMISSIONS_ADDRESS) -> None:
        """Read ``address``'s storage through ``ledger``."""
        self._ledger = ledger
        self._address = address
        self._lock = threading.Lock()
        self._head_hash: Hash32 | None = None
        self._epoch: int | None = None
        self._storage_root: Hash32 | None = None
        self._cache: dict[Address, int] = {}

    def roles(self, account: Address) -> int:
        """The role bits of ``account`` in the state after the current head."""
        head = self._ledger.head
        cache = self._roles_after(head)
        cached = cache.get(account)
        if cached is not None:
            return cached
        bits = self._ledger.storage(head, self._address, roles_slot(account))
        # Every entry of this mapping was read in a state with the same storage root.
        cache[account] = bits
        return bits

    def _roles_after(self, head: Header) -> dict[Address, int]:
        """The roles read so far in states whose contract storage is that after ``head``."""
        with self._lock:
            if self._head_hash == head.hash:
                return self._cache
        epoch = self._ledger.roles_epoch(head)
        with self._lock:
            if epoch is not None and epoch == self._epoch:
                self._head_hash = head.hash
                return self._cache
        storage_root = self._ledger.account(head, self._address).storage_root
        with self._lock:
            if self._storage_root != storage_root:
                self._storage_root = storage_root
                self._cache = {}
            self._head_hash = head.hash
            self._epoch = epoch
            return self._cache


class HeaderRoles:
    """Roles read from the Permissions contract's storage in the state after one fixed
    header (the parent of a block being judged)."""

    def __init__(
        self, ledger: StorageReader, header: Header, address: Address = PERMISSIONS_ADDRESS
    ) -> None:
        """Read ``address``'s storage in the state after ``header``."""
        self._ledger = ledger
        self._header = header
        self._address = address
        self._cache: dict[Address, int] = {}

    def roles(self, account: Address) -> int:
        """The role bits of ``account`` in the state after the fixed header."""
        bits = self._cache.get(account)
        if bits is None:
            bits = self._ledger.storage(self._header, self._address, roles_slot(account))
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


def roles_at(genesis: Genesis, ledger: StorageReader, header: Header) -> RoleReader:
    """The roles in the state after ``header``: the Permissions contract's storage there if
    ``genesis`` deploys it, else static permissions."""
    if permissions_contract_of(genesis) is None:
        return StaticRoles.from_genesis(genesis)
    return HeaderRoles(ledger, header)


ROLE_SENDER = "sender"
"""Role a sender needs to submit any transaction."""
ROLE_DEPLOYER = "deployer"
"""Role a sender needs, in addition, to create a contract."""


class NotPermitted(ValidationError):
    """A sender that lacks the role the transaction needs."""

    def __init__(self, *, tx_hash: Hash32, sender: Address, role: str, message: str = "") -> None:
        super().__init__(
            message or f"transaction {tx_hash.hex()}: sender 0x{sender.hex()} lacks role {role!r}"
        )
        self.tx_hash = tx_hash
        self.sender = sender
        self.role = role


class AccountFrozen(NotPermitted):
    """A sender that governance has frozen: it keeps its roles but may not send."""

    def __init__(self, *, tx_hash: Hash32, sender: Address) -> None:
        super().__init__(
            tx_hash=tx_hash,
            sender=sender,
            role=ROLE_SENDER,
            message=f"transaction {tx_hash.hex()}: sender 0x{sender.hex()} is frozen",
        )


class Permissions:
    """Decides whether a sender may submit a transaction, from the roles a
    :class:`~node.permissions.RoleReader` answers."""

    def __init__(self, reader: RoleReader) -> None:
        """Check senders against the roles ``reader`` answers."""
        self.reader = reader

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> Permissions:
        """Static permissions: the roles ``genesis`` lists for its accounts (for a genesis with
        the Permissions contract, the roles at height 0 only; see :meth:`at_head`). Raises
        PermissionsGenesisError if the genesis contract disagrees with the accounts."""
        check_genesis_permissions(genesis)
        return cls(StaticRoles.from_genesis(genesis))

    @classmethod
    def at_head(cls, ledger: LedgerReader) -> Permissions:
        """The roles at ``ledger``'s head: from the Permissions contract if its genesis deploys
        one, else static. Raises PermissionsGenesisError as :meth:`from_genesis` does."""
        return cls(role_reader(ledger.genesis, ledger))

    def check(self, tx: Transaction, sender: Address) -> None:
        """Return if ``sender`` may submit ``tx``; raise NotPermitted otherwise."""
        held = self.reader.roles(sender)
        if not held & SENDER:
            raise NotPermitted(tx_hash=tx.hash, sender=sender, role=ROLE_SENDER)
        if is_frozen(held):
            raise AccountFrozen(tx_hash=tx.hash, sender=sender)
        if tx.to is None and not held & DEPLOYER:
            raise NotPermitted(tx_hash=tx.hash, sender=sender, role=ROLE_DEPLOYER)

    def refusal(self, tx: Transaction) -> NotPermitted | None:
        """The NotPermitted error :meth:`check` raises for ``tx``'s sender, or ``None``."""
        try:
            self.check(tx, sender_address(tx))
        except NotPermitted as exc:
            return exc
        return None
