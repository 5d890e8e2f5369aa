"""SM2 keys: :class:`PrivateKey` signs, :class:`PublicKey` verifies and names an address.

Signatures are DER ``(r, s)`` over ``e = SM3(Z_A || M)``, with ``Z_A`` bound to the signer ID
(default :data:`DEFAULT_SIGNER_ID`) and the public key, as GB/T 32918.2 specifies and as
``openssl`` (``distid``) and gmssl compute it. Key generation and signing nonces draw on the
operating system's CSPRNG: the one place where ``chain`` takes randomness from outside.
"""

from __future__ import annotations

import hmac
import secrets
from functools import cached_property

from chain.crypto import curve, pem, sm2
from chain.crypto.backend import Backend, SigningKey, default_backend
from chain.crypto.curve import FIELD_SIZE, N
from chain.crypto.sm2 import DEFAULT_SIGNER_ID
from chain.crypto.sm3 import sm3
from chain.errors import InvalidKey
from chain.primitives import Address, PublicKeyBytes

__all__ = ["DEFAULT_SIGNER_ID", "PrivateKey", "PublicKey"]


class PublicKey:
    """An SM2 public key: a point on the curve, checked when the key is built."""

    def __init__(self, point: bytes, backend: Backend) -> None:
        """Use :meth:`from_bytes` or :meth:`from_pem`; this expects a checked point."""
        self._point = PublicKeyBytes(bytes(point))
        self._backend = backend

    @classmethod
    def from_bytes(cls, data: bytes, *, backend: Backend | None = None) -> PublicKey:
        """Return the key for a 65-byte ``0x04 || x || y``; raise InvalidKey if the length or
        prefix is wrong or the point is not on the curve."""
        curve.decode_point(data)
        return cls(data, backend or default_backend())

    @classmethod
    def from_pem(cls, data: bytes, *, backend: Backend | None = None) -> PublicKey:
        """Return the key in a ``PUBLIC KEY`` (SubjectPublicKeyInfo) PEM block."""
        label, body = pem.decode_pem(data)
        if label != "PUBLIC KEY":
            raise InvalidKey(f"expected a PUBLIC KEY PEM block, got {label!r}")
        return cls.from_bytes(pem.decode_subject_public_key_info(body), backend=backend)

    def to_bytes(self) -> PublicKeyBytes:
        """Return the 65-byte uncompressed encoding ``0x04 || x || y``."""
        return self._point

    def to_pem(self) -> bytes:
        """Return the key as a SubjectPublicKeyInfo ``PUBLIC KEY`` PEM block."""
        return pem.encode_pem("PUBLIC KEY", pem.encode_subject_public_key_info(self._point))

    @cached_property
    def address(self) -> Address:
        """The last 20 bytes of SM3(x || y)."""
        return Address(sm3(self._point[1:])[-20:])

    def verify(
        self, signature: bytes, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> None:
        """Return if ``signature`` is this key's strict-DER SM2 signature of ``message`` under
        ``signer_id``; otherwise raise InvalidSignature."""
        r, s = sm2.decode_signature(signature)
        digest = sm2.message_digest(self._point, message, signer_id)
        self._backend.verify_digest(self._point, digest, r, s)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and self._point == other._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"PublicKey({self._point.hex()})"


class PrivateKey:
    """An SM2 private key (a scalar d in [1, n-2]) loaded into a backend once.

    Every constructor raises PureSigningRefused when the backend (by default this process's,
    see :mod:`chain.crypto.backend`) is the pure-Python one without the signing opt-in."""

    def __init__(self, scalar: int, backend: Backend) -> None:
        """Use :meth:`generate`, :meth:`from_bytes` or :meth:`from_pem`."""
        if not 1 <= scalar < N - 1:
            raise InvalidKey("SM2 private scalar outside [1, n-2]")
        self._scalar = scalar
        self._backend = backend
        self._signing_key: SigningKey = backend.load_signing_key(scalar)

    @classmethod
    def generate(cls, *, backend: Backend | None = None) -> PrivateKey:
        """Return a new key with a scalar drawn from the OS CSPRNG (``secrets``)."""
        return cls(secrets.randbelow(N - 2) + 1, backend or default_backend())

    @classmethod
    def from_bytes(cls, scalar32: bytes, *, backend: Backend | None = None) -> PrivateKey:
        """Return the key for a 32-byte big-endian scalar; raise InvalidKey if it is not 32
        bytes or outside [1, n-2]."""
        if len(scalar32) != FIELD_SIZE:
            raise InvalidKey(f"SM2 private key must be {FIELD_SIZE} bytes")
        return cls(int.from_bytes(scalar32, "big"), backend or default_backend())

    @classmethod
    def from_pem(
        cls, data: bytes, password: bytes | None = None, *, backend: Backend | None = None
    ) -> PrivateKey:
        """Return the key in a PKCS#8 ``PRIVATE KEY`` or SEC1 ``EC PRIVATE KEY`` PEM block.

        Raises InvalidKey on anything else, and when an embedded public key does not match
        the scalar. Password-protected PEM raises EncryptedPemUnsupported (an InvalidKey):
        use :mod:`chain.crypto.keystore` for keys at rest.
        """
        if password is not None:
            raise pem.EncryptedPemUnsupported(
                "password-protected PEM is not supported; use chain.crypto.keystore"
            )
        label, body = pem.decode_pem(data)
        scalar, embedded = pem.decode_private_key_der(body, label)
        key = cls(scalar, backend or default_backend())
        if embedded is not None and not hmac.compare_digest(embedded, key.public_key.to_bytes()):
            raise InvalidKey("the public key in the PEM does not match its private scalar")
        return key

    def to_bytes(self) -> bytes:
        """Return the 32-byte big-endian scalar. Keep it secret."""
        return self._scalar.to_bytes(FIELD_SIZE, "big")

    def to_pem(self, password: bytes | None = None) -> bytes:
        """Return the key as an unencrypted PKCS#8 ``PRIVATE KEY`` PEM block (curve OID
        1.2.156.10197.1.301). A password raises EncryptedPemUnsupported: use
        :mod:`chain.crypto.keystore` to store a key under a password."""
        if password is not None:
            raise pem.EncryptedPemUnsupported(
                "password-protected PEM is not supported; use chain.crypto.keystore"
            )
        body = pem.encode_private_key_info(self._scalar, self._signing_key.public_key)
        return pem.encode_pem("PRIVATE KEY", body)

    @cached_property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return PublicKey(self._signing_key.public_key, self._backend)

    def sign(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """Return a DER SM2 signature of ``message`` under ``signer_id``, with a fresh
        CSPRNG nonce (so two signatures of one message differ)."""
        digest = sm2.message_digest(self._signing_key.public_key, message, signer_id)
        r, s = self._signing_key.sign_digest(digest)
        return sm2.encode_signature(r, s)

    def __repr__(self) -> str:
        return f"PrivateKey(public_key={self._signing_key.public_key.hex()})"
