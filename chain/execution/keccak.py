"""Which Keccak-256 implementation py-evm, the trie and eth-utils hash with.

They all hash through eth-hash's shared ``eth_hash.auto.keccak``, which by default takes the
first installed backend in eth-hash's own order: pycryptodome, whose per-call overhead
(a cffi hash object built and freed for every digest) made Keccak about a quarter of block
execution (state and storage trie nodes are hashed one by one). The ``pysha3`` backend
(``safe-pysha3``, a C extension) computes the same digests several times faster per call.

:func:`select_keccak_backend` points the shared hasher at ``pysha3`` when it is installed
and gives the known digest of the empty input, and otherwise leaves eth-hash's choice alone.
An operator's ``ETH_HASH_BACKEND`` (eth-hash's own setting) always wins. Only the speed
changes: Keccak-256 is Keccak-256, whichever library computes it.
"""

from __future__ import annotations

import os

from eth_hash.auto import keccak as shared_keccak
from eth_hash.utils import load_backend

FAST_BACKEND = "pysha3"
"""eth-hash's name of the backend preferred when installed."""

EMPTY_KECCAK = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
"""Keccak-256 of the empty input: a backend that does not give it is not used."""


def select_keccak_backend() -> str:
    """Make eth-hash's shared Keccak hasher use :data:`FAST_BACKEND` if it is installed and
    correct; returns the name of the backend in use (``"environment"`` when
    ``ETH_HASH_BACKEND`` chose it, ``"default"`` when eth-hash's own choice stands)."""
    if os.environ.get("ETH_HASH_BACKEND"):
        return "environment"
    try:
        backend = load_backend(FAST_BACKEND)
    except ImportError:
        return "default"
    if backend.keccak256(b"") != EMPTY_KECCAK:
        return "default"
    shared_keccak.hasher = backend.keccak256
    shared_keccak.preimage = backend.preimage
    return FAST_BACKEND


KECCAK_BACKEND = select_keccak_backend()
"""The backend chosen when :mod:`chain.execution` was first imported."""
