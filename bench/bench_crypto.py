"""Benchmark of chain.crypto: SM2 sign/verify (native, pure, and ``openssl speed`` as the
reference), SM3 throughput, and batch verification of signed transactions across cores.

Run: ``.venv/bin/python bench/bench_crypto.py``. Prints a table, writes
``bench/results/crypto.json``. Every figure is the median of ROUNDS rounds, all measured in
the same run so that they share the machine's state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.crypto import BatchVerifier, PrivateKey, sm3, verify_batch
from chain.crypto.backend import native_backend, pure_backend
from chain.primitives import Address, Hash32
from chain.types import Transaction

ROUNDS = 5
NATIVE_SECONDS = 1.0
PURE_SECONDS = 1.0
SM3_CHUNK = 1 << 20
SM3_CHUNKS = 32
BATCH_SIZE = 10_000
BATCH_SENDERS = 100
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "crypto.json"
_SPEED_LINE = re.compile(r"SM2 \(CurveSM2\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)")


def _rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per CPU second of ``operation`` run repeatedly for about ``seconds``.

    CPU time, not wall time, because that is what ``openssl speed`` reports by default
    (without ``-elapsed``); on a shared machine wall time would compare unlike with unlike.
    """
    count = 0
    start = time.process_time()
    elapsed = 0.0
    while elapsed < seconds:
        operation()
        count += 1
        elapsed = time.process_time() - start
    return count / elapsed


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def openssl_speed() -> tuple[float, float]:
    """Return (sign/s, verify/s) that ``openssl speed -seconds 1 sm2`` prints."""
    output = subprocess.run(
        ["openssl", "speed", "-seconds", "1", "sm2"], capture_output=True, text=True, check=True
    ).stdout
    match = _SPEED_LINE.search(output)
    if match is None:
        raise RuntimeError(f"cannot parse openssl speed output:\n{output}")
    return float(match.group(1)), float(match.group(2))


def sm2_rates(backend_name: str, seconds: float) -> tuple[float, float]:
    """Return (sign/s, verify/s) through the public API on one backend."""
    backend = native_backend() if backend_name == "native" else pure_backend(allow_signing=True)
    private_key = PrivateKey.generate(backend=backend)
    public_key = private_key.public_key
    message = secrets.token_bytes(200)
    signature = private_key.sign(message)
    sign_rate = _rate(lambda: private_key.sign(message), seconds)
    verify_rate = _rate(lambda: public_key.verify(signature, message), seconds)
    return sign_rate, verify_rate


def hash_rate(digest: Callable[[bytes], object]) -> float:
    """MB per CPU second of ``digest`` over SM3_CHUNKS chunks of 1 MiB."""
    chunk = secrets.token_bytes(SM3_CHUNK)
    start = time.process_time()
    for _ in range(SM3_CHUNKS):
        digest(chunk)
    return SM3_CHUNKS * SM3_CHUNK / 1e6 / (time.process_time() - start)


def signed_transactions() -> list[tuple[bytes, bytes, bytes]]:
    """BATCH_SIZE real transactions from BATCH_SENDERS senders, as verify_batch items."""
    senders = [PrivateKey.generate() for _ in range(BATCH_SENDERS)]
    items: list[tuple[bytes, bytes, bytes]] = []
    for index in range(BATCH_SIZE):
        sender = senders[index % BATCH_SENDERS]
        unsigned = Transaction(
            chain_id=1,
            nonce=Hash32(secrets.token_bytes(32)),
            block_limit=1_000 + index,
            to=Address(secrets.token_bytes(20)),
            value=0,
            data=secrets.token_bytes(68),
            gas_limit=100_000,
            public_key=sender.public_key.to_bytes(),
        )
        tx = dataclasses.replace(unsigned, signature=sender.sign(unsigned.sign_bytes()))
        items.append((tx.public_key, tx.signature, tx.sign_bytes()))
    return items


def batch_seconds(
    items: list[tuple[bytes, bytes, bytes]], workers: int, verifier: BatchVerifier | None = None
) -> float:
    """Wall-clock seconds of one batch: a fresh verify_batch call (pool start-up included),
    or ``verifier.verify`` on a kept verifier whose processes are already running. A speed-up
    across processes only shows in wall time, so this figure depends on the machine's load."""
    start = time.perf_counter()
    results = verify_batch(items, workers=workers) if verifier is None else verifier.verify(items)
    elapsed = time.perf_counter() - start
    if not all(results):
        raise RuntimeError("a valid transaction signature failed to verify")
    return elapsed


