"""Verifying many SM2 signatures at once, across processes for large batches.

SM2 verification is CPU-bound and holds the GIL in the pure backend (and for the hashing
around the native call), so threads would not scale: large batches go to a process pool.
Workers are started from a ``forkserver`` rather than forked from the caller, because the
caller (a node) may run threads that hold locks inside OpenSSL at the moment of a fork.

A pool worker ends when the process that made its pool ends, however that ends: a worker
waits on its call queue, whose pipe it holds both ends of, and its parent is the forkserver,
which its own workers keep alive, so after a SIGKILL of a node the workers, the forkserver
and the resource tracker would otherwise live for ever. Each worker watches its pool's maker
through a pidfd (Linux 5.3 and later; elsewhere nothing is watched).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
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


MAKER_GONE_EXIT = 70
"""Exit status of a pool worker whose pool's maker ended."""


def _end_with_maker(maker: int) -> None:
    """Pool initializer: end this worker process when process ``maker`` ends."""
    try:
        watched = os.pidfd_open(maker)
    except ProcessLookupError:
        os._exit(MAKER_GONE_EXIT)
    except (AttributeError, OSError):
        return  # no pidfd here: nothing is watched

    def watch() -> None:
        select.select([watched], [], [])  # readable once the process has ended
        os._exit(MAKER_GONE_EXIT)

    threading.Thread(target=watch, name="pool-maker-watch", daemon=True).start()


def _verify_chunk(items: Sequence[BatchItem], signer_id: bytes) -> list[bool]:
    backend = default_backend()
    return [verify_one(item, signer_id, backend) for item in items]


class BatchVerifier:
    """Verifies batches across ``workers`` cores: the calling process verifies one share
    itself while ``workers - 1`` pool processes verify the rest. Keep one open to reuse its
    processes across batches (a node does, for its lifetime); close it when done."""

    def __init__(self, *, workers: int | None = None, signer_id: bytes = DEFAULT_SIGNER_ID) -> None:
        """Start nothing yet: pool processes are started on the first large batch."""
        worker_count = workers if workers is not None else (os.cpu_count() or 1)
        if worker_count < 1:
            raise ValueError("workers must be at least 1")
        self.workers = worker_count
        """Cores used for a large batch, the calling process included."""
        self.signer_id = signer_id
        """The signer ID every signature is checked under."""
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> BatchVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pool processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _processes(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers - 1,
                mp_context=context,
                initializer=_end_with_maker,
                initargs=(os.getpid(),),
            )
        return self._pool

    def verify(self, items: Sequence[BatchItem]) -> list[bool]:
        """Return, for each ``(public_key_65_bytes, der_signature, message)``, whether it
        verifies, in the order given. Batches below :data:`POOL_THRESHOLD` items, or a
        verifier of one worker, run inline in the calling process."""
        if self.workers == 1 or len(items) < POOL_THRESHOLD:
            return _verify_chunk(items, self.signer_id)
        chunk_count = self.workers * _CHUNKS_PER_WORKER
        chunk_size = -(-len(items) // chunk_count)
        chunks = [list(items[i : i + chunk_size]) for i in range(0, len(items), chunk_size)]
        # The caller's own share: one chunk in every ``workers``, so it finishes about when
        # the pool does.
        own = set(range(0, len(chunks), self.workers))
        pool = self._processes()
        futures = {
            index: pool.submit(_verify_chunk, chunk, self.signer_id)
            for index, chunk in enumerate(chunks)
            if index not in own
        }
        results = {index: _verify_chunk(chunks[index], self.signer_id) for index in sorted(own)}
        for index, future in futures.items():
            results[index] = future.result()
        return [valid for index in range(len(chunks)) for valid in results[index]]


def verify_batch(
    items: Sequence[BatchItem],
    *,
    signer_id: bytes = DEFAULT_SIGNER_ID,
    workers: int | None = None,
) -> list[bool]:
    """Return, for each ``(public_key_65_bytes, der_signature, message)``, whether it verifies
    under ``signer_id``, in the order given.

    ``workers`` cores share the work (default: every core; the calling process is one of
    them); batches below :data:`POOL_THRESHOLD` items, or ``workers=1``, run inline. For
    many batches, keep a :class:`BatchVerifier` open instead: this starts and stops one.
    """
    with BatchVerifier(workers=workers, signer_id=signer_id) as verifier:
        return verifier.verify(items)
