"""SM3 (GB/T 32905) through OpenSSL's implementation in ``hashlib``."""

from __future__ import annotations

import hashlib

from chain.primitives import Hash32


def sm3(data: bytes) -> Hash32:
    """Return the 32-byte SM3 digest of ``data``."""
    return Hash32(hashlib.new("sm3", data).digest())


def sm3_hasher() -> hashlib._Hash:
    """Return a fresh incremental SM3 hash object (``update`` / ``digest``)."""
    return hashlib.new("sm3")
