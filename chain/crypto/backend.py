"""The SM2 backend interface and its selection.

A backend signs and verifies the 32-byte digest ``e = SM3(Z_A || M)``; hashing, ``Z_A``, DER
and key containers stay above it in :mod:`chain.crypto.sm2` and :mod:`chain.crypto.keys`, so
both backends share them and differ only in elliptic-curve arithmetic.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol

from chain.crypto.native import NativeBackend, NativeUnavailable
from chain.crypto.pure import PureBackend


class SigningKey(Protocol):
    """A private SM2 key loaded into a backend."""

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed public point."""
        ...

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        """Return ``(r, s)`` over the 32-byte ``e``, with a nonce from a CSPRNG."""
        ...


class Backend(Protocol):
    """SM2 elliptic-curve operations on digests."""

    @property
    def name(self) -> str:
        """A short name for tables and logs: ``native`` or ``pure``."""
        ...

    def load_signing_key(self, scalar: int) -> SigningKey:
        """Return a signing key for a private scalar in [1, n-2]."""
        ...

    def verify_digest(self, public_key: bytes, digest: bytes, r: int, s: int) -> None:
        """Return if ``(r, s)`` verifies over ``digest`` for the 65-byte ``public_key``;
        raise InvalidSignature if not, InvalidKey if the key is not a curve point."""
        ...


@cache
def native_backend() -> NativeBackend:
    """Return the OpenSSL backend; raise NativeUnavailable where it cannot load."""
    return NativeBackend()


@cache
def pure_backend() -> PureBackend:
    """Return the pure-Python backend."""
    return PureBackend()


@cache
def default_backend() -> Backend:
    """Return the native backend when the system OpenSSL 3 with SM2 loads, else the pure one."""
    try:
        return native_backend()
    except NativeUnavailable:
        return pure_backend()
