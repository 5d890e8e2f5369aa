"""Read-only calls stop when their caller's stop condition holds: an endless loop given far
more gas than it could use in any reasonable time is interrupted, its changes are dropped, and
the same call state keeps answering afterwards."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from chain.execution import (
    SM3_BASE_GAS,
    SM3_WORD_GAS,
    AccountAlloc,
    BlockContext,
    CallInterrupted,
    CallState,
    estimate_gas,
    genesis_state,
)
from chain.execution.evm import CHARGE_WEIGHT, INTERRUPT_CHECK_CHARGES, INTERRUPT_CHECK_GAS
from chain.primitives import Address

LOOP = Address(bytes.fromhex("00000000000000000000000000000000000010a0"))
STORE_THEN_LOOP = Address(bytes.fromhex("00000000000000000000000000000000000010a1"))
CALLER = Address(bytes.fromhex("00000000000000000000000000000000000000bb"))
ENDLESS_GAS = 2**63
"""Gas no call could burn before the test times out: only the stop condition ends it."""

# JUMPDEST; PUSH1 0; JUMP: jumps back to 0 for ever.
LOOP_CODE = bytes.fromhex("5b600056")
LOOP_CHARGES = (1, 3, 8)
"""The gas each opcode of one turn of LOOP_CODE charges."""
# Without call data: return storage slot 0. With call data: slot 0 := 1, then loop for ever.
# 0 CALLDATASIZE; PUSH1 0x0f; JUMPI; PUSH1 0; SLOAD; PUSH1 0; MSTORE; PUSH1 32; PUSH1 0; RETURN;
# 0x0f JUMPDEST; PUSH1 1; PUSH1 0; SSTORE; 0x15 JUMPDEST; PUSH1 0x15; JUMP.
STORE_THEN_LOOP_CODE = bytes.fromhex("36600f576000546000526020" + "6000f35b60016000555b601556")


def _call_state() -> CallState:
    update = genesis_state(
        {
            LOOP: AccountAlloc(code=LOOP_CODE),
            STORE_THEN_LOOP: AccountAlloc(code=STORE_THEN_LOOP_CODE),
        }
    )
    context = BlockContext(
        chain_id=7, height=1, timestamp_ms=0, proposer=CALLER, gas_limit=ENDLESS_GAS
    )
    return CallState(dict(update.writes), update.state_root, context)


def _after(checks: int) -> tuple[Callable[[], bool], list[int]]:
    """A stop condition that turns true on its ``checks``-th look, and the count of looks."""
    looks = [0]

    def should_stop() -> bool:
        looks[0] += 1
        return looks[0] >= checks

    return should_stop, looks


def _steps_at_look(charges: tuple[int, ...], look: int) -> int:
    """The gas charges made, repeating ``charges``, when the stop condition is looked at the
    ``look``-th time: a countdown of INTERRUPT_CHECK_GAS, each charge taking its gas and
    CHARGE_WEIGHT from it."""
    left, looks = INTERRUPT_CHECK_GAS, 0
    for steps, amount in enumerate(itertools.cycle(charges), start=1):
        left -= amount + CHARGE_WEIGHT
        if left <= 0:
            left, looks = INTERRUPT_CHECK_GAS, looks + 1
            if looks == look:
                return steps
    raise AssertionError("unreachable")


def test_an_endless_call_is_stopped_and_the_state_answers_afterwards() -> None:
    state = _call_state()
    should_stop, looks = _after(5)
    with pytest.raises(CallInterrupted) as caught:
        state.call(sender=CALLER, to=LOOP, data=b"", gas=ENDLESS_GAS, should_stop=should_stop)
    assert looks[0] == 5
    assert caught.value.steps == _steps_at_look(LOOP_CHARGES, 5)
    # Cheap opcodes: never more than INTERRUPT_CHECK_CHARGES of them between two looks.
    assert 4 * INTERRUPT_CHECK_CHARGES < caught.value.steps <= 5 * INTERRUPT_CHECK_CHARGES
    # The same state still runs calls, and a call that ends on its own is never stopped.
    result = state.call(sender=CALLER, to=LOOP, data=b"", gas=100_000, should_stop=lambda: False)
    assert not result.success and result.gas_used == 100_000


def test_an_interrupted_call_leaves_no_write_behind() -> None:
    state = _call_state()
    with pytest.raises(CallInterrupted):
        state.call(
            sender=CALLER,
            to=STORE_THEN_LOOP,
            data=b"\x01",
            gas=ENDLESS_GAS,
            should_stop=lambda: True,
        )
    # The store the interrupted call made before looping was rolled back.
    read = state.call(sender=CALLER, to=STORE_THEN_LOOP, data=b"", gas=100_000)
    assert read.success and read.output == bytes(32)


def test_gas_estimation_is_stopped_as_a_whole() -> None:
    update = genesis_state({LOOP: AccountAlloc(code=LOOP_CODE)})
    context = BlockContext(chain_id=7, height=1, timestamp_ms=0, proposer=CALLER)
    counter = itertools.count(1)
    with pytest.raises(CallInterrupted):
        estimate_gas(
            dict(update.writes),
            update.state_root,
            context,
            sender=CALLER,
            to=LOOP,
            data=b"",
            gas=ENDLESS_GAS,
            should_stop=lambda: next(counter) >= 3,
        )


def test_a_loop_of_costly_precompile_calls_is_looked_at_before_nearly_every_call() -> None:
    # A loop of STATICCALLs to the SM3 precompile over 64 KiB of zeros in memory: each call
    # charges about 25,000 gas for its hashing before doing it, so the stop condition must be
    # looked at between calls, not only every few hundred gas charges.
    size = 64 * 1024
    per_call = SM3_BASE_GAS + SM3_WORD_GAS * size // 32
    # 0 JUMPDEST; PUSH1 32 (retSize); PUSH1 0 (retOffset); PUSH3 size (argsSize);
    # PUSH1 0 (argsOffset); PUSH2 0x5a03; GAS; STATICCALL; POP; PUSH1 0; JUMP
    code = bytes.fromhex(f"5b6020600062{size:06x}6000615a035afa50600056")
    hasher = Address(bytes.fromhex("00000000000000000000000000000000000010a3"))
    update = genesis_state({hasher: AccountAlloc(code=code)})
    context = BlockContext(chain_id=7, height=1, timestamp_ms=0, proposer=CALLER, gas_limit=2**63)
    state = CallState(dict(update.writes), update.state_root, context)
    should_stop, looks = _after(10)
    with pytest.raises(CallInterrupted) as caught:
        state.call(sender=CALLER, to=hasher, data=b"", gas=ENDLESS_GAS, should_stop=should_stop)
    # A loop turn is about a dozen steps, and each turn's call and hashing charge at least
    # INTERRUPT_CHECK_GAS: 10 looks come within 10 turns, not 10 x 256 steps.
    assert per_call >= INTERRUPT_CHECK_GAS
    assert looks[0] == 10
    assert caught.value.steps <= 10 * 13
