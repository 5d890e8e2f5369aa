"""State overrides for one read-only call (geth's ``eth_call`` / ``eth_estimateGas`` third
parameter): what chosen accounts hold for the length of the call — balance, EVM nonce,
code, and either their whole storage (``state``) or some slots of it (``state_diff``). They
are applied inside the call's snapshot, so the rollback that ends every call undoes them
with the rest; the ledger's state is never written.

Every override is checked and bounded here, before any is applied: addresses of 20 bytes,
a balance of at most 256 bits, a nonce of at most 64, code of at most :data:`MAX_CODE_BYTES`,
storage slots and values of 32 bytes, at most :data:`MAX_ACCOUNTS` accounts and
:data:`MAX_SLOTS` slots in all, and never ``state`` with ``state_diff`` for one account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth.abc import StateAPI
from eth_typing import Address as EvmAddress

from chain.errors import ExecutionError
from chain.execution.evm import check_address, check_uint
from chain.primitives import Address

MAX_ACCOUNTS = 256
"""Most accounts one call may override."""

MAX_SLOTS = 4_096
"""Most storage slots one call may set, over all its accounts."""

MAX_CODE_BYTES = 1 << 20
"""Largest code an override may install (the bound of a call's data)."""


@dataclass(frozen=True)
class AccountOverride:
    """What one account holds for the length of a call; None leaves that part as it is."""

    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: Mapping[bytes, bytes] | None = None
    """Its whole storage (32-byte slot → 32-byte value); every other slot reads zero."""
    state_diff: Mapping[bytes, bytes] | None = None
    """Slots set over its storage as it is."""


StateOverrides = Mapping[Address, AccountOverride]
"""Account → what it holds for the call."""


def _check_slots(slots: Mapping[bytes, bytes], field: str) -> None:
    for slot, value in slots.items():
        if not (isinstance(slot, bytes) and len(slot) == 32):
            raise ExecutionError(f"{field}: a storage slot is 32 bytes")
        if not (isinstance(value, bytes) and len(value) == 32):
            raise ExecutionError(f"{field}: a storage value is 32 bytes")


def check_overrides(overrides: StateOverrides) -> None:
    """Refuse malformed or oversize overrides with ExecutionError, before any is applied."""
    if len(overrides) > MAX_ACCOUNTS:
        raise ExecutionError(f"state overrides: more than {MAX_ACCOUNTS} accounts")
    slots = 0
    for address, account in overrides.items():
        check_address(address, "state override address", ExecutionError)
        field = f"state override of 0x{address.hex()}"
        if account.balance is not None:
            check_uint(account.balance, f"{field}: balance", ExecutionError)
        if account.nonce is not None:
            check_uint(account.nonce, f"{field}: nonce", ExecutionError, 2**64)
        if account.code is not None and (
            not isinstance(account.code, bytes) or len(account.code) > MAX_CODE_BYTES
        ):
            raise ExecutionError(f"{field}: code of at most {MAX_CODE_BYTES} bytes")
        if account.state is not None and account.state_diff is not None:
            raise ExecutionError(f"{field}: state and stateDiff are exclusive")
        for part, name in ((account.state, "state"), (account.state_diff, "stateDiff")):
            if part is not None:
                _check_slots(part, f"{field}: {name}")
                slots += len(part)
    if slots > MAX_SLOTS:
        raise ExecutionError(f"state overrides: more than {MAX_SLOTS} storage slots")


def apply_overrides(state: StateAPI, overrides: StateOverrides) -> None:
    """Put ``overrides`` (checked by :func:`check_overrides`) into ``state``, which the caller
    has snapshotted and reverts."""
    for address, account in overrides.items():
        evm_address = EvmAddress(address)
        if account.balance is not None:
            state.set_balance(evm_address, account.balance)
        if account.nonce is not None:
            state.set_nonce(evm_address, account.nonce)
        if account.code is not None:
            state.set_code(evm_address, account.code)
        if account.state is not None:
            state.delete_storage(evm_address)
        for slot, value in {**(account.state or {}), **(account.state_diff or {})}.items():
            state.set_storage(
                evm_address, int.from_bytes(slot, "big"), int.from_bytes(value, "big")
            )


__all__ = [
    "MAX_ACCOUNTS",
    "MAX_CODE_BYTES",
    "MAX_SLOTS",
    "AccountOverride",
    "StateOverrides",
    "apply_overrides",
    "check_overrides",
]
