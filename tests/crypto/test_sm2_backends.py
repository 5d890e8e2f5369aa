"""The native and pure backends agree, and keys behave as the public API promises."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import DEFAULT_SIGNER_ID, PrivateKey, PublicKey, sm3
from chain.crypto.backend import (
    Backend,
    default_backend,
    native_backend,
    pure_backend,
)
from chain.crypto.curve import N
from chain.errors import InvalidSignature

BOTH = (native_backend(), pure_backend(allow_signing=True))

scalars = st.integers(min_value=1, max_value=N - 2)
messages = st.binary(max_size=300)
signer_ids = st.binary(min_size=0, max_size=40)
agreement = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _flip(data: bytes, bit: int) -> bytes:
    # An empty value has no bit to flip; a single byte differs from it just as well.
    if not data:
        return b"\x00"
    index = bit % (8 * len(data))
    flipped = bytearray(data)
    flipped[index // 8] ^= 1 << (index % 8)
    return bytes(flipped)


def test_default_backend_is_native_here() -> None:
    assert default_backend().name == "native"


@agreement
@given(scalar=scalars, message=messages, signer_id=signer_ids, signer=st.sampled_from(BOTH))
def test_signature_by_either_verifies_with_both(
    scalar: int, message: bytes, signer_id: bytes, signer: Backend
) -> None:
    private_key = PrivateKey.from_bytes(scalar.to_bytes(32, "big"), backend=signer)
    signature = private_key.sign(message, signer_id)
    for verifier in BOTH:
        public_key = PublicKey.from_bytes(private_key.public_key.to_bytes(), backend=verifier)
        public_key.verify(signature, message, signer_id)


@agreement
@given(
    scalar=scalars,
    message=messages,
    signer_id=signer_ids,
    bit=st.integers(min_value=0),
    part=st.sampled_from(["message", "signature", "signer_id"]),
)
def test_both_reject_a_flipped_bit(
    scalar: int, message: bytes, signer_id: bytes, bit: int, part: str
) -> None:
    private_key = PrivateKey.from_bytes(scalar.to_bytes(32, "big"), backend=native_backend())
    signature = private_key.sign(message, signer_id)
    if part == "message":
        message = _flip(message, bit)
    elif part == "signature":
        signature = _flip(signature, bit)
    else:
        signer_id = _flip(signer_id, bit)
    for verifier in BOTH:
        public_key = PublicKey.from_bytes(private_key.public_key.to_bytes(), backend=verifier)
        with pytest.raises(InvalidSignature):
            public_key.verify(signature, message, signer_id)


def test_both_derive_the_same_public_key() -> None:
    scalar = PrivateKey.generate().to_bytes()
    native, pure = (PrivateKey.from_bytes(scalar, backend=b) for b in BOTH)
    assert native.public_key == pure.public_key


def test_signatures_use_fresh_nonces(backend: Backend) -> None:
    private_key = PrivateKey.generate(backend=backend)
    assert private_key.sign(b"same message") != private_key.sign(b"same message")


def test_default_signer_id_is_the_standard_one() -> None:
    assert DEFAULT_SIGNER_ID == b"1234567812345678"


def test_pem_round_trip(backend: Backend) -> None:
    private_key = PrivateKey.generate(backend=backend)
    restored = PrivateKey.from_pem(private_key.to_pem(), backend=backend)
    assert restored.to_bytes() == private_key.to_bytes()
    public_key = PublicKey.from_pem(private_key.public_key.to_pem(), backend=backend)
    assert public_key == private_key.public_key
    public_key.verify(restored.sign(b"m"), b"m")


def test_address_is_last_20_bytes_of_sm3_of_xy() -> None:
    private_key = PrivateKey.generate()
    point = private_key.public_key.to_bytes()
    assert private_key.public_key.address == sm3(point[1:])[-20:]
    assert len(private_key.public_key.address) == 20


def test_repr_hides_the_scalar() -> None:
    private_key = PrivateKey.generate()
    assert private_key.to_bytes().hex() not in repr(private_key)
