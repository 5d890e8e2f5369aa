"""Access lists (``CallState.access_list``, geth's ``eth_createAccessList``): the accounts and
storage slots a call touches, recorded where py-evm's EIP-2929 rules look at them. Slots of
``to`` read and written; accounts whose balance or code is read; a called contract and the
slot it reads; slots written in a frame that reverted; a DELEGATECALL's slots under the
caller's account; the coinbase only when code reads it; the sender, a bare ``to`` and the
precompiles left out; a reverted call's list; the state unchanged afterwards; no recording
by the calls that follow, whether the access-list call returned or raised."""

from __future__ import annotations

import pytest

from chain.errors import ExecutionError
from chain.execution import (
    SM2_VERIFY_PRECOMPILE,
    SM3_PRECOMPILE,
    AccessListEntry,
    AccessListTooLong,
    AccountAlloc,
    AccountOverride,
    BlockContext,
    CallState,
    genesis_state,
)
from chain.execution.calls import CallExecutionState
from chain.primitives import Address, Hash32

SENDER = Address(b"\x06" * 20)
PROPOSER = Address(b"\x07" * 20)
TARGET = Address(b"\x05" * 20)
RICH = Address(b"\x0a" * 20)
"""An account whose balance is read."""
CODED = Address(b"\x0b" * 20)
"""An account whose code size and hash are read."""
THIRD = Address(b"\x0c" * 20)
"""A contract that reads its own slot 7."""
FAILING = Address(b"\x0d" * 20)
"""A contract that writes its slot 8, then reverts."""
LIBRARY = Address(b"\x0e" * 20)
"""A contract run by DELEGATECALL that reads slot 9 (of its caller's storage)."""
ECRECOVER = Address((1).to_bytes(20, "big"))

SLOAD, SSTORE, BALANCE, EXTCODESIZE, EXTCODEHASH = b"\x54", b"\x55", b"\x31", b"\x3b", b"\x3f"
POP, GAS, CALL, DELEGATECALL, STATICCALL = b"\x50", b"\x5a", b"\xf1", b"\xf4", b"\xfa"
ADDRESS, CALLER, COINBASE = b"\x30", b"\x33", b"\x41"
MSTORE, RETURN, REVERT = b"\x52", b"\xf3", b"\xfd"