def main() -> None:
    """Measure everything, print a table, write the JSON file."""
    cores = os.cpu_count() or 1
    samples: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    load_before = os.getloadavg()
    items = signed_transactions()
    kept = BatchVerifier(workers=cores)
    kept.verify(items[: len(items) // 10])  # start its processes before timing
    for _ in range(ROUNDS):
        openssl_sign, openssl_verify = openssl_speed()
        record("openssl_sign_per_s", openssl_sign)
        record("openssl_verify_per_s", openssl_verify)
        native_sign, native_verify = sm2_rates("native", NATIVE_SECONDS)
        record("native_sign_per_s", native_sign)
        record("native_verify_per_s", native_verify)
        pure_sign, pure_verify = sm2_rates("pure", PURE_SECONDS)
        record("pure_sign_per_s", pure_sign)
        record("pure_verify_per_s", pure_verify)
        record("sm3_mb_per_s", hash_rate(sm3))
        record("hashlib_sm3_mb_per_s", hash_rate(lambda data: hashlib.new("sm3", data).digest()))
        record("sha256_mb_per_s", hash_rate(lambda data: hashlib.sha256(data).digest()))
        record("batch_1_worker_s", batch_seconds(items, 1))
        record(f"batch_{cores}_workers_s", batch_seconds(items, cores))
        record(f"batch_{cores}_workers_kept_s", batch_seconds(items, cores, kept))
    kept.close()

    medians = {name: _median(values) for name, values in samples.items()}
    medians["native_over_openssl_sign"] = (
        medians["native_sign_per_s"] / medians["openssl_sign_per_s"]
    )
    medians["native_over_openssl_verify"] = (
        medians["native_verify_per_s"] / medians["openssl_verify_per_s"]
    )
    medians["sm3_over_hashlib_sm3"] = medians["sm3_mb_per_s"] / medians["hashlib_sm3_mb_per_s"]
    medians["sm3_over_sha256"] = medians["sm3_mb_per_s"] / medians["sha256_mb_per_s"]
    medians["batch_speedup"] = medians["batch_1_worker_s"] / medians[f"batch_{cores}_workers_s"]
    medians["batch_speedup_kept"] = (
        medians["batch_1_worker_s"] / medians[f"batch_{cores}_workers_kept_s"]
    )

    rows = [
        ("SM2 sign/s", "openssl speed", medians["openssl_sign_per_s"]),
        ("SM2 sign/s", "native (ctypes)", medians["native_sign_per_s"]),
        ("SM2 sign/s", "pure Python", medians["pure_sign_per_s"]),
        ("SM2 sign", "native / openssl", medians["native_over_openssl_sign"]),
        ("SM2 verify/s", "openssl speed", medians["openssl_verify_per_s"]),
        ("SM2 verify/s", "native (ctypes)", medians["native_verify_per_s"]),
        ("SM2 verify/s", "pure Python", medians["pure_verify_per_s"]),
        ("SM2 verify", "native / openssl", medians["native_over_openssl_verify"]),
        ("SM3 MB/s (1 MiB)", "chain.crypto.sm3", medians["sm3_mb_per_s"]),
        ("SM3 MB/s (1 MiB)", "hashlib sm3", medians["hashlib_sm3_mb_per_s"]),
        ("SHA-256 MB/s (1 MiB)", "hashlib sha256", medians["sha256_mb_per_s"]),
        ("SM3", "ours / hashlib sm3", medians["sm3_over_hashlib_sm3"]),
        ("SM3", "ours / sha256", medians["sm3_over_sha256"]),
        (f"verify_batch {BATCH_SIZE} txs (s)", "workers=1", medians["batch_1_worker_s"]),
        (
            f"verify_batch {BATCH_SIZE} txs (s)",
            f"workers={cores}",
            medians[f"batch_{cores}_workers_s"],
        ),
        ("verify_batch", "speed-up", medians["batch_speedup"]),
        (
            f"BatchVerifier {BATCH_SIZE} txs (s)",
            f"kept, workers={cores}",
            medians[f"batch_{cores}_workers_kept_s"],
        ),
        ("BatchVerifier", "speed-up (kept)", medians["batch_speedup_kept"]),
    ]
    print(f"chain.crypto benchmark: median of {ROUNDS} rounds, {cores} cores")
    print(f"rates per CPU second; load average before {load_before[0]:.2f}")
    print(f"{'measure':<30} {'what':<20} {'value':>12}")
    print("-" * 64)
    for measure, what, value in rows:
        print(f"{measure:<30} {what:<20} {value:>12,.2f}")

    openssl_version = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "rounds": ROUNDS,
        "cpu_count": cores,
        "python": platform.python_version(),
        "openssl": openssl_version,
        "batch_size": BATCH_SIZE,
        "batch_senders": BATCH_SENDERS,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "rates_are": "per CPU second (process time), as openssl speed reports by default",
        "medians": medians,
        "samples": samples,
    }
    RESULTS_PATH.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"written {RESULTS_PATH}")


if __name__ == "__main__":
    main()
