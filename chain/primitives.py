"""Fixed-width domain types used across the protocol core.

They are ``NewType`` aliases of ``bytes``: free at run time, distinct for mypy. Use the
constructors below at trust boundaries so that a wrong length fails where it enters.
"""

from __future__ import annotations

from typing import NewType

from chain.errors import EncodingError

Address = NewType("Address", bytes)
"""20 bytes: the last 20 bytes of SM3(uncompressed public key without the 0x04 prefix)."""

Hash32 = NewType("Hash32", bytes)
"""32 bytes: an SM3 digest (or, inside the EVM only, a Keccak digest)."""

PublicKeyBytes = NewType("PublicKeyBytes", bytes)
"""65 bytes: an uncompressed SM2 public point, 0x04 || x || y."""

ADDRESS_SIZE = 20
HASH_SIZE = 32
PUBLIC_KEY_SIZE = 65

ZERO_HASH = Hash32(bytes(HASH_SIZE))


def to_address(value: bytes) -> Address:
    """Return ``value`` as an Address, or raise EncodingError if it is not 20 bytes."""
    if len(value) != ADDRESS_SIZE:
        raise EncodingError(f"address must be {ADDRESS_SIZE} bytes, got {len(value)}")
    return Address(bytes(value))


def to_hash32(value: bytes) -> Hash32:
    """Return ``value`` as a Hash32, or raise EncodingError if it is not 32 bytes."""
    if len(value) != HASH_SIZE:
        raise EncodingError(f"hash must be {HASH_SIZE} bytes, got {len(value)}")
    return Hash32(bytes(value))


def to_public_key_bytes(value: bytes) -> PublicKeyBytes:
    """Return ``value`` as PublicKeyBytes, or raise EncodingError if not 65 bytes with 0x04."""
    if len(value) != PUBLIC_KEY_SIZE or value[0] != 0x04:
        raise EncodingError("public key must be 65 bytes, uncompressed (0x04 prefix)")
    return PublicKeyBytes(bytes(value))