def push(value: int | bytes) -> bytes:
    """PUSHn of ``value`` (an int in the fewest bytes, at least one)."""
    if isinstance(value, bytes):
        raw = value
    else:
        raw = value.to_bytes(max(1, -(-value.bit_length() // 8)), "big")
    return bytes([0x5F + len(raw)]) + raw


def load(slot: int) -> bytes:
    return push(slot) + SLOAD + POP


def store(slot: int, value: int) -> bytes:
    return push(value) + push(slot) + SSTORE


def call(opcode: bytes, address: bytes) -> bytes:
    """CALL (with a zero value), DELEGATECALL or STATICCALL of ``address`` with no input and
    all the gas; the success flag is dropped."""
    zeros = 5 if opcode == CALL else 4
    return push(0) * zeros + push(address) + GAS + opcode + POP


def revert_empty() -> bytes:
    return push(0) + push(0) + REVERT


def key(slot: int) -> Hash32:
    return Hash32(slot.to_bytes(32, "big"))


def _state(target_code: bytes) -> CallState:
    alloc = {
        TARGET: AccountAlloc(code=target_code, storage={1: 11, 2: 22}),
        RICH: AccountAlloc(balance=5),
        CODED: AccountAlloc(code=b"\x00"),
        THIRD: AccountAlloc(code=load(7), storage={7: 77}),
        FAILING: AccountAlloc(code=store(8, 1) + revert_empty()),
        LIBRARY: AccountAlloc(code=load(9)),
    }
    update = genesis_state(alloc)
    context = BlockContext(chain_id=7, height=3, timestamp_ms=1_700_000_000_000, proposer=PROPOSER)
    return CallState(dict(update.writes), update.state_root, context)


def _recorder(state: CallState) -> object:
    evm_state = state._state
    assert isinstance(evm_state, CallExecutionState)
    return evm_state.access_recorder


def test_slots_of_to_read_and_written_are_listed_under_to_and_nothing_else() -> None:
    # SLOAD 1, SSTORE 2 := 5, SLOAD 1 and SLOAD 2 again (each slot listed once).
    state = _state(load(1) + store(2, 5) + load(1) + load(2))
    result = state.access_list(sender=SENDER, to=TARGET, data=b"")
    assert result.success
    assert result.access_list == (AccessListEntry(TARGET, (key(1), key(2))),)
    assert result.gas_used == state.call(sender=SENDER, to=TARGET, data=b"").gas_used


def test_accounts_read_and_called_are_listed_and_the_warm_ones_left_out() -> None:
    code = (
        push(RICH) + BALANCE + POP
        + push(CODED) + EXTCODESIZE + POP
        + push(CODED) + EXTCODEHASH + POP
        + call(CALL, THIRD)
        + call(CALL, FAILING)
        + call(DELEGATECALL, LIBRARY)
        + call(STATICCALL, ECRECOVER)
        + call(STATICCALL, SM3_PRECOMPILE)
        + call(STATICCALL, SM2_VERIFY_PRECOMPILE)
        + CALLER + BALANCE + POP
        + ADDRESS + BALANCE + POP
        + push(RICH) + BALANCE + POP
    )  # fmt: skip
    state = _state(code)
    result = state.access_list(sender=SENDER, to=TARGET, data=b"")
    assert result.success
    assert result.access_list == (
        AccessListEntry(RICH, ()),
        AccessListEntry(CODED, ()),
        AccessListEntry(THIRD, (key(7),)),
        AccessListEntry(FAILING, (key(8),)),  # written in a frame that reverted
        AccessListEntry(LIBRARY, ()),
        AccessListEntry(TARGET, (key(9),)),  # LIBRARY's SLOAD reads its caller's storage
    )
    listed = {entry.address for entry in result.access_list}
    assert not listed & {SENDER, PROPOSER, ECRECOVER, SM3_PRECOMPILE, SM2_VERIFY_PRECOMPILE}


def test_the_coinbase_is_listed_only_when_code_reads_it() -> None:
    # The balances of the coinbase, of to itself (bare: left out) and of the sender (too).
    state = _state(COINBASE + BALANCE + POP + ADDRESS + BALANCE + POP + CALLER + BALANCE + POP)
    result = state.access_list(sender=SENDER, to=TARGET, data=b"")
    assert result.access_list == (AccessListEntry(PROPOSER, ()),)
    untouched = _state(load(1)).access_list(sender=SENDER, to=TARGET, data=b"")
    assert [entry.address for entry in untouched.access_list] == [TARGET]


def test_a_creation_leaves_out_the_created_account_unless_its_storage_is_touched() -> None:
    state = _state(b"")
    plain = state.access_list(sender=SENDER, to=None, data=push(RICH) + BALANCE + POP)
    assert plain.success and plain.access_list == (AccessListEntry(RICH, ()),)
    storing = state.access_list(sender=SENDER, to=None, data=store(3, 1))
    assert storing.success
    ((created, keys),) = ((entry.address, entry.storage_keys) for entry in storing.access_list)
    assert keys == (key(3),) and created not in {SENDER, TARGET, RICH}


def test_a_reverted_call_reports_what_it_touched() -> None:
    state = _state(load(3) + push(RICH) + BALANCE + POP + revert_empty())
    result = state.access_list(sender=SENDER, to=TARGET, data=b"")
    assert not result.success
    assert result.output == b""
    assert result.access_list == (AccessListEntry(TARGET, (key(3),)), AccessListEntry(RICH, ()))
    assert result.gas_used == state.call(sender=SENDER, to=TARGET, data=b"").gas_used


def test_the_state_is_unchanged_after_an_access_list_call() -> None:
    # Return slot 2 as it was, then overwrite it: a second run sees the old value only if
    # the first one was rolled back.
    returning = push(2) + SLOAD + push(0) + MSTORE + store(2, 5) + push(32) + push(0) + RETURN
    state = _state(returning)
    for _ in range(2):
        result = state.access_list(sender=SENDER, to=TARGET, data=b"")
        assert result.success and int.from_bytes(result.output, "big") == 22
    assert int.from_bytes(state.call(sender=SENDER, to=TARGET, data=b"").output, "big") == 22


def test_overrides_hold_for_the_access_list_call() -> None:
    state = _state(b"")
    overrides = {TARGET: AccountOverride(code=load(4) + push(RICH) + BALANCE + POP)}
    result = state.access_list(sender=SENDER, to=TARGET, data=b"", overrides=overrides)
    assert result.access_list == (AccessListEntry(TARGET, (key(4),)), AccessListEntry(RICH, ()))
    assert state.access_list(sender=SENDER, to=TARGET, data=b"").access_list == ()


def test_the_calls_that_follow_record_nothing_whether_it_returned_or_raised() -> None:
    state = _state(load(1) + push(RICH) + BALANCE + POP + call(CALL, THIRD))
    assert _recorder(state) is None
    assert len(state.access_list(sender=SENDER, to=TARGET, data=b"").access_list) == 3
    assert _recorder(state) is None
    state.call(sender=SENDER, to=TARGET, data=b"")
    assert _recorder(state) is None
    with pytest.raises(ExecutionError):  # below the intrinsic gas: refused before running
        state.access_list(sender=SENDER, to=TARGET, data=b"", gas=20_000)
    assert _recorder(state) is None
    with pytest.raises(AccessListTooLong) as too_long:  # raised from inside the EVM
        state.access_list(sender=SENDER, to=TARGET, data=b"", max_entries=4)
    assert too_long.value.limit == 4
    assert _recorder(state) is None
    assert state.call(sender=SENDER, to=TARGET, data=b"").success
    assert _recorder(state) is None
    # At the limit (three accounts and two slots) the list is whole.
    at_limit = state.access_list(sender=SENDER, to=TARGET, data=b"", max_entries=5)
    assert len(at_limit.access_list) == 3


def test_malformed_inputs_are_refused() -> None:
    state = _state(b"")
    for bad in (
        {"sender": b"\x01"},
        {"to": b"\x01"},
        {"gas": -1},
        {"max_entries": -1},
        {"overrides": {TARGET: AccountOverride(nonce=2**64)}},
    ):
        arguments = {"sender": SENDER, "to": TARGET, "data": b"", **bad}
        with pytest.raises(ExecutionError):
            state.access_list(**arguments)  # type: ignore[arg-type]
    assert _recorder(state) is None
