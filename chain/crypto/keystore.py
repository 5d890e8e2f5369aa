"""Password-protected SM2 private keys at rest: a small JSON document.

Key derivation is PBKDF2-HMAC-SM3 (``hashlib.pbkdf2_hmac``) with a random 16-byte salt; its
32-byte output is expanded with HMAC-SM3 into an SM4 key and an HMAC-SM3 key. The scalar is
encrypted with SM4-CBC under a random IV and then authenticated (encrypt-then-MAC) over a
domain prefix, the iteration count, the salt, the IV and the ciphertext. SM4-GCM would fold
both steps into one, but OpenSSL 3.0 does not provide it. Salt and IV come from
``os.urandom`` (the OS CSPRNG).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

from chain.crypto import sm4
from chain.crypto.backend import Backend, PureSigningRefused
from chain.crypto.keys import PrivateKey
from chain.errors import CryptoError, InvalidKey

KEYSTORE_VERSION = 1
DEFAULT_ITERATIONS = 300_000
"""About a third of a second here: slow for a password guesser, bearable for a node start."""
MIN_ITERATIONS = 1_000
MAX_ITERATIONS = 50_000_000
"""Bounds what a crafted keystore can make ``decrypt_keystore`` spend."""

_SALT_SIZE = 16
_MAC_DOMAIN = b"lianxin/keystore/v1\x00"
_CIPHER = "sm4-cbc"
_KDF = "pbkdf2-hmac-sm3"
_MAC = "hmac-sm3"


def _derive(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    # One PBKDF2 output block, then two keys expanded from it: asking PBKDF2 for 48 bytes
    # would double the defender's work while a guesser could test a password against the
    # first block alone (the SM4 key decrypts to a recognisable padding).
    master = hashlib.pbkdf2_hmac("sm3", password, salt, iterations)
    cipher_key = hmac.new(master, b"sm4-cbc key", "sm3").digest()[: sm4.KEY_SIZE]
    mac_key = hmac.new(master, b"hmac-sm3 key", "sm3").digest()
    return cipher_key, mac_key


def _mac(mac_key: bytes, salt: bytes, iterations: int, iv: bytes, ciphertext: bytes) -> bytes:
    authenticated = b"".join([_MAC_DOMAIN, iterations.to_bytes(8, "big"), salt, iv, ciphertext])
    return hmac.new(mac_key, authenticated, "sm3").digest()


def encrypt_keystore(
    private_key: PrivateKey, password: bytes, *, iterations: int = DEFAULT_ITERATIONS
) -> bytes:
    """Return a JSON keystore holding ``private_key`` encrypted under ``password``.

    The document also names the key's address in clear, so a keystore can be found without
    the password; :func:`decrypt_keystore` checks it against the decrypted key.
    """
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must lie in [{MIN_ITERATIONS}, {MAX_ITERATIONS}]")
    salt = os.urandom(_SALT_SIZE)
    iv = os.urandom(sm4.BLOCK_SIZE)
    cipher_key, mac_key = _derive(password, salt, iterations)
    ciphertext = sm4.cbc_encrypt(cipher_key, iv, private_key.to_bytes())
    document = {
        "version": KEYSTORE_VERSION,
        "address": private_key.public_key.address.hex(),
        "kdf": {"name": _KDF, "iterations": iterations, "salt": salt.hex()},
        "cipher": {"name": _CIPHER, "iv": iv.hex()},
        "ciphertext": ciphertext.hex(),
        "mac": {"name": _MAC, "value": _mac(mac_key, salt, iterations, iv, ciphertext).hex()},
    }
    return json.dumps(document, indent=2, sort_keys=True).encode()


def _field(document: Any, *path: str) -> Any:
    value = document
    for name in path:
        if not isinstance(value, dict) or name not in value:
            raise InvalidKey(f"keystore lacks {'.'.join(path)}")
        value = value[name]
    return value


def _hex_field(document: Any, *path: str) -> bytes:
    value = _field(document, *path)
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError) as error:
        raise InvalidKey(f"keystore {'.'.join(path)} is not hex") from error


def decrypt_keystore(data: bytes, password: bytes, *, backend: Backend | None = None) -> PrivateKey:
    """Return the private key in a keystore made by :func:`encrypt_keystore`, loaded into
    ``backend`` (by default this process's).

    Raises InvalidKey for a wrong password, any tampering with the document, or a document
    that is not a keystore of this version; PureSigningRefused where the backend may not sign.
    """
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidKey("keystore is not JSON") from error
    if _field(document, "version") != KEYSTORE_VERSION:
        raise InvalidKey("unsupported keystore version")
    names = (_field(document, "kdf", "name"), _field(document, "cipher", "name"))
    if names != (_KDF, _CIPHER) or _field(document, "mac", "name") != _MAC:
        raise InvalidKey("unsupported keystore algorithms")
    iterations = _field(document, "kdf", "iterations")
    if type(iterations) is not int or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise InvalidKey("keystore iteration count out of range")
    salt = _hex_field(document, "kdf", "salt")
    iv = _hex_field(document, "cipher", "iv")
    ciphertext = _hex_field(document, "ciphertext")
    expected_mac = _hex_field(document, "mac", "value")
    cipher_key, mac_key = _derive(password, salt, iterations)
    if not hmac.compare_digest(_mac(mac_key, salt, iterations, iv, ciphertext), expected_mac):
        raise InvalidKey("wrong password or tampered keystore")
    try:
        scalar = sm4.cbc_decrypt(cipher_key, iv, ciphertext)
        private_key = PrivateKey.from_bytes(scalar, backend=backend)
    except PureSigningRefused:
        raise
    except CryptoError as error:
        raise InvalidKey("keystore does not hold an SM2 private key") from error
    if private_key.public_key.address.hex() != _field(document, "address"):
        raise InvalidKey("keystore address does not match its key")
    return private_key
