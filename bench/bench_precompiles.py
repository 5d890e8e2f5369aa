"""Benchmark of the ledger's precompiles (SM2 verify, SM3) against EVM work whose gas is known,
measured in the same run, to price them: what one call costs in CPU time, and the gas that
time is worth at the rate this node executes ordinary contract code.

How it measures. A contract calls one precompile K times in a loop (STATICCALL with the input
in memory), through ``chain.execution.call``; the same loop calling an address without code
is the baseline, so ``(T(precompile) - T(baseline)) / K`` is the marginal time of one
precompile call, interpreter overhead of the loop excluded. Ethereum's own precompiles run
the same way: ECRECOVER (3,000 gas), SHA-256 (60 + 12/word) and IDENTITY as references.
Ordinary execution (jump loops, arithmetic, warm storage, KECCAK256, memory) runs until it is
out of gas to give gas per CPU second.

Pricing rule. Gas bounds work, so a precompile must not be a cheaper way to buy CPU time
than ordinary code: its gas is at least its time times the *slowest* ordinary gas rate (the
most seconds per gas). For SM2 verify the time taken is the larger of the native backend's
(times a margin) and the pure-Python backend's, which a validator without libcrypto verifies
with. ``3000 × t / t(ECRECOVER)`` is printed too, but py-evm's ECRECOVER runs in pure Python
here (eth_keys without coincurve), far slower per gas than ordinary code, so it is context,
not the rule. The same rule priced the surcharges that ECRECOVER, ECMUL, ECPAIRING and
BLAKE2F carry on the ledger (``chain/execution/precompiles.py``); "gas now" includes them.

Run: ``.venv/bin/python bench/bench_precompiles.py [--rounds R] [--calls K]``. Prints a
table, writes ``bench/results/precompiles.json``. Every figure is the median of R rounds of
CPU time (``time.process_time``), all in one run, so they share the machine's state.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.crypto import PrivateKey, PublicKey
from chain.crypto.backend import pure_backend
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
    ECPAIRING_PAIR_SURCHARGE_GAS,
    ECRECOVER_SURCHARGE_GAS,
)
from chain.primitives import Address

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "precompiles.json"
ECRECOVER = Address(bytes(19) + b"\x01")
SHA256 = Address(bytes(19) + b"\x02")
RIPEMD160 = Address(bytes(19) + b"\x03")
IDENTITY = Address(bytes(19) + b"\x04")
MODEXP = Address(bytes(19) + b"\x05")
ECADD = Address(bytes(19) + b"\x06")
ECMUL = Address(bytes(19) + b"\x07")
ECPAIRING = Address(bytes(19) + b"\x08")
BLAKE2F = Address(bytes(19) + b"\x09")
NO_CODE = Address(bytes.fromhex("000000000000000000000000000000000000dead"))
CALLER = Address(bytes.fromhex("00000000000000000000000000000000000000bb"))
ECRECOVER_GAS = 3_000
ORDINARY_GAS = 2_000_000
"""Gas each ordinary-execution workload burns per round."""
PRICE_MARGIN = 1.5
"""Headroom over the native backend's measured time: the machine varies between runs."""


def _push(value: int, width: int) -> bytes:
    return bytes([0x5F + width]) + value.to_bytes(width, "big")


def loop_calling(target: Address, payload: bytes, calls: int) -> bytes:
    """Runtime code: copy ``payload`` (appended to the code) to memory, then STATICCALL
    ``target`` with it ``calls`` times, discarding the results."""
    head_size = 0
    for _ in range(2):  # the head's size depends on the data offset it pushes; settle it
        head = bytearray()
        head += _push(len(payload), 2) + _push(head_size, 2) + _push(0, 1) + b"\x39"  # CODECOPY
        head += _push(calls, 3)
        loop = len(head)
        head += b"\x5b"  # JUMPDEST
        end_fixup = len(head) + 3
        head += b"\x80\x15" + _push(0, 2) + b"\x57"  # DUP1 ISZERO PUSH2 end JUMPI
        head += _push(32, 1) + _push(len(payload), 2) + _push(len(payload), 2) + _push(0, 1)
        head += b"\x73" + target + b"\x5a\xfa\x50"  # PUSH20 target GAS STATICCALL POP
        head += _push(1, 1) + b"\x90\x03"  # PUSH1 1 SWAP1 SUB
        head += _push(loop, 2) + b"\x56"  # PUSH2 loop JUMP
        end = len(head)
        head += b"\x5b\x00"  # JUMPDEST STOP
        head[end_fixup : end_fixup + 2] = end.to_bytes(2, "big")
        head_size = len(head)
    return bytes(head) + payload


