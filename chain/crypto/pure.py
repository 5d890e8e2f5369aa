"""The pure-Python SM2 backend: correct everywhere Python runs, and the oracle the native
backend is tested against.

The group arithmetic is :mod:`chain.crypto.curve` (own code rather than ``pysmx``, whose
hex-string API cannot report the point at infinity and costs a conversion on every step).
Nonces come from :func:`secrets.randbelow`, i.e. the operating system's CSPRNG. The code is
not constant-time (scalar multiplication looks tables up by secret digits), which is why the
native backend is preferred wherever it loads, and why this backend signs only when asked to
explicitly (``allow_signing``; see :mod:`chain.crypto.backend`). Verifying involves no secret
and is always allowed.
"""

from __future__ import annotations

import secrets

from chain.crypto import curve, sm2
from chain.crypto.curve import N
from chain.errors import CryptoError, InvalidSignature

ALLOW_PURE_SIGNING_ENV = "LIANXIN_ALLOW_PURE_PYTHON_SIGNING"
"""The environment variable that, set to ``1``, lets the pure-Python backend sign when it is
the process's backend (see :mod:`chain.crypto.backend`)."""


class PureSigningRefused(CryptoError):
    """A private key was to be loaded into the pure-Python backend, which signs only with an
    explicit opt-in."""


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
            signature = self._sign_digest_with_nonce(digest, secrets.randbelow(N - 1) + 1)
            if signature is not None:
                return signature

    def _sign_digest_with_nonce(self, digest: bytes, nonce: int) -> tuple[int, int] | None:
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
    """SM2 in pure Python: verifies always, signs only if built with ``allow_signing``."""

    name = "pure"

    def __init__(
        self, *, allow_signing: bool = False, native_unavailable: str | None = None
    ) -> None:
        """``native_unavailable`` says why the native backend is not used (for the message
        that refuses signing)."""
        self.allow_signing = allow_signing
        """Whether private keys may be loaded, i.e. whether this backend signs."""
        self._native_unavailable = native_unavailable

    def load_signing_key(self, scalar: int) -> PureSigningKey:
        """Return a signing key for ``scalar`` (which must lie in [1, n-2]); raise
        PureSigningRefused unless this backend was built with ``allow_signing``."""
        if not self.allow_signing:
            why = (
                f"the native backend is unavailable ({self._native_unavailable})"
                if self._native_unavailable is not None
                else "it was selected without allow_signing"
            )
            raise PureSigningRefused(
                "refusing to sign with the pure-Python SM2 backend: its arithmetic is not "
                f"constant-time, and {why}. Install OpenSSL 3 with SM2 (libcrypto), or set "
                f"{ALLOW_PURE_SIGNING_ENV}=1 to sign with the pure-Python backend anyway"
            )
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
