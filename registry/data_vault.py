"""Personal data at rest: what the registry must keep but the database must not reveal —
a license holder's identifier and the salt of its on-chain commitment — sealed with SM4
under a key the database does not hold. The key is derived (HMAC-SM3) from the registry's
signing key, which lives in its SM4 keystore; a copy of the database alone opens nothing.

Sealed form: ``sm4v1:`` + base64 of IV (16) || SM4-CBC ciphertext || HMAC-SM3 tag over the
prefix, IV and ciphertext (encrypt-then-MAC, as the keystore does). Identifiers that are
shown anywhere are masked (:func:`mask_identifier`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os

from chain.crypto import PrivateKey, sm4
from chain.errors import ChainError
from registry.errors import RegistryError

SEALED_PREFIX = "sm4v1:"
"""Marks a sealed value (anything else is a value stored before sealing began)."""

DATA_KEY_LABEL = b"lianxin/registry-data-key/v1"
"""Domain separation of the data key derived from the signing key."""

_TAG_SIZE = 32


class VaultError(RegistryError):
    """A sealed value that does not open with this registry's key (tampered, or sealed by
    another registry)."""

    code = "sealed_value_invalid"


class DataVault:
    """Seals and opens small values with the registry's data key."""

    def __init__(self, master: bytes) -> None:
        """Use keys derived from ``master`` (32 secret bytes); see :meth:`for_signing_key`."""
        self._cipher_key = hmac.new(master, b"sm4-cbc key", "sm3").digest()[: sm4.KEY_SIZE]
        self._mac_key = hmac.new(master, b"hmac-sm3 key", "sm3").digest()

    @classmethod
    def for_signing_key(cls, key: PrivateKey) -> DataVault:
        """The vault whose data key derives from the registry's signing key."""
        return cls(hmac.new(key.to_bytes(), DATA_KEY_LABEL, "sm3").digest())

    def _tag(self, iv: bytes, ciphertext: bytes) -> bytes:
        return hmac.new(self._mac_key, SEALED_PREFIX.encode() + iv + ciphertext, "sm3").digest()

    def seal(self, plaintext: bytes) -> str:
        """``plaintext`` sealed under a fresh random IV."""
        iv = os.urandom(sm4.BLOCK_SIZE)
        ciphertext = sm4.cbc_encrypt(self._cipher_key, iv, plaintext)
        return (
            SEALED_PREFIX + base64.b64encode(iv + ciphertext + self._tag(iv, ciphertext)).decode()
        )

    def open(self, sealed: str) -> bytes:
        """The plaintext of :meth:`seal` output; raises VaultError."""
        if not sealed.startswith(SEALED_PREFIX):
            raise VaultError("not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(SEALED_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise VaultError("sealed value is not base64") from None
        iv, ciphertext, tag = (
            raw[: sm4.BLOCK_SIZE],
            raw[sm4.BLOCK_SIZE : -_TAG_SIZE],
            raw[-_TAG_SIZE:],
        )
        if len(raw) < sm4.BLOCK_SIZE * 2 + _TAG_SIZE or not hmac.compare_digest(
            tag, self._tag(iv, ciphertext)
        ):
            raise VaultError("sealed value does not authenticate")
        try:
            return sm4.cbc_decrypt(self._cipher_key, iv, ciphertext)
        except ChainError:
            raise VaultError("sealed value does not decrypt") from None


def is_sealed(value: str) -> bool:
    """Whether a stored value is sealed (values stored before sealing began are not)."""
    return value.startswith(SEALED_PREFIX)


def mask_identifier(identifier: str) -> str:
    """An identifier as it may be shown: its first 4 and last 4 characters, the rest
    starred (``4403**********123X``); short ones are starred whole but for the last one."""
    if len(identifier) <= 8:
        return "*" * (len(identifier) - 1) + identifier[-1:]
    return identifier[:4] + "*" * (len(identifier) - 8) + identifier[-4:]


__all__ = ["DataVault", "VaultError", "is_sealed", "mask_identifier"]