ORDINARY_WORKLOADS: dict[str, bytes] = {
    # JUMPDEST PUSH1 0 JUMP: the cheapest loop (12 gas per turn).
    "jump loop": bytes.fromhex("5b600056"),
    # JUMPDEST; 3*5+7, 11-2, 2**8 / 4, discarded; loop.
    "arithmetic": bytes.fromhex("5b600360050260070150600260" + "0b035060046101000450600056"),
    # JUMPDEST; SSTORE(0, 1) (warm, same value after the first); SLOAD(0); loop.
    "warm storage": bytes.fromhex("5b600160005560005450600056"),
    # JUMPDEST; KECCAK256 over 32 bytes of memory; loop.
    "keccak 32 B": bytes.fromhex("5b602060002050600056"),
    # JUMPDEST; MSTORE(0, 7); MLOAD(0); loop.
    "memory": bytes.fromhex("5b600760005260005150600056"),
}


def _abi_bytes(*values: bytes) -> bytes:
    """abi.encode(bytes, ..., bytes)."""
    head = b""
    tail = b""
    offset = 32 * len(values)
    for value in values:
        head += (offset + len(tail)).to_bytes(32, "big")
        padded = value + bytes(-len(value) % 32)
        tail += len(value).to_bytes(32, "big") + padded
    return head + tail


def sm2_input() -> bytes:
    key = PrivateKey.generate()
    message = b"lianxin precompile benchmark: one notarized record digest" * 2
    return _abi_bytes(key.public_key.to_bytes(), message, key.sign(message), b"")


def ecrecover_input() -> bytes:
    """A valid ECRECOVER input (hash, v, r, s) from Ethereum's test vectors."""
    return bytes.fromhex(
        "456e9aea5e197a1f1af7a3e85a3212fa4049a3ba34c2289b4c860fc0b0c64ef3"
        "000000000000000000000000000000000000000000000000000000000000001c"
        "9242685bf161793cc25603c231bc2f568eb630ea16aa137d2664ac8038825608"
        "4f8ae3bd7535248d0bd448298cc2e2071e56992d0774dc340c368ae950852ada"
    )


def pure_verify_us(count: int = 20) -> float:
    """CPU microseconds of one SM2 verification on the pure-Python backend."""
    message = b"m"
    signer = PrivateKey.generate()
    signature = signer.sign(message)
    public = PublicKey.from_bytes(signer.public_key.to_bytes(), backend=pure_backend())
    start = time.process_time()
    for _ in range(count):
        public.verify(signature, message)
    return (time.process_time() - start) / count * 1e6


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


# The BN254 generators (EIP-196/197); G2 coordinates are (imaginary, real) pairs.
_G1 = _word(1) + _word(2)
_G2 = b"".join(
    _word(value)
    for value in (
        11559732032986387107991004021392285783925812861821192530917403151452391805634,
        10857046999023057135944570762232829481370756359578518086990519993285655852781,
        4082367875863433681332203403145435568316851327593401208105741076214120093531,
        8495653923123431417604973247489272438418190587263600148770280649306958101930,
    )
)


def blake2f_input(rounds: int) -> bytes:
    """An EIP-152 compression input with ``rounds`` rounds (the test vector's state)."""
    body = bytes.fromhex(
        "48c9bdf267e6096a3ba7ca8485ae67bb2bf894fe72f36e3cf1361d5f3af54fa5d182e6ad7f520e511f6c3e2b8c68059b6bbd41fbabd9831f79217e1319cde05b"
        "6162630000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000"
        "0300000000000000000000000000000001"
    )
    return rounds.to_bytes(4, "big") + body


def pairing_gas(pairs: int) -> int:
    """What the ledger charges ECPAIRING for ``pairs`` pairs (Ethereum's price + surcharge)."""
    return 45_000 + ECPAIRING_BASE_SURCHARGE_GAS + (34_000 + ECPAIRING_PAIR_SURCHARGE_GAS) * pairs


