"""State overrides hold for one call and nothing after it: code, whole storage or some slots,
balance and nonce as the call sees them, the state as it was for the next call on the same
reused state (a reverted override included); malformed or oversize overrides raise
ExecutionError before any is applied."""

from __future__ import annotations

import pytest

from chain.errors import ExecutionError
from chain.execution import AccountAlloc, AccountOverride, BlockContext, CallState, genesis_state
from chain.execution.overrides import MAX_ACCOUNTS, MAX_SLOTS
from chain.primitives import Address

RETURN_SLOT_ZERO = bytes.fromhex("60005460005260206000f3")
"""SLOAD 0, MSTORE 0, RETURN 32 bytes."""
REVERT_AFTER_SSTORE = bytes.fromhex("600960005560006000fd")
"""SSTORE 9 into slot 0, then REVERT."""
TARGET = Address(b"\x05" * 20)
SENDER = Address(b"\x06" * 20)
SLOT0 = bytes(32)


def _word(number: int) -> bytes:
    return number.to_bytes(32, "big")


def _state() -> CallState:
    alloc = {TARGET: AccountAlloc(code=RETURN_SLOT_ZERO, storage={0: 3, 1: 4})}
    update = genesis_state(alloc)
    context = BlockContext(chain_id=7, height=3, timestamp_ms=1_700_000_000_000, proposer=SENDER)
    return CallState(dict(update.writes), update.state_root, context)


def _slot0(state: CallState, override: AccountOverride | None = None) -> int:
    overrides = None if override is None else {TARGET: override}
    result = state.call(sender=SENDER, to=TARGET, data=b"", overrides=overrides)
    assert result.success
    return int.from_bytes(result.output, "big")


def test_overrides_hold_for_their_call_only() -> None:
    state = _state()
    assert _slot0(state) == 3
    assert _slot0(state, AccountOverride(state_diff={SLOT0: _word(8)})) == 8
    assert _slot0(state, AccountOverride(state={_word(1): _word(1)})) == 0  # the whole storage
    assert _slot0(state, AccountOverride(code=bytes.fromhex("602a60005260206000f3"))) == 42
    reverting = AccountOverride(code=REVERT_AFTER_SSTORE)
    assert not state.call(sender=SENDER, to=TARGET, data=b"", overrides={TARGET: reverting}).success
    assert _slot0(state) == 3
    with pytest.raises(ExecutionError):
        state.call(sender=SENDER, to=TARGET, data=b"", value=5)
    rich = {SENDER: AccountOverride(balance=10, nonce=4)}
    assert state.call(sender=SENDER, to=TARGET, data=b"", value=5, overrides=rich).success
    assert state.estimate_gas(sender=SENDER, to=TARGET, data=b"", value=5, overrides=rich)
    with pytest.raises(ExecutionError):
        state.call(sender=SENDER, to=TARGET, data=b"", value=5)


@pytest.mark.parametrize(
    "overrides",
    [
        {TARGET: AccountOverride(state={SLOT0: _word(1)}, state_diff={SLOT0: _word(1)})},
        {TARGET: AccountOverride(state_diff={b"\x00": _word(1)})},
        {TARGET: AccountOverride(state_diff={SLOT0: b"\x01"})},
        {TARGET: AccountOverride(nonce=2**64)},
        {TARGET: AccountOverride(balance=-1)},
        {TARGET: AccountOverride(code=bytes((1 << 20) + 1))},
        {Address(b"\x05"): AccountOverride(balance=1)},
        {Address(n.to_bytes(20, "big")): AccountOverride() for n in range(MAX_ACCOUNTS + 1)},
        {TARGET: AccountOverride(state_diff={_word(n): SLOT0 for n in range(MAX_SLOTS + 1)})},
    ],
)
def test_malformed_or_oversize_overrides_are_refused_and_change_nothing(
    overrides: dict[Address, AccountOverride],
) -> None:
    state = _state()
    with pytest.raises(ExecutionError):
        state.call(sender=SENDER, to=TARGET, data=b"", overrides=overrides)
    assert _slot0(state) == 3
