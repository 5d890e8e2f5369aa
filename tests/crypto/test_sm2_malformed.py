"""Bad input gets a typed error: signatures that are not the one strict DER encoding of an
in-range (r, s), public keys off the curve, malformed key containers."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.crypto import PrivateKey, PublicKey, der, pem, sm2
from chain.crypto.backend import Backend
from chain.crypto.curve import CURVE_OID, GX, GY, N, P
from chain.errors import CryptoError, InvalidKey, InvalidSignature

MESSAGE = b"malformed input"
# A value whose top bit is set, so its minimal DER INTEGER needs a 0x00 pad byte.
HIGH_BIT = N - 1
# A value whose top byte is small, so a 0x00 pad in front of it is not minimal.
LOW_BIT = 0x1234


def _integer(body: bytes) -> bytes:
    return bytes([der.TAG_INTEGER, len(body)]) + body


def _sequence(content: bytes) -> bytes:
    return bytes([der.TAG_SEQUENCE, len(content)]) + content


def _valid() -> bytes:
    return sm2.encode_signature(HIGH_BIT, LOW_BIT)


MALFORMED_SIGNATURES = {
    "empty": b"",
    "not a sequence": b"\x31" + _valid()[1:],
    "trailing byte": _valid() + b"\x00",
    "truncated": _valid()[:-1],
    "long-form length": b"\x30\x81" + _valid()[1:],
    "length too long": b"\x30" + bytes([_valid()[1] + 1]) + _valid()[2:],
    "one integer": _sequence(der.encode_integer(LOW_BIT)),
    "three integers": _sequence(
        der.encode_integer(HIGH_BIT) + der.encode_integer(LOW_BIT) + der.encode_integer(1)
    ),
    "octet string inside": _sequence(
        der.encode(der.TAG_OCTET_STRING, HIGH_BIT.to_bytes(32, "big")) + der.encode_integer(LOW_BIT)
    ),
    "high bit without 0x00 pad": _sequence(
        _integer(HIGH_BIT.to_bytes(32, "big")) + der.encode_integer(LOW_BIT)
    ),
    "needless 0x00 pad": _sequence(
        der.encode_integer(HIGH_BIT) + _integer(b"\x00" + LOW_BIT.to_bytes(2, "big"))
    ),
    "empty integer": _sequence(_integer(b"") + der.encode_integer(LOW_BIT)),
    "r = 0": sm2.encode_signature(0, LOW_BIT),
    "s = 0": sm2.encode_signature(HIGH_BIT, 0),
    "r = n": sm2.encode_signature(N, LOW_BIT),
    "s = n": sm2.encode_signature(HIGH_BIT, N),
    "s > n": sm2.encode_signature(HIGH_BIT, N + 5),
    "33-byte s": sm2.encode_signature(HIGH_BIT, 1 << 256),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_SIGNATURES))
def test_malformed_signature_is_rejected(name: str, backend: Backend) -> None:
    public_key = PrivateKey.generate(backend=backend).public_key
    with pytest.raises(InvalidSignature):
        public_key.verify(MALFORMED_SIGNATURES[name], MESSAGE)


@pytest.mark.parametrize("name", sorted(MALFORMED_SIGNATURES))
def test_malformed_signature_fails_to_decode(name: str) -> None:
    with pytest.raises(InvalidSignature):
        sm2.decode_signature(MALFORMED_SIGNATURES[name])


@given(r=st.integers(1, N - 1), s=st.integers(1, N - 1))
def test_der_round_trip(r: int, s: int) -> None:
    assert sm2.decode_signature(sm2.encode_signature(r, s)) == (r, s)


@pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (N, 1), (1, N)])
def test_backend_rejects_out_of_range_components(r: int, s: int, backend: Backend) -> None:
    point = PrivateKey.generate(backend=backend).public_key.to_bytes()
    with pytest.raises(InvalidSignature):
        backend.verify_digest(point, bytes(32), r, s)


def _point(x: int, y: int, prefix: bytes = b"\x04") -> bytes:
    return prefix + x.to_bytes(32, "big") + y.to_bytes(32, "big")


MALFORMED_PUBLIC_KEYS = {
    "empty": b"",
    "64 bytes without prefix": _point(GX, GY)[1:],
    "66 bytes": _point(GX, GY) + b"\x00",
    "compressed prefix": _point(GX, GY, b"\x02"),
    "hybrid prefix": _point(GX, GY, b"\x06"),
    "off the curve": _point(GX, GY + 1),
    "x equal to p": _point(P, GY),
    "all zero": _point(0, 0),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_PUBLIC_KEYS))
def test_malformed_public_key_is_rejected(name: str, backend: Backend) -> None:
    with pytest.raises(InvalidKey):
        PublicKey.from_bytes(MALFORMED_PUBLIC_KEYS[name], backend=backend)


@pytest.mark.parametrize("name", ["off the curve", "x equal to p", "all zero"])
def test_backend_rejects_off_curve_key(name: str, backend: Backend) -> None:
    with pytest.raises(InvalidKey):
        backend.verify_digest(MALFORMED_PUBLIC_KEYS[name], bytes(32), 1, 1)


BAD_SCALARS = {
    "empty": b"",
    "31 bytes": b"\x01" * 31,
    "33 bytes": b"\x01" * 33,
    "zero": bytes(32),
    "n - 1": (N - 1).to_bytes(32, "big"),
    "above n": b"\xff" * 32,
}


@pytest.mark.parametrize("name", sorted(BAD_SCALARS))
def test_bad_private_scalar_is_rejected(name: str, backend: Backend) -> None:
    with pytest.raises(InvalidKey):
        PrivateKey.from_bytes(BAD_SCALARS[name], backend=backend)


def _pem_with_curve(curve_oid: str) -> bytes:
    algorithm = der.encode_sequence(
        der.encode_oid(pem.EC_PUBLIC_KEY_OID), der.encode_oid(curve_oid)
    )
    inner = der.encode_sequence(
        der.encode_integer(1), der.encode(der.TAG_OCTET_STRING, (5).to_bytes(32, "big"))
    )
    body = der.encode_sequence(
        der.encode_integer(0), algorithm, der.encode(der.TAG_OCTET_STRING, inner)
    )
    return pem.encode_pem("PRIVATE KEY", body)


def test_private_key_pem_on_another_curve_is_rejected() -> None:
    assert PrivateKey.from_pem(_pem_with_curve(CURVE_OID)).to_bytes() == (5).to_bytes(32, "big")
    with pytest.raises(InvalidKey, match="curve"):
        PrivateKey.from_pem(_pem_with_curve("1.2.840.10045.3.1.7"))


def test_private_key_pem_with_mismatched_public_key_is_rejected() -> None:
    first, second = PrivateKey.generate(), PrivateKey.generate()
    body = pem.encode_private_key_info(
        int.from_bytes(first.to_bytes(), "big"), second.public_key.to_bytes()
    )
    with pytest.raises(InvalidKey, match="does not match"):
        PrivateKey.from_pem(pem.encode_pem("PRIVATE KEY", body))


BAD_PEMS = {
    "not pem": b"hello",
    "bad base64": b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
    "garbage der": pem.encode_pem("PRIVATE KEY", b"\x30\x03\x02\x01"),
    "wrong label": pem.encode_pem("CERTIFICATE", b"\x30\x00"),
    "public key label": PrivateKey.generate().public_key.to_pem(),
}


@pytest.mark.parametrize("name", sorted(BAD_PEMS))
def test_bad_private_key_pem_is_rejected(name: str) -> None:
    with pytest.raises(InvalidKey):
        PrivateKey.from_pem(BAD_PEMS[name])


def test_bad_public_key_pem_is_rejected() -> None:
    with pytest.raises(InvalidKey):
        PublicKey.from_pem(PrivateKey.generate().to_pem())
    off_curve = pem.encode_subject_public_key_info(MALFORMED_PUBLIC_KEYS["off the curve"])
    with pytest.raises(InvalidKey):
        PublicKey.from_pem(pem.encode_pem("PUBLIC KEY", off_curve))


def test_password_protected_pem_points_to_the_keystore() -> None:
    private_key = PrivateKey.generate()
    with pytest.raises(pem.EncryptedPemUnsupported, match="keystore"):
        private_key.to_pem(password=b"secret")
    with pytest.raises(pem.EncryptedPemUnsupported, match="keystore"):
        PrivateKey.from_pem(private_key.to_pem(), password=b"secret")
    encrypted = pem.encode_pem("ENCRYPTED PRIVATE KEY", base64.b64decode(b"MAA="))
    with pytest.raises(pem.EncryptedPemUnsupported):
        PrivateKey.from_pem(encrypted)


def test_every_error_is_a_crypto_error() -> None:
    assert issubclass(pem.EncryptedPemUnsupported, InvalidKey)
    assert issubclass(der.DerError, CryptoError)
