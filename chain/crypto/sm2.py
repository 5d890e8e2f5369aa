"""SM2 signature scheme pieces shared by every backend (GB/T 32918.2): the signer digest
``Z_A``, the message digest ``e = SM3(Z_A || M)``, and the strict DER form of ``(r, s)``."""

from __future__ import annotations

from chain.crypto import der
from chain.crypto.curve import GX, GY, POINT_SIZE, A, B, N
from chain.crypto.sm3 import sm3_hasher
from chain.errors import InvalidSignature

DEFAULT_SIGNER_ID = b"1234567812345678"
"""The signer ID that GB/T 35276 and every interoperating library use unless told otherwise."""

MAX_SIGNER_ID_SIZE = 0x1FFF
"""ENTL is a 16-bit count of bits, so the ID is at most 8191 bytes."""

_CURVE_BYTES = b"".join(value.to_bytes(32, "big") for value in (A, B, GX, GY))


def signer_digest(public_key: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
    """Return ``Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` for a 65-byte
    uncompressed public key and a signer ID."""
    if len(signer_id) > MAX_SIGNER_ID_SIZE:
        raise ValueError(f"signer ID longer than {MAX_SIGNER_ID_SIZE} bytes")
    if len(public_key) != POINT_SIZE:
        raise ValueError("public key must be 65 bytes")
    hasher = sm3_hasher()
    hasher.update((8 * len(signer_id)).to_bytes(2, "big"))
    hasher.update(signer_id)
    hasher.update(_CURVE_BYTES)
    hasher.update(public_key[1:])
    return hasher.digest()


def message_digest(
    public_key: bytes, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
) -> bytes:
    """Return the 32-byte ``e = SM3(Z_A || M)`` that an SM2 signature is computed over."""
    hasher = sm3_hasher()
    hasher.update(signer_digest(public_key, signer_id))
    hasher.update(message)
    return hasher.digest()


def check_signature_range(r: int, s: int) -> None:
    """Raise InvalidSignature unless both r and s lie in [1, n-1]."""
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignature("SM2 signature component outside [1, n-1]")


def encode_signature(r: int, s: int) -> bytes:
    """Return the DER ``SEQUENCE { INTEGER r, INTEGER s }`` of a signature."""
    return der.encode_sequence(der.encode_integer(r), der.encode_integer(s))


def decode_signature(signature: bytes) -> tuple[int, int]:
    """Return ``(r, s)`` from the one DER encoding of an SM2 signature.

    Raises InvalidSignature on anything else: other tags, long-form or non-minimal lengths,
    negative or zero-padded INTEGERs, trailing bytes, or r, s outside [1, n-1].
    """
    try:
        sequence = der.read_single(signature, der.TAG_SEQUENCE)
        elements = der.read_sequence(sequence.content)
        if len(elements) != 2:
            raise der.DerError("SM2 signature must hold exactly two INTEGERs")
        r, s = (der.decode_integer(element) for element in elements)
    except der.DerError as error:
        raise InvalidSignature(f"malformed DER signature: {error}") from error
    check_signature_range(r, s)
    return r, s
