"""The ledger's precompiles, SM3 and SM2 verification, at addresses outside Ethereum's
0x01-0x11 range, and the gas each charges (see the package docstring for their interface);
and Ethereum's own precompiles, four of them with a surcharge.

Every price here comes from ``bench/bench_precompiles.py``: gas bounds work, so no precompile
may buy CPU time more cheaply than ordinary contract code, whose slowest workloads run at
about 1-1.5M gas per CPU second in py-evm on this kind of machine. Ethereum's prices assume
native code; py-evm runs ECRECOVER, the BN254 curve operations and BLAKE2F in pure Python,
4-14x slower per gas than ordinary code, and one ECPAIRING or BLAKE2F call cannot be stopped
part-way. Those four are charged extra, from their measured cost times 1.5."""

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
through the precompile cost 540-930 us on the native (OpenSSL) backend and 2,060-3,500 us on
the pure-Python backend, which a validator without libcrypto verifies with. At the slowest
rate of each run, that is 830-1,050 gas native and 3,150-4,190 gas pure. The price covers the slower
backend, rounded up to 4,500; natively it is about 4x the ordinary rate. The old 3,000 was
under the pure-backend figure. ECRECOVER's 3,000 gas is no reference here: py-evm runs it in
pure Python (8-12 ms, about 12,000 gas at the ordinary rate; see ECRECOVER_SURCHARGE_GAS)."""

SM2_VERIFY_WORD_GAS = 12
"""Gas charged by the SM2 verify precompile per 32-byte word of input (message hashing)."""

ECRECOVER_SURCHARGE_GAS = 15_000
"""Gas the ECRECOVER precompile (0x01) charges on top of Ethereum's 3,000 (18,000 in all).

``bench/bench_precompiles.py``, two runs on 2 shared cores (load average 12-14): py-evm
recovers in pure Python (eth_keys without coincurve), 11.6-12.0 ms per call, worth
10,400-11,700 gas at the slowest ordinary rate of the same run (0.9-1.0M gas per CPU second).
With a 1.5 margin: 18,000. At 3,000 it bought CPU time four times more cheaply than any
ordinary code, so a block or a call full of it took four times longer than its gas says."""

ECMUL_SURCHARGE_GAS = 13_000
"""Gas the BN254 ECMUL precompile (0x07) charges on top of Ethereum's 6,000 (19,000 in all):
measured 11,100-12,400 gas-equivalent (pure-Python py_ecc), times 1.5, rounded."""

ECPAIRING_BASE_SURCHARGE_GAS = 465_000
"""Gas the BN254 ECPAIRING precompile (0x08) charges on top of Ethereum's 45,000 base
(510,000 in all). One call runs all its pairs in pure Python (py_ecc) and cannot be stopped
part-way, so its price is what bounds its time: measured 215,000-339,000 gas-equivalent for
the fixed part, times 1.5."""

ECPAIRING_PAIR_SURCHARGE_GAS = 456_000
"""Gas ECPAIRING charges per pair on top of Ethereum's 34,000 (490,000 in all): measured
253,000-324,000 gas-equivalent per pair (0.25-0.33 CPU s), times 1.5. At Ethereum's price one
call within a 10M-gas allowance could hold 292 pairs, over a minute of CPU."""

BLAKE2F_ROUND_SURCHARGE_GAS = 20
"""Gas the BLAKE2F precompile (0x09) charges per round on top of Ethereum's 1 (21 in all):
py-evm compresses in pure Python, measured 9-14 gas-equivalent per round, times 1.5. At 1 gas
a round, one call within a 10M-gas allowance could run 10M rounds (minutes), unstoppable."""

BLAKE2F_BASE_SURCHARGE_GAS = 300
"""Gas BLAKE2F charges per call on top of its rounds: the measured fixed part (about 180
gas-equivalent), times 1.5, rounded."""

_WORD_SIZE = 32
_ECPAIRING_PAIR_BYTES = 192
_BLAKE2F_INPUT_BYTES = 213
_BLAKE2F_ROUNDS_BYTES = 4
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


Precompile = Callable[[ComputationAPI], ComputationAPI]


def _surcharged(precompile: Precompile, surcharge: Callable[[bytes], int], name: str) -> Precompile:
    """``precompile`` charging ``surcharge(input)`` more gas first (Ethereum's own charge and
    checks follow unchanged): for precompiles py-evm runs far slower per gas than ordinary
    code, so that gas bounds their time as it bounds everything else's."""

    def run(computation: ComputationAPI) -> ComputationAPI:
        extra = surcharge(computation.msg.data_as_bytes)
        if extra:
            computation.consume_gas(extra, reason=f"{name} surcharge")
        return precompile(computation)

    return run


def _ecpairing_surcharge(data: bytes) -> int:
    if len(data) % _ECPAIRING_PAIR_BYTES:
        return 0  # malformed: the precompile fails and takes all the gas anyway
    pairs = len(data) // _ECPAIRING_PAIR_BYTES
    return ECPAIRING_BASE_SURCHARGE_GAS + ECPAIRING_PAIR_SURCHARGE_GAS * pairs


def _blake2f_surcharge(data: bytes) -> int:
    if len(data) != _BLAKE2F_INPUT_BYTES:
        return 0  # malformed: the precompile fails and takes all the gas anyway
    rounds = int.from_bytes(data[:_BLAKE2F_ROUNDS_BYTES], "big")
    return BLAKE2F_BASE_SURCHARGE_GAS + BLAKE2F_ROUND_SURCHARGE_GAS * rounds


def _ethereum_precompiles() -> dict[EvmAddress, Precompile]:
    precompiles: dict[EvmAddress, Precompile] = dict(CancunComputation.get_precompiles())
    surcharges: dict[int, tuple[Callable[[bytes], int], str]] = {
        0x01: (lambda _: ECRECOVER_SURCHARGE_GAS, "ECRECOVER"),
        0x07: (lambda _: ECMUL_SURCHARGE_GAS, "ECMUL"),
        0x08: (_ecpairing_surcharge, "ECPAIRING"),
        0x09: (_blake2f_surcharge, "BLAKE2F"),
    }
    for number, (surcharge, name) in surcharges.items():
        address = EvmAddress(number.to_bytes(20, "big"))
        precompiles[address] = _surcharged(precompiles[address], surcharge, name)
    return precompiles


LEDGER_PRECOMPILES: dict[EvmAddress, Precompile] = {
    **_ethereum_precompiles(),
    EvmAddress(SM2_VERIFY_PRECOMPILE): _sm2_verify_precompile,
    EvmAddress(SM3_PRECOMPILE): _sm3_precompile,
}
