"""The p2p channel's cryptography: ephemeral SM2-curve ECDH and SM4-CTR through OpenSSL,
cross-checked against the pure-Python oracle on random inputs and on the GB/T 32907 example;
HKDF-SM3; and encrypt-then-MAC frames that refuse any altered, injected, replayed or
reordered frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import channel, curve
from chain.crypto.channel import (
    TAG_SIZE,
    FrameAuthError,
    FrameOpener,
    FrameSealer,
    PureEphemeralKey,
    PureSm4Ctr,
    derive_session_keys,
    ephemeral_key,
    hkdf_sm3,
    native_available,
    sm4_ctr,
)
from chain.crypto.native import NativeChannelCrypto, NativeUnavailable
from chain.errors import CryptoError, InvalidKey

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "sm.json").read_text())

pytestmark = pytest.mark.skipif(not native_available(), reason="OpenSSL lacks SM2 ECDH/SM4-CTR")

scalars = st.integers(min_value=1, max_value=curve.N - 2)


@settings(max_examples=25, deadline=None)
@given(scalar=scalars)
def test_native_key_agreement_matches_the_pure_oracle(scalar: int) -> None:
    native = NativeChannelCrypto().ephemeral_key()
    pure = PureEphemeralKey(scalar)
    assert native.agree(pure.public_key) == pure.agree(native.public_key)


def test_both_sides_agree_and_fresh_keys_differ() -> None:
    first, second = ephemeral_key(), ephemeral_key()
    assert first.public_key != second.public_key
    assert first.agree(second.public_key) == second.agree(first.public_key)
    curve.decode_point(first.public_key)  # a valid curve point


@pytest.mark.parametrize(
    "point",
    [
        b"\x04" + bytes(64),  # (0, 0) is not on the curve
        b"\x04" + (1).to_bytes(32, "big") + (2).to_bytes(32, "big"),
        b"\x02" + bytes(64),  # wrong prefix
        b"\x04" + bytes(63),  # wrong length
    ],
)
def test_key_agreement_refuses_points_off_the_curve(point: bytes) -> None:
    with pytest.raises(InvalidKey):
        ephemeral_key().agree(point)
    with pytest.raises(InvalidKey):
        PureEphemeralKey(7).agree(point)


def test_sm4_ctr_first_block_is_the_standard_example() -> None:
    # In CTR mode the first key-stream block is SM4(counter block): with the example's
    # plaintext as the counter block, encrypting zeros gives the example's ciphertext.
    (example,) = VECTORS["sm4"]
    key, block = bytes.fromhex(example["key"]), bytes.fromhex(example["plaintext"])
    expected = bytes.fromhex(example["ciphertext"])
    assert sm4_ctr(key, block).apply(bytes(16)) == expected
    assert PureSm4Ctr(key, block).apply(bytes(16)) == expected


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    counter=st.binary(min_size=16, max_size=16),
    pieces=st.lists(st.binary(max_size=70), max_size=5),
)
def test_native_sm4_ctr_matches_the_pure_oracle(
    key: bytes, counter: bytes, pieces: list[bytes]
) -> None:
    # One continuous key stream, whatever the sizes of the pieces it is applied to.
    native, pure = sm4_ctr(key, counter), PureSm4Ctr(key, counter)
    ciphertexts = [native.apply(piece) for piece in pieces]
    assert ciphertexts == [pure.apply(piece) for piece in pieces]
    assert b"".join(ciphertexts) == PureSm4Ctr(key, counter).apply(b"".join(pieces))
    decrypt = sm4_ctr(key, counter)
    assert [decrypt.apply(c) for c in ciphertexts] == pieces


def test_sm4_ctr_counter_carries_across_the_whole_block() -> None:
    key = bytes(range(16))
    counter = bytes([0]) + b"\xff" * 15
    data = bytes(64)
    assert sm4_ctr(key, counter).apply(data) == PureSm4Ctr(key, counter).apply(data)


def test_sm4_ctr_refuses_bad_sizes() -> None:
    with pytest.raises(CryptoError):
        sm4_ctr(bytes(15))
    with pytest.raises(CryptoError):
        sm4_ctr(bytes(16), bytes(8))
    with pytest.raises(CryptoError):
        PureSm4Ctr(bytes(16), bytes(8))


def test_hkdf_sm3_shape() -> None:
    long = hkdf_sm3(b"secret", salt=b"salt", info=b"info", length=100)
    assert len(long) == 100
    assert hkdf_sm3(b"secret", salt=b"salt", info=b"info", length=40) == long[:40]
    assert hkdf_sm3(b"secret", salt=b"salt", info=b"other", length=100) != long
    assert hkdf_sm3(b"secret", salt=b"tlas", info=b"info", length=100) != long
    with pytest.raises(CryptoError):
        hkdf_sm3(b"secret", salt=b"", info=b"", length=255 * 32 + 1)


def test_session_keys_differ_per_direction() -> None:
    keys = derive_session_keys(bytes(32), bytes(32))
    outgoing, incoming = keys.initiator_to_responder, keys.responder_to_initiator
    assert len(outgoing.cipher_key) == 16 and len(outgoing.mac_key) == 32
    assert outgoing != incoming
    assert derive_session_keys(bytes(32), b"\x01" * 32) != keys


def _pair() -> tuple[FrameSealer, FrameOpener]:
    keys = derive_session_keys(b"\x07" * 32, b"\x09" * 32).initiator_to_responder
    return FrameSealer(keys), FrameOpener(keys)


HEADER = b"\x00\x00\x00\x10"


def test_frames_round_trip_in_order_and_hide_the_plaintext() -> None:
    sealer, opener = _pair()
    sealed = [sealer.seal(HEADER, b"frame %d" % i) for i in range(5)]
    assert all(b"frame" not in s for s in sealed)
    assert len(sealed[0]) == len(b"frame 0") + TAG_SIZE
    assert [opener.open(HEADER, s) for s in sealed] == [b"frame %d" % i for i in range(5)]
    same_text = [sealer.seal(HEADER, b"same") for _ in range(2)]
    assert same_text[0] != same_text[1]  # the counter changes the key stream


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=64),
    position=st.integers(min_value=0),
    bit=st.integers(0, 7),
)
def test_any_flipped_bit_fails_the_mac(data: bytes, position: int, bit: int) -> None:
    sealer, opener = _pair()
    sealed = bytearray(sealer.seal(HEADER, data))
    sealed[position % len(sealed)] ^= 1 << bit
    with pytest.raises(FrameAuthError):
        opener.open(HEADER, bytes(sealed))


def test_replayed_reordered_injected_and_relabelled_frames_fail() -> None:
    sealer, opener = _pair()
    first, second = sealer.seal(HEADER, b"one"), sealer.seal(HEADER, b"two")
    assert opener.open(HEADER, first) == b"one"
    with pytest.raises(FrameAuthError):
        opener.open(HEADER, first)  # replay

    sealer, opener = _pair()
    first, second = sealer.seal(HEADER, b"one"), sealer.seal(HEADER, b"two")
    with pytest.raises(FrameAuthError):
        opener.open(HEADER, second)  # reordered (or the first dropped)

    sealer, opener = _pair()
    with pytest.raises(FrameAuthError):
        opener.open(HEADER, b"\x00" * 40)  # injected
    sealer, opener = _pair()
    with pytest.raises(FrameAuthError):
        opener.open(b"\x00\x00\x00\x11", sealer.seal(HEADER, b"one"))  # other length header
    with pytest.raises(FrameAuthError):
        _pair()[1].open(HEADER, b"short")


def test_without_openssl_the_channel_refuses_rather_than_falling_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channel, "_native", lambda: None)
    assert not channel.native_available()
    with pytest.raises(NativeUnavailable):
        channel.ephemeral_key()
    with pytest.raises(NativeUnavailable):
        channel.sm4_ctr(bytes(16))
