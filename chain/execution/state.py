"""Reading accounts, code and storage at any stored state root, and building the genesis
state, through py-evm's own account database (no other module walks the trie)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import rlp
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.rlp.accounts import Account as EvmAccount
from eth.vm.interrupt import EVMMissingData
from eth_typing import Address as EvmAddress
from eth_typing import Hash32 as EvmHash32
from eth_utils.crypto import keccak
from trie.exceptions import MissingTrieNode
from trie.hexary import HexaryTrie

from chain.errors import ExecutionError, GenesisError, StorageError
from chain.execution.evm import OverlayDB, check_address, check_uint, open_state
from chain.execution.model import (
    EMPTY_STATE_ROOT,
    AccountAlloc,
    AccountInfo,
    BlockContext,
    StateUpdate,
)
from chain.primitives import HASH_SIZE, Address, Hash32
from chain.storage import KeyValueReader

_EMPTY_READER: Mapping[bytes, bytes] = MappingProxyType({})


def _state_overlay(reader: KeyValueReader, state_root: Hash32) -> OverlayDB:
    if not isinstance(state_root, bytes) or len(state_root) != HASH_SIZE:
        raise ExecutionError(f"state root: expected {HASH_SIZE} bytes")
    return OverlayDB(reader)


def _missing_state(state_root: Hash32, exc: Exception) -> StorageError:
    return StorageError(f"state at root {state_root.hex()} is incomplete: {exc}")


def account_at(reader: KeyValueReader, state_root: Hash32, address: Address) -> AccountInfo:
    """The account at ``address`` in the state with ``state_root`` (the empty account if
    absent). Raises ExecutionError on a malformed root or address, StorageError when a trie
    node of the state is missing from ``reader``."""
    overlay = _state_overlay(reader, state_root)
    evm_address = check_address(address, "address", ExecutionError)
    accounts = HexaryTrie(overlay, EvmHash32(state_root))
    try:
        # py-evm's account trie is keyed by the Keccak of the address.
        encoded = accounts.get(keccak(evm_address))
    except MissingTrieNode as exc:
        raise _missing_state(state_root, exc) from exc
    if not encoded:
        return AccountInfo()
    account = rlp.decode(encoded, sedes=EvmAccount)
    return AccountInfo(
        nonce=account.nonce,
        balance=account.balance,
        code_hash=Hash32(bytes(account.code_hash)),
        storage_root=Hash32(bytes(account.storage_root)),
    )


def _account_db(reader: KeyValueReader, state_root: Hash32) -> AccountDB:
    """py-evm's account database over ``reader`` at ``state_root``; it is only read."""
    return AccountDB(AtomicDB(_state_overlay(reader, state_root)), EvmHash32(state_root))


def code_at(reader: KeyValueReader, state_root: Hash32, address: Address) -> bytes:
    """The runtime code at ``address`` in the state with ``state_root`` (empty for a plain or
    absent account). Raises as :func:`account_at` does, and StorageError when the code
    itself is missing."""
    accounts = _account_db(reader, state_root)
    evm_address = EvmAddress(check_address(address, "address", ExecutionError))
    try:
        return bytes(accounts.get_code(evm_address))
    except (MissingTrieNode, EVMMissingData) as exc:
        raise _missing_state(state_root, exc) from exc


def storage_at(reader: KeyValueReader, state_root: Hash32, address: Address, slot: int) -> int:
    """The value of storage ``slot`` of ``address`` in the state with ``state_root`` (0 if
    never written). Raises as :func:`account_at` does, and ExecutionError on a slot outside
    [0, 2**256)."""
    accounts = _account_db(reader, state_root)
    evm_address = EvmAddress(check_address(address, "address", ExecutionError))
    check_uint(slot, "slot", ExecutionError)
    try:
        return int(accounts.get_storage(evm_address, slot))
    except (MissingTrieNode, EVMMissingData) as exc:
        raise _missing_state(state_root, exc) from exc


def genesis_state(alloc: Mapping[Address, AccountAlloc]) -> StateUpdate:
    """Build the genesis state holding ``alloc``; raises GenesisError on an address that is
    not 20 bytes or a balance, slot or value outside [0, 2**256)."""
    # No code runs at genesis; the context only satisfies the state's constructor.
    context = BlockContext(chain_id=0, height=0, timestamp_ms=0, proposer=Address(bytes(20)))
    state, overlay = open_state(_EMPTY_READER, EMPTY_STATE_ROOT, context)
    for address in sorted(alloc):
        account = alloc[address]
        name = f"alloc[{bytes(address).hex()}]"
        evm_address = EvmAddress(check_address(address, name, GenesisError))
        if not isinstance(account, AccountAlloc):
            raise GenesisError(f"{name}: expected an AccountAlloc")
        state.set_balance(evm_address, check_uint(account.balance, f"{name}.balance", GenesisError))
        if not isinstance(account.code, bytes):
            raise GenesisError(f"{name}.code: expected bytes")
        if account.code:
            state.set_code(evm_address, account.code)
        for slot in sorted(account.storage):
            check_uint(slot, f"{name}.storage slot", GenesisError)
            value = check_uint(account.storage[slot], f"{name}.storage value", GenesisError)
            state.set_storage(evm_address, slot, value)
    state.lock_changes()
    state.persist()
    return StateUpdate(
        state_root=Hash32(bytes(state.state_root)), writes=MappingProxyType(overlay.writes)
    )