def blake2f_gas(rounds: int) -> int:
    """What the ledger charges BLAKE2F for ``rounds`` rounds (Ethereum's price + surcharge)."""
    return BLAKE2F_BASE_SURCHARGE_GAS + (1 + BLAKE2F_ROUND_SURCHARGE_GAS) * rounds


def _cpu_seconds(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def _state(contracts: dict[Address, bytes]) -> CallState:
    update = genesis_state(
        {address: AccountAlloc(code=code) for address, code in contracts.items()}
    )
    context = BlockContext(chain_id=1, height=1, timestamp_ms=0, proposer=CALLER, gas_limit=10**12)
    return CallState(dict(update.writes), update.state_root, context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=400, help="precompile calls per loop")
    args = parser.parse_args()
    load_before = os.getloadavg()

    calls: dict[str, int] = {
        # Precompiles that take milliseconds or more run fewer times per loop.
        "ECRECOVER": max(1, args.calls // 10),
        "ECMUL": max(1, args.calls // 10),
        "ECPAIRING 1 pair": 2,
        "ECPAIRING 2 pairs": 1,
        "BLAKE2F 1,200 rounds": max(1, args.calls // 40),
    }
    inputs: dict[str, tuple[Address, bytes, int]] = {
        # name: (target, input, gas the ledger charges for it, surcharges included)
        "SM2 verify": (
            SM2_VERIFY_PRECOMPILE,
            sm2 := sm2_input(),
            SM2_VERIFY_BASE_GAS + SM2_VERIFY_WORD_GAS * math.ceil(len(sm2) / 32),
        ),
        "SM3 32 B": (SM3_PRECOMPILE, bytes(32), SM3_BASE_GAS + SM3_WORD_GAS),
        "SM3 1 KiB": (SM3_PRECOMPILE, bytes(1024), SM3_BASE_GAS + SM3_WORD_GAS * 32),
        "ECRECOVER": (ECRECOVER, ecrecover_input(), ECRECOVER_GAS + ECRECOVER_SURCHARGE_GAS),
        "SHA-256 1 KiB": (SHA256, bytes(1024), 60 + 12 * 32),
        "IDENTITY 1 KiB": (IDENTITY, bytes(1024), 15 + 3 * 32),
        "RIPEMD-160 1 KiB": (RIPEMD160, bytes(1024), 600 + 120 * 32),
        # 32-byte base, exponent and modulus: EIP-2565's minimum of 200 gas.
        "MODEXP 32 B": (
            MODEXP,
            _word(32) * 3 + _word(3) + _word(2**255 - 1) + _word(2**255 - 19),
            200,
        ),
        "ECADD": (ECADD, _G1 + _G1, 150),
        "ECMUL": (ECMUL, _G1 + _word(2**254 - 127), 6_000 + ECMUL_SURCHARGE_GAS),
        "ECPAIRING 1 pair": (ECPAIRING, _G1 + _G2, pairing_gas(1)),
        "ECPAIRING 2 pairs": (ECPAIRING, (_G1 + _G2) * 2, pairing_gas(2)),
        "BLAKE2F 12 rounds": (BLAKE2F, blake2f_input(12), blake2f_gas(12)),
        "BLAKE2F 1,200 rounds": (BLAKE2F, blake2f_input(1_200), blake2f_gas(1_200)),
    }
    loops = {
        name: Address(bytes(18) + (0x1000 + index).to_bytes(2, "big"))
        for index, name in enumerate(inputs)
    }
    baselines = {
        name: Address(bytes(18) + (0x2000 + index).to_bytes(2, "big"))
        for index, name in enumerate(inputs)
    }
    ordinary = {
        name: Address(bytes(18) + (0x3000 + index).to_bytes(2, "big"))
        for index, name in enumerate(ORDINARY_WORKLOADS)
    }
    contracts: dict[Address, bytes] = {}
    for name, (target, payload, _) in inputs.items():
        count = calls.get(name, args.calls)
        contracts[loops[name]] = loop_calling(target, payload, count)
        contracts[baselines[name]] = loop_calling(NO_CODE, payload, count)
    for name, code in ORDINARY_WORKLOADS.items():
        contracts[ordinary[name]] = code
    state = _state(contracts)

    def run(address: Address, gas: int) -> Callable[[], object]:
        return lambda: state.call(sender=CALLER, to=address, data=b"", gas=gas)

    loop_gas = 10**9
    # Warm up once (decoded code and trie reads are cached by the call state).
    for address in [*loops.values(), *baselines.values()]:
        assert state.call(sender=CALLER, to=address, data=b"", gas=loop_gas).success
    samples: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name in inputs:
            marginal = _cpu_seconds(run(loops[name], loop_gas)) - _cpu_seconds(
                run(baselines[name], loop_gas)
            )
            samples.setdefault(f"{name} us", []).append(
                marginal / calls.get(name, args.calls) * 1e6
            )
        for name, address in ordinary.items():
            seconds = _cpu_seconds(run(address, ORDINARY_GAS))
            samples.setdefault(f"{name} Mgas/s", []).append(ORDINARY_GAS / seconds / 1e6)
        # The pure-Python backend, which verification falls back to without libcrypto.
        samples.setdefault("SM2 verify (pure backend, direct) us", []).append(pure_verify_us())
    medians = {name: statistics.median(values) for name, values in samples.items()}

    slowest_rate = min(medians[f"{name} Mgas/s"] for name in ORDINARY_WORKLOADS) * 1e6
    ecrecover_us = medians["ECRECOVER us"]
    table = []
    prices: dict[str, dict[str, float]] = {}
    for name, (_, payload, gas_now) in inputs.items():
        micros = medians[f"{name} us"]
        by_ordinary = micros * 1e-6 * slowest_rate
        by_ecrecover = ECRECOVER_GAS * micros / ecrecover_us
        prices[name] = {
            "input_bytes": len(payload),
            "cpu_us": micros,
            "gas_now": gas_now,
            "gas_by_slowest_ordinary_rate": by_ordinary,
            "gas_by_ecrecover_ratio": by_ecrecover,
            "gas_per_cpu_second_now": gas_now / (micros * 1e-6) if micros > 0 else math.inf,
        }
        table.append((name, len(payload), micros, gas_now, by_ordinary, by_ecrecover))

    sm2 = prices["SM2 verify"]
    pure_us = medians["SM2 verify (pure backend, direct) us"]
    priced_us = max(sm2["cpu_us"] * PRICE_MARGIN, pure_us)
    suggested_sm2 = int(math.ceil(priced_us * 1e-6 * slowest_rate / 500) * 500)

    print(f"load average at start: {load_before[0]:.2f} (machine shared: figures are lower)")
    print()
    print(
        f"{'precompile':<16}{'input B':>9}{'CPU us':>10}{'gas now':>9}"
        f"{'gas@slowest':>13}{'gas@ecrec':>11}"
    )
    for name, size, micros, gas_now, by_ordinary, by_ecrecover in table:
        print(
            f"{name:<16}{size:>9}{micros:>10.1f}{gas_now:>9}{by_ordinary:>13.0f}{by_ecrecover:>11.0f}"
        )
    print()
    print(f"{'ordinary execution':<20}{'Mgas/CPU s':>12}")
    for name in ORDINARY_WORKLOADS:
        print(f"{name:<20}{medians[f'{name} Mgas/s']:>12.2f}")
    print()
    print(f"SM2 verify, pure-Python backend (direct call): {pure_us:.0f} us")
    print(f"slowest ordinary rate: {slowest_rate / 1e6:.2f} Mgas/CPU s")
    print(
        f"suggested SM2_VERIFY_BASE_GAS = max({PRICE_MARGIN} x native, pure) x slowest rate,"
        f" up to a multiple of 500: {suggested_sm2}"
    )

    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(
        json.dumps(
            {
                "benchmark": "precompiles",
                "python": platform.python_version(),
                "cpu_count": os.cpu_count(),
                "load_average_at_start": load_before,
                "rounds": args.rounds,
                "calls_per_loop": args.calls,
                "medians": medians,
                "slowest_ordinary_gas_per_s": slowest_rate,
                "prices": prices,
                "price_margin": PRICE_MARGIN,
                "suggested_sm2_verify_base_gas": suggested_sm2,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()
