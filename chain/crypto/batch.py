"""Verifying many SM2 signatures at once, across processes for large batches.

SM2 verification is CPU-bound and holds the GIL in the pure backend (and for the hashing
around the native call), so threads would not scale: large batches go to a process pool.
Workers are started from a ``forkserver`` rather than forked from the caller, because the
caller (a node) may run threads that hold locks inside OpenSSL at the moment of a fork.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from chain.crypto import sm2
from chain.crypto.backend import Backend, default_backend
from chain.crypto.curve import POINT_SIZE
from chain.crypto.sm2 import DEFAULT_SIGNER_ID
from chain.errors import CryptoError

POOL_THRESHOLD = 256
"""Batches smaller than this are verified inline: starting workers would cost more."""

_CHUNKS_PER_WORKER = 4

BatchItem = tuple[bytes, bytes, bytes]
"""``(public_key_65_bytes, der_signature, message)``."""


def verify_one(item: BatchItem, signer_id: bytes, backend: Backend) -> bool:
    """Return whether one ``(public_key, signature, message)`` verifies; any malformed part
    counts as not verifying."""
    public_key, signature, message = item
    if len(public_key) != POINT_SIZE or public_key[0] != 0x04:
        return False
    try:
        r, s = sm2.decode_signature(signature)
        digest = sm2.message_digest(public_key, message, signer_id)
        backend.verify_digest(public_key, digest, r, s)
    except CryptoError:
        return False
    return True


def _verify_chunk(items: Sequence[BatchItem], signer_id: bytes) -> list[bool]:
    backend = default_backend()
    return [verify_one(item, signer_id, backend) for item in items]


def verify_batch(
    items: Sequence[BatchItem],
    *,
    signer_id: bytes = DEFAULT_SIGNER_ID,
    workers: int | None = None,
) -> list[bool]:
    """Return, for each ``(public_key_65_bytes, der_signature, message)``, whether it verifies
    under ``signer_id``, in the order given.

    ``workers`` processes share the work (default: every core); batches below
    :data:`POOL_THRESHOLD` items, or ``workers=1``, run inline in the calling process.
    """
    worker_count = workers if workers is not None else (os.cpu_count() or 1)
    if worker_count < 1:
        raise ValueError("workers must be at least 1")
    if worker_count == 1 or len(items) < POOL_THRESHOLD:
        return _verify_chunk(items, signer_id)
    chunk_count = worker_count * _CHUNKS_PER_WORKER
    chunk_size = -(-len(items) // chunk_count)
    chunks = [list(items[start : start + chunk_size]) for start in range(0, len(items), chunk_size)]
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=worker_count, mp_context=context) as pool:
        results = pool.map(_verify_chunk, chunks, [signer_id] * len(chunks))
        return [valid for chunk_result in results for valid in chunk_result]
