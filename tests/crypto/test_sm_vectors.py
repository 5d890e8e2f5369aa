"""The standards' published examples: SM3 (GB/T 32905), SM2 signature (GB/T 32918.2),
SM4 (GB/T 32907)."""

from __future__ import annotations

from typing import Any

import pytest
from crypto_vectors import load_sm2_vector

from chain.crypto import PrivateKey, PublicKey, sm3, sm4
from chain.crypto import sm2 as sm2_scheme
from chain.crypto.backend import Backend
from chain.crypto.pure import PureSigningKey


def test_sm3_digests(vectors: dict[str, Any]) -> None:
    for case in vectors["sm3"]:
        assert sm3(case["message_ascii"].encode()).hex() == case["digest"]


def test_sm2_signer_and_message_digest(vectors: dict[str, Any]) -> None:
    case = load_sm2_vector(vectors)
    assert sm2_scheme.signer_digest(case.public_key, case.signer_id) == case.za
    assert sm2_scheme.message_digest(case.public_key, case.message, case.signer_id) == case.e


def test_sm2_fixed_nonce_signature(vectors: dict[str, Any]) -> None:
    case = load_sm2_vector(vectors)
    signing_key = PureSigningKey(case.private_scalar)
    assert signing_key._sign_digest_with_nonce(case.e, case.k) == (case.r, case.s)


def test_sm2_public_key_derivation(vectors: dict[str, Any], backend: Backend) -> None:
    case = load_sm2_vector(vectors)
    private_key = PrivateKey.from_bytes(case.private_scalar.to_bytes(32, "big"), backend=backend)
    assert private_key.public_key.to_bytes() == case.public_key


def test_sm2_published_signature_verifies(vectors: dict[str, Any], backend: Backend) -> None:
    case = load_sm2_vector(vectors)
    public_key = PublicKey.from_bytes(case.public_key, backend=backend)
    signature = sm2_scheme.encode_signature(case.r, case.s)
    public_key.verify(signature, case.message, case.signer_id)


@pytest.mark.parametrize("index", [0])
def test_sm4_block(vectors: dict[str, Any], index: int) -> None:
    case = vectors["sm4"][index]
    key = bytes.fromhex(case["key"])
    plaintext = bytes.fromhex(case["plaintext"])
    ciphertext = bytes.fromhex(case["ciphertext"])
    assert sm4.encrypt_block(key, plaintext) == ciphertext
    assert sm4.decrypt_block(key, ciphertext) == plaintext
