"""The SM4 keystore: round trip, wrong password, tampering."""

from __future__ import annotations

import json

import pytest

from chain.crypto import PrivateKey, sm4
from chain.crypto.keystore import MIN_ITERATIONS, decrypt_keystore, encrypt_keystore
from chain.errors import CryptoError, InvalidKey

PASSWORD = "正确的口令 correct horse".encode()


@pytest.fixture(scope="module")
def private_key() -> PrivateKey:
    return PrivateKey.generate()


@pytest.fixture(scope="module")
def keystore(private_key: PrivateKey) -> bytes:
    return encrypt_keystore(private_key, PASSWORD, iterations=MIN_ITERATIONS)


def test_round_trip(private_key: PrivateKey, keystore: bytes) -> None:
    assert decrypt_keystore(keystore, PASSWORD).to_bytes() == private_key.to_bytes()
    assert json.loads(keystore)["address"] == private_key.public_key.address.hex()


def test_fresh_salt_and_iv(private_key: PrivateKey, keystore: bytes) -> None:
    again = json.loads(encrypt_keystore(private_key, PASSWORD, iterations=MIN_ITERATIONS))
    first = json.loads(keystore)
    assert again["kdf"]["salt"] != first["kdf"]["salt"]
    assert again["cipher"]["iv"] != first["cipher"]["iv"]


def test_wrong_password(keystore: bytes) -> None:
    with pytest.raises(InvalidKey):
        decrypt_keystore(keystore, PASSWORD + b"!")


def _tampered(keystore: bytes, *path: str) -> bytes:
    document = json.loads(keystore)
    holder = document
    for name in path[:-1]:
        holder = holder[name]
    value = holder[path[-1]]
    if isinstance(value, int):
        holder[path[-1]] = value + 1
    else:
        # Flip the lowest bit of the last hex digit.
        holder[path[-1]] = value[:-1] + format(int(value[-1], 16) ^ 1, "x")
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "path",
    [
        ("ciphertext",),
        ("cipher", "iv"),
        ("kdf", "salt"),
        ("kdf", "iterations"),
        ("mac", "value"),
        ("address",),
    ],
)
def test_tampering_is_detected(keystore: bytes, path: tuple[str, ...]) -> None:
    with pytest.raises(InvalidKey):
        decrypt_keystore(_tampered(keystore, *path), PASSWORD)


@pytest.mark.parametrize(
    "document", [b"not json", b"{}", b'{"version": 2}', b"[]", b'{"version": 1, "kdf": 3}']
)
def test_not_a_keystore(document: bytes) -> None:
    with pytest.raises(InvalidKey):
        decrypt_keystore(document, PASSWORD)


def test_iteration_bounds(private_key: PrivateKey) -> None:
    with pytest.raises(ValueError):
        encrypt_keystore(private_key, PASSWORD, iterations=MIN_ITERATIONS - 1)


def test_sm4_cbc_padding_and_errors() -> None:
    key, iv = bytes(16), bytes(range(16))
    for length in (0, 1, 15, 16, 17, 33):
        plaintext = bytes(range(length))
        ciphertext = sm4.cbc_encrypt(key, iv, plaintext)
        assert len(ciphertext) == (length // 16 + 1) * 16
        assert sm4.cbc_decrypt(key, iv, ciphertext) == plaintext
    with pytest.raises(sm4.PaddingError):
        sm4.cbc_decrypt(key, iv, bytes(15))
    with pytest.raises(CryptoError):
        sm4.cbc_encrypt(bytes(15), iv, b"short key")
