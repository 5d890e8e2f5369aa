"""The pure-Python SM2 backend: correct everywhere Python runs, and the oracle the native
backend is tested against.

The group arithmetic is :mod:`chain.crypto.curve` (own code rather than ``pysmx``, whose
hex-string API cannot report the point at infinity and costs a conversion on every step).
Nonces come from :func:`secrets.randbelow`, i.e. the operating system's CSPRNG. The code is
not constant-time, which is why the native backend is preferred wherever it loads.
"""

from __future__ import annotations

import secrets

from chain.crypto import curve, sm2
from chain.crypto.curve import N
from chain.errors import CryptoError, InvalidSignature


class PureSigningKey:
    """An SM2 private key as a Python integer."""

    def __init__(self, scalar: int) -> None:
        if not 1 <= scalar < N - 1:
            raise CryptoError("SM2 private scalar outside [1, n-2]")
        self._scalar = scalar
        point = curve.to_affine(curve.multiply_base(scalar))
        if point is None:
            raise CryptoError("SM2 private scalar yields the point at infinity")
        self._public_key = curve.encode_point(point)
        # (1 + d)^-1 is the same for every signature; compute it once.
        self._inverse = pow(1 + scalar, -1, N)

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed public point."""
        return self._public_key

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        """Return ``(r, s)`` over the 32-byte ``e`` with a nonce from the OS CSPRNG."""
        while True:
            signature = self.sign_digest_with_nonce(digest, secrets.randbelow(N - 1) + 1)
            if signature is not None:
                return signature

    def sign_digest_with_nonce(self, digest: bytes, nonce: int) -> tuple[int, int] | None:
        """Return ``(r, s)`` for a caller-chosen nonce ``k``, or None when that ``k`` must be
        discarded (r = 0, r + k = n or s = 0). Only for the standard's published example: a
        fixed or repeated nonce reveals the private key."""
        e = int.from_bytes(digest, "big")
        point = curve.to_affine(curve.multiply_base(nonce))
        if point is None:
            return None
        r = (e + point[0]) % N
        if r == 0 or r + nonce == N:
            return None
        s = self._inverse * (nonce - r * self._scalar) % N
        if s == 0:
            return None
        return r, s


class PureBackend:
    """SM2 in pure Python."""

    name = "pure"

    def load_signing_key(self, scalar: int) -> PureSigningKey:
        """Return a signing key for ``scalar`` (which must lie in [1, n-2])."""
        return PureSigningKey(scalar)

    def verify_digest(self, public_key: bytes, digest: bytes, r: int, s: int) -> None:
        """Return if ``(r, s)`` is a valid signature over ``e = digest``; else raise
        InvalidSignature (or InvalidKey for a public key that is not on the curve)."""
        sm2.check_signature_range(r, s)
        point = curve.decode_point(public_key)
        t = (r + s) % N
        if t == 0:
            raise InvalidSignature("SM2 signature with r + s = n")
        total = curve.add(curve.multiply_base(s), curve.multiply(t, point))
        affine = curve.to_affine(total)
        if affine is None or (int.from_bytes(digest, "big") + affine[0]) % N != r:
            raise InvalidSignature("SM2 signature does not verify")
