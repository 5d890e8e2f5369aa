"""The SM2-verify and SM3 precompiles charge exactly their documented gas: one gas short of
it, a direct call runs out of gas; with it, the call succeeds."""

from __future__ import annotations

import math

import pytest

from chain.crypto import PrivateKey
from chain.execution import (
    SM2_VERIFY_BASE_GAS,
    SM2_VERIFY_PRECOMPILE,
    SM2_VERIFY_WORD_GAS,
    SM3_BASE_GAS,
    SM3_PRECOMPILE,
    SM3_WORD_GAS,
    AccountAlloc,
    BlockContext,
    CallState,
    genesis_state,
)
from chain.primitives import Address

CALLER = Address(bytes.fromhex("00000000000000000000000000000000000000bb"))
TX_BASE_GAS = 21_000
ZERO_BYTE_GAS = 4
NONZERO_BYTE_GAS = 16


def _abi_bytes(*values: bytes) -> bytes:
    head, tail = b"", b""
    for value in values:
        head += (32 * len(values) + len(tail)).to_bytes(32, "big")
        tail += len(value).to_bytes(32, "big") + value + bytes(-len(value) % 32)
    return head + tail


def _intrinsic(data: bytes) -> int:
    zeros = data.count(0)
    return TX_BASE_GAS + ZERO_BYTE_GAS * zeros + NONZERO_BYTE_GAS * (len(data) - zeros)


def _state() -> CallState:
    update = genesis_state({CALLER: AccountAlloc()})
    context = BlockContext(chain_id=7, height=1, timestamp_ms=0, proposer=CALLER)
    return CallState(dict(update.writes), update.state_root, context)


def _sm2_input() -> bytes:
    key = PrivateKey.generate()
    message = b"a record digest"
    return _abi_bytes(key.public_key.to_bytes(), message, key.sign(message), b"")


@pytest.mark.parametrize("which", ["sm2", "sm3"])
def test_precompile_charges_its_documented_gas(which: str) -> None:
    if which == "sm2":
        target, data = SM2_VERIFY_PRECOMPILE, _sm2_input()
        price = SM2_VERIFY_BASE_GAS + SM2_VERIFY_WORD_GAS * math.ceil(len(data) / 32)
    else:
        target, data = SM3_PRECOMPILE, b"x" * 100
        price = SM3_BASE_GAS + SM3_WORD_GAS * math.ceil(len(data) / 32)
    state = _state()
    exact = state.call(sender=CALLER, to=target, data=data, gas=_intrinsic(data) + price)
    assert exact.success and exact.gas_used == _intrinsic(data) + price
    if which == "sm2":
        assert exact.output == (1).to_bytes(32, "big")
    short = state.call(sender=CALLER, to=target, data=data, gas=_intrinsic(data) + price - 1)
    assert not short.success


def test_sm2_verify_is_priced_from_the_benchmark() -> None:
    # bench/bench_precompiles.py: the pure-Python backend's verification at the slowest
    # ordinary gas rate came to 3,150-4,190 gas; the price must cover it.
    assert SM2_VERIFY_BASE_GAS >= 4_190
