"""Interoperability with gmssl 3.2.2 (PyPI), which hard-codes the default signer ID and takes
raw ``r || s`` hex signatures."""

from __future__ import annotations

import secrets

import pytest
from gmssl import sm2 as gmssl_sm2

from chain.crypto import PrivateKey, sm2
from chain.crypto.curve import N

MESSAGES = [b"", b"abc", b"\x00" * 100, "电子证照".encode()]


def _gmssl_compatible_key() -> PrivateKey:
    # gmssl strips every leading "0" and "4" character from a key given as "04..." hex
    # (str.lstrip), so a key whose x || y hex begins with "04" cannot be handed to it intact.
    while True:
        private_key = PrivateKey.generate()
        if not private_key.public_key.to_bytes()[1:].hex().startswith("04"):
            return private_key


def _gmssl(private_key: PrivateKey) -> gmssl_sm2.CryptSM2:
    return gmssl_sm2.CryptSM2(
        private_key=private_key.to_bytes().hex(),
        public_key=private_key.public_key.to_bytes()[1:].hex(),
    )


def _der_to_raw_hex(signature: bytes) -> str:
    r, s = sm2.decode_signature(signature)
    return f"{r:064x}{s:064x}"


def _raw_hex_to_der(signature: str) -> bytes:
    return sm2.encode_signature(int(signature[:64], 16), int(signature[64:], 16))


@pytest.mark.parametrize("message", MESSAGES)
def test_our_signature_verifies_in_gmssl(message: bytes) -> None:
    private_key = _gmssl_compatible_key()
    signature = private_key.sign(message)
    assert _gmssl(private_key).verify_with_sm3(_der_to_raw_hex(signature), message)


@pytest.mark.parametrize("message", MESSAGES)
def test_gmssl_signature_verifies_in_ours(message: bytes) -> None:
    private_key = _gmssl_compatible_key()
    # gmssl's own nonce comes from the random module; hand it a CSPRNG nonce instead.
    nonce = f"{secrets.randbelow(N - 1) + 1:064x}"
    signature = _gmssl(private_key).sign_with_sm3(message, nonce)
    private_key.public_key.verify(_raw_hex_to_der(signature), message)
