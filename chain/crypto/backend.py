"""The SM2 backend interface, and the choice of the backend that signs.

A backend signs and verifies the 32-byte digest ``e = SM3(Z_A || M)``; hashing, ``Z_A``, DER
and key containers stay above it in :mod:`chain.crypto.sm2` and :mod:`chain.crypto.keys`, so
both backends share them and differ only in elliptic-curve arithmetic.

The choice (:func:`choose_backend`, made once per process by :func:`default_choice`):

* the **native** backend (the system OpenSSL 3 ``libcrypto``) whenever it loads: it signs and
  verifies;
* otherwise the **pure-Python** backend, which always verifies but signs only with an explicit
  opt-in: the environment variable ``LIANXIN_ALLOW_PURE_PYTHON_SIGNING=1`` (read when the
  choice is made), or ``allow_pure_signing=True`` where a caller builds the choice itself.
  Its arithmetic is not constant-time: scalar multiplication looks tables up by the secret
  key's and the nonce's digits, which timing can reveal. Without the opt-in, loading a
  private key raises :class:`PureSigningRefused`, saying why and how to opt in.

Processes that sign (the node daemon, the registry server) log the choice once at start with
:func:`log_backend_choice`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from chain.crypto.native import NativeBackend, NativeUnavailable
from chain.crypto.pure import ALLOW_PURE_SIGNING_ENV, PureBackend, PureSigningRefused

__all__ = [
    "ALLOW_PURE_SIGNING_ENV",
    "Backend",
    "BackendChoice",
    "PureSigningRefused",
    "SigningKey",
    "choose_backend",
    "default_backend",
    "default_choice",
    "log_backend_choice",
    "native_backend",
    "pure_backend",
    "pure_signing_allowed",
]


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
        """Return a signing key for a private scalar in [1, n-2]; raise PureSigningRefused
        where this backend may not sign."""
        ...

    def verify_digest(self, public_key: bytes, digest: bytes, r: int, s: int) -> None:
        """Return if ``(r, s)`` verifies over ``digest`` for the 65-byte ``public_key``;
        raise InvalidSignature if not, InvalidKey if the key is not a curve point."""
        ...


@dataclass(frozen=True)
class BackendChoice:
    """Which backend this process uses, and whether it may sign."""

    backend: Backend
    """The backend keys are loaded into (signing and verifying)."""
    native_unavailable: str | None
    """Why the native backend did not load; ``None`` when it is the one chosen."""

    @property
    def signs(self) -> bool:
        """Whether private keys can be loaded and sign (native, or pure with the opt-in)."""
        return self.native_unavailable is None or (
            isinstance(self.backend, PureBackend) and self.backend.allow_signing
        )

    def describe(self) -> str:
        """One sentence for the start-up log: which backend signs, and why."""
        if self.native_unavailable is None:
            return f"SM2 backend: {self.backend.name} (system OpenSSL libcrypto) signs and verifies"
        if self.signs:
            return (
                "SM2 backend: pure Python signs and verifies, NOT constant-time, allowed by "
                f"{ALLOW_PURE_SIGNING_ENV}=1 (native backend unavailable: "
                f"{self.native_unavailable})"
            )
        return (
            "SM2 backend: pure Python verifies only; signing is refused (native backend "
            f"unavailable: {self.native_unavailable}; set {ALLOW_PURE_SIGNING_ENV}=1 to sign "
            "with the pure-Python backend, which is not constant-time)"
        )


@cache
def native_backend() -> NativeBackend:
    """Return the OpenSSL backend; raise NativeUnavailable where it cannot load."""
    return NativeBackend()


@cache
def pure_backend(*, allow_signing: bool = False) -> PureBackend:
    """Return the pure-Python backend; it signs only with ``allow_signing=True``."""
    return PureBackend(allow_signing=allow_signing)


def pure_signing_allowed(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` opts in to signing with the pure-Python backend:
    ``LIANXIN_ALLOW_PURE_PYTHON_SIGNING`` set to ``1``, ``true`` or ``yes``."""
    return environ.get(ALLOW_PURE_SIGNING_ENV, "").strip().lower() in {"1", "true", "yes"}


def choose_backend(
    *, allow_pure_signing: bool, load_native: Callable[[], Backend] = native_backend
) -> BackendChoice:
    """The native backend from ``load_native`` if it loads; otherwise the pure-Python one,
    which signs only if ``allow_pure_signing``."""
    try:
        return BackendChoice(load_native(), native_unavailable=None)
    except NativeUnavailable as exc:
        reason = str(exc)
    backend = PureBackend(allow_signing=allow_pure_signing, native_unavailable=reason)
    return BackendChoice(backend, native_unavailable=reason)


@cache
def default_choice() -> BackendChoice:
    """This process's choice, made once: :func:`choose_backend` with the opt-in read from
    the environment at this moment."""
    return choose_backend(allow_pure_signing=pure_signing_allowed(os.environ))


def default_backend() -> Backend:
    """The backend of :func:`default_choice`: what keys use unless given another."""
    return default_choice().backend


def log_backend_choice(logger: logging.Logger, choice: BackendChoice | None = None) -> None:
    """Log which backend signs (``choice``, by default this process's): at INFO for the
    native backend, at WARNING for the pure-Python one."""
    selected = choice if choice is not None else default_choice()
    level = logging.INFO if selected.native_unavailable is None else logging.WARNING
    logger.log(level, "%s", selected.describe())
