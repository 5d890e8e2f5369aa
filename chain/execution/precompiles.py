"""The ledger's precompiles, SM3 and SM2 verification, at addresses outside Ethereum's
0x01-0x11 range, and the gas each charges (see the package docstring for their interface)."""

from __future__ import annotations

from collections.abc import Callable

from eth.abc import ComputationAPI
from eth.vm.forks.cancun.computation import CancunComputation
from eth_typing import Address as EvmAddress

from chain.crypto import DEFAULT_SIGNER_ID, PublicKey, sm3
from chain.errors import ChainError
from chain.primitives import Address

SM2_VERIFY_PRECOMPILE = Address(bytes.fromhex("0000000000000000000000000000000000005a02"))
"""Address of the SM2 signature verification precompile."""

SM3_PRECOMPILE = Address(bytes.fromhex("0000000000000000000000000000000000005a03"))
"""Address of the SM3 hash precompile."""

SM3_BASE_GAS = 60
"""Gas charged by the SM3 precompile for every call."""

SM3_WORD_GAS = 12
"""Gas charged by the SM3 precompile per 32-byte word of input."""

SM2_VERIFY_BASE_GAS = 4_500
"""Gas charged by the SM2 verify precompile for every call (one verification).

Priced from ``bench/bench_precompiles.py`` (2 shared cores, load average 6-7 during the runs,
so absolute times are high; the ratios are what count). Gas bounds work, so a verification
must not buy CPU time more cheaply than ordinary contract code does. The slowest ordinary
workload (memory and arithmetic loops) ran at 1.48-1.53M gas per CPU second. One verification
through the precompile cost 540-710 us on the native (OpenSSL) backend and 2,060-2,830 us on
the pure-Python backend, which a validator without libcrypto verifies with. At the slowest
rate, that is 830-1,050 gas native and 3,150-4,190 gas pure. The price covers the slower
backend, rounded up to 4,500; natively it is about 4x the ordinary rate. The old 3,000 was
under the pure-backend figure. ECRECOVER's 3,000 gas is no reference here: py-evm runs it in
pure Python (8 ms, about 12,000 gas at the ordinary rate)."""

SM2_VERIFY_WORD_GAS = 12
"""Gas charged by the SM2 verify precompile per 32-byte word of input (message hashing)."""

_WORD_SIZE = 32
_SM2_VERIFY_FIELDS = 4


def _words(length: int) -> int:
    return (length + _WORD_SIZE - 1) // _WORD_SIZE


def _sm3_precompile(computation: ComputationAPI) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    computation.consume_gas(
        SM3_BASE_GAS + SM3_WORD_GAS * _words(len(data)), reason="SM3 precompile"
    )
    computation.output = sm3(data)
    return computation


def _decode_bytes_fields(data: bytes, count: int) -> tuple[bytes, ...] | None:
    """Decode ``abi.encode(bytes, ..., bytes)`` with ``count`` fields, or None if malformed."""
    if len(data) < _WORD_SIZE * count:
        return None
    fields: list[bytes] = []
    for index in range(count):
        offset = int.from_bytes(data[_WORD_SIZE * index : _WORD_SIZE * (index + 1)], "big")
        start = offset + _WORD_SIZE
        if start > len(data):
            return None
        length = int.from_bytes(data[offset:start], "big")
        if start + length > len(data):
            return None
        fields.append(data[start : start + length])
    return tuple(fields)


def _sm2_signature_valid(data: bytes) -> bool:
    fields = _decode_bytes_fields(data, _SM2_VERIFY_FIELDS)
    if fields is None:
        return False
    public_key, message, signature, signer_id = fields
    try:
        PublicKey.from_bytes(public_key).verify(signature, message, signer_id or DEFAULT_SIGNER_ID)
    except (ChainError, ValueError):
        return False
    return True


def _sm2_verify_precompile(computation: ComputationAPI) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    computation.consume_gas(
        SM2_VERIFY_BASE_GAS + SM2_VERIFY_WORD_GAS * _words(len(data)),
        reason="SM2 verify precompile",
    )
    computation.output = int(_sm2_signature_valid(data)).to_bytes(_WORD_SIZE, "big")
    return computation


LEDGER_PRECOMPILES: dict[EvmAddress, Callable[[ComputationAPI], ComputationAPI]] = {
    **CancunComputation.get_precompiles(),
    EvmAddress(SM2_VERIFY_PRECOMPILE): _sm2_verify_precompile,
    EvmAddress(SM3_PRECOMPILE): _sm3_precompile,
}
