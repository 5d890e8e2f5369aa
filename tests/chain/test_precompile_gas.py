"""Precompiles charge exactly their documented gas: one gas short of it, a direct call runs
out of gas; with it, the call succeeds. That holds for SM2 verify and SM3, and for the four
Ethereum precompiles that carry a surcharge on the ledger because py-evm runs them far slower
per gas than ordinary code."""

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
from chain.execution.precompiles import (
    BLAKE2F_BASE_SURCHARGE_GAS,
    BLAKE2F_ROUND_SURCHARGE_GAS,
    ECMUL_SURCHARGE_GAS,
    ECPAIRING_BASE_SURCHARGE_GAS,
    ECRECOVER_SURCHARGE_GAS,
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


def _ethereum(number: int) -> Address:
    return Address(number.to_bytes(20, "big"))


def _priced(which: str) -> tuple[Address, bytes, int]:
    """(precompile, input, the gas the ledger charges for it)."""
    if which == "sm2":
        data = _sm2_input()
        price = SM2_VERIFY_BASE_GAS + SM2_VERIFY_WORD_GAS * math.ceil(len(data) / 32)
        return SM2_VERIFY_PRECOMPILE, data, price
    if which == "sm3":
        data = b"x" * 100
        return SM3_PRECOMPILE, data, SM3_BASE_GAS + SM3_WORD_GAS * math.ceil(len(data) / 32)
    if which == "ecrecover":  # an unrecoverable signature still costs the full price
        return _ethereum(1), bytes(128), 3_000 + ECRECOVER_SURCHARGE_GAS
    if which == "ecmul":
        data = (1).to_bytes(32, "big") + (2).to_bytes(32, "big") + (3).to_bytes(32, "big")
        return _ethereum(7), data, 6_000 + ECMUL_SURCHARGE_GAS
    if which == "ecpairing":  # no pairs: the empty product, true
        return _ethereum(8), b"", 45_000 + ECPAIRING_BASE_SURCHARGE_GAS
    assert which == "blake2f"  # EIP-152 input with 3 rounds
    data = (3).to_bytes(4, "big") + bytes(208) + b"\x01"
    return _ethereum(9), data, BLAKE2F_BASE_SURCHARGE_GAS + 3 * (1 + BLAKE2F_ROUND_SURCHARGE_GAS)


@pytest.mark.parametrize("which", ["sm2", "sm3", "ecrecover", "ecmul", "ecpairing", "blake2f"])
def test_precompile_charges_its_documented_gas(which: str) -> None:
    target, data, price = _priced(which)
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


def test_a_pairing_beyond_its_gas_fails_before_any_pairing_is_computed() -> None:
    # 30 pairs fit Ethereum's price in a 10M-gas call (1.07M gas) and would take py_ecc tens
    # of CPU seconds that nothing can interrupt; on the ledger they cost 15.2M gas, so the
    # call runs out of gas at the surcharge, before the precompile starts.
    g1 = (1).to_bytes(32, "big") + (2).to_bytes(32, "big")
    g2 = b"".join(
        value.to_bytes(32, "big")
        for value in (
            11559732032986387107991004021392285783925812861821192530917403151452391805634,
            10857046999023057135944570762232829481370756359578518086990519993285655852781,
            4082367875863433681332203403145435568316851327593401208105741076214120093531,
            8495653923123431417604973247489272438418190587263600148770280649306958101930,
        )
    )
    result = _state().call(sender=CALLER, to=_ethereum(8), data=(g1 + g2) * 30, gas=10_000_000)
    assert not result.success and result.gas_used == 10_000_000
