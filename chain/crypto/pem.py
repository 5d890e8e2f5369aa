"""PEM and DER containers for SM2 keys: PKCS#8 ``PRIVATE KEY`` (RFC 5208 / RFC 5915),
SEC1 ``EC PRIVATE KEY`` (read only; ``openssl ec`` labels it ``SM2 PRIVATE KEY``) and
SubjectPublicKeyInfo ``PUBLIC KEY`` (RFC 5480), all with ``id-ecPublicKey`` and the SM2 curve
OID, which is what ``openssl`` 3 writes and reads.

Password-protected PEM (``ENCRYPTED PRIVATE KEY`` or ``Proc-Type: 4,ENCRYPTED``) is refused
with :class:`EncryptedPemUnsupported`: keys at rest are protected by the SM4 keystore in
:mod:`chain.crypto.keystore`, one format instead of two.
"""

from __future__ import annotations

import base64
import binascii
import re

from chain.crypto import der
from chain.crypto.curve import CURVE_OID, FIELD_SIZE, POINT_SIZE, N
from chain.errors import InvalidKey

EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
"""``id-ecPublicKey``: the algorithm of every EC key, the curve is its parameter."""

SM2_KEY_OID = CURVE_OID
"""Some tools put the SM2 OID itself where ``id-ecPublicKey`` belongs; it is read, not written."""

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)\r?\n?-----END \1-----", re.DOTALL)


SEC1_LABELS = ("EC PRIVATE KEY", "SM2 PRIVATE KEY")


class EncryptedPemUnsupported(InvalidKey):
    """A password-protected PEM key; use the SM4 keystore (:mod:`chain.crypto.keystore`)."""


def _algorithm_identifier() -> bytes:
    return der.encode_sequence(der.encode_oid(EC_PUBLIC_KEY_OID), der.encode_oid(CURVE_OID))


def encode_pem(label: str, body: bytes) -> bytes:
    """Return ``body`` as a PEM block with ``label``, base64 wrapped at 64 columns."""
    text = base64.b64encode(body)
    lines = [text[index : index + 64] for index in range(0, len(text), 64)]
    header = f"-----BEGIN {label}-----\n".encode()
    footer = f"-----END {label}-----\n".encode()
    return header + b"\n".join(lines) + b"\n" + footer


def decode_pem(data: bytes) -> tuple[str, bytes]:
    """Return the label and DER body of the first PEM block in ``data``."""
    match = _PEM_BLOCK.search(data)
    if match is None:
        raise InvalidKey("no PEM block found")
    label = match.group(1).decode()
    content = match.group(2)
    if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in content:
        raise EncryptedPemUnsupported(
            "password-protected PEM is not read; store keys with chain.crypto.keystore"
        )
    try:
        body = base64.b64decode(b"".join(content.split()), validate=True)
    except binascii.Error as error:
        raise InvalidKey(f"PEM body is not base64: {error}") from error
    return label, body


def encode_private_key_info(scalar: int, public_key: bytes | None) -> bytes:
    """Return the PKCS#8 PrivateKeyInfo DER of an SM2 private scalar.

    The inner ECPrivateKey carries the public point when given (as ``openssl`` writes it);
    the curve is named only once, in the outer AlgorithmIdentifier.
    """
    inner = [der.encode_integer(1), der.encode(der.TAG_OCTET_STRING, scalar.to_bytes(32, "big"))]
    if public_key is not None:
        bit_string = der.encode(der.TAG_BIT_STRING, b"\x00" + public_key)
        inner.append(der.encode(der.TAG_CONTEXT_1, bit_string))
    ec_private_key = der.encode_sequence(*inner)
    return der.encode_sequence(
        der.encode_integer(0),
        _algorithm_identifier(),
        der.encode(der.TAG_OCTET_STRING, ec_private_key),
    )


def encode_subject_public_key_info(public_key: bytes) -> bytes:
    """Return the SubjectPublicKeyInfo DER of a 65-byte uncompressed SM2 public key."""
    return der.encode_sequence(
        _algorithm_identifier(), der.encode(der.TAG_BIT_STRING, b"\x00" + public_key)
    )


def _check_algorithm(element: der.Element) -> None:
    fields = der.read_sequence(element.content) if element.tag == der.TAG_SEQUENCE else []
    if not fields:
        raise InvalidKey("missing AlgorithmIdentifier")
    algorithm = der.decode_oid(fields[0])
    if algorithm == SM2_KEY_OID and len(fields) == 1:
        return
    if algorithm not in (EC_PUBLIC_KEY_OID, SM2_KEY_OID) or len(fields) != 2:
        raise InvalidKey(f"not an EC key (algorithm {algorithm})")
    curve = der.decode_oid(fields[1])
    if curve != CURVE_OID:
        raise InvalidKey(f"EC key on curve {curve}, expected SM2 ({CURVE_OID})")


def _decode_ec_private_key(body: bytes, *, curve_required: bool) -> tuple[int, bytes | None]:
    fields = der.read_sequence(der.read_single(body, der.TAG_SEQUENCE).content)
    if len(fields) < 2 or der.decode_integer(fields[0]) != 1:
        raise InvalidKey("ECPrivateKey must start with version 1")
    if fields[1].tag != der.TAG_OCTET_STRING or len(fields[1].content) > FIELD_SIZE:
        raise InvalidKey("ECPrivateKey scalar must be an OCTET STRING of at most 32 bytes")
    scalar = int.from_bytes(fields[1].content, "big")
    public_key: bytes | None = None
    curve_seen = False
    for field in fields[2:]:
        if field.tag == der.TAG_CONTEXT_0:
            curve = der.decode_oid(der.read_single(field.content, der.TAG_OID))
            if curve != CURVE_OID:
                raise InvalidKey(f"EC key on curve {curve}, expected SM2 ({CURVE_OID})")
            curve_seen = True
        elif field.tag == der.TAG_CONTEXT_1:
            bits = der.read_single(field.content, der.TAG_BIT_STRING).content
            if len(bits) != 1 + POINT_SIZE or bits[0] != 0:
                raise InvalidKey("ECPrivateKey public key must be an uncompressed point")
            public_key = bits[1:]
        else:
            raise InvalidKey("unexpected field in ECPrivateKey")
    if curve_required and not curve_seen:
        raise InvalidKey("SEC1 EC private key does not name its curve")
    return scalar, public_key


def decode_private_key_der(body: bytes, label: str = "PRIVATE KEY") -> tuple[int, bytes | None]:
    """Return the scalar and, when present, the embedded public key of a PKCS#8 (label
    ``PRIVATE KEY``) or SEC1 (label ``EC PRIVATE KEY`` or ``SM2 PRIVATE KEY``) SM2 private
    key DER."""
    try:
        if label in SEC1_LABELS:
            scalar, public_key = _decode_ec_private_key(body, curve_required=True)
        elif label == "PRIVATE KEY":
            fields = der.read_sequence(der.read_single(body, der.TAG_SEQUENCE).content)
            if len(fields) < 3 or der.decode_integer(fields[0]) not in (0, 1):
                raise InvalidKey("PKCS#8 PrivateKeyInfo must start with version 0 or 1")
            _check_algorithm(fields[1])
            if fields[2].tag != der.TAG_OCTET_STRING:
                raise InvalidKey("PKCS#8 privateKey must be an OCTET STRING")
            scalar, public_key = _decode_ec_private_key(fields[2].content, curve_required=False)
        else:
            raise InvalidKey(f"PEM label {label!r} is not a private key")
    except der.DerError as error:
        raise InvalidKey(f"malformed private key DER: {error}") from error
    if not 1 <= scalar < N - 1:
        raise InvalidKey("SM2 private scalar outside [1, n-2]")
    return scalar, public_key


def decode_subject_public_key_info(body: bytes) -> bytes:
    """Return the 65-byte uncompressed point from a SubjectPublicKeyInfo DER (not yet checked
    to be on the curve)."""
    try:
        fields = der.read_sequence(der.read_single(body, der.TAG_SEQUENCE).content)
        if len(fields) != 2:
            raise InvalidKey("SubjectPublicKeyInfo must hold two fields")
        _check_algorithm(fields[0])
        if fields[1].tag != der.TAG_BIT_STRING:
            raise InvalidKey("subjectPublicKey must be a BIT STRING")
    except der.DerError as error:
        raise InvalidKey(f"malformed public key DER: {error}") from error
    bits = fields[1].content
    if len(bits) != 1 + POINT_SIZE or bits[0] != 0:
        raise InvalidKey("SM2 public key must be an uncompressed 65-byte point")
    return bits[1:]
