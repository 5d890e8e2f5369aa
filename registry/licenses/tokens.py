"""Dynamic QR tokens: short-lived, SM2-signed proofs that the registry showed a license as
current, for a QR code that a holder presents from a phone (a screenshot stops working when
the token expires).

A token carries no personal data, only the license's on-chain key (the SM3 hash of its
identifier, see :func:`contracts.trust.license_id_hash`). Its bytes are::

    version (1 byte, 1) || license id hash (32) || expires_at (8, seconds since the epoch,
    unsigned big-endian) || nonce (8) || SM2 signature (DER, 8-72 bytes)

written as unpadded base64url (RFC 4648 §5): 158–162 characters. The signature covers
``TOKEN_SIGN_PREFIX || version || license id hash || expires_at || nonce``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass

from chain.crypto import PrivateKey, PublicKey
from chain.crypto.sm2 import decode_signature
from chain.errors import InvalidSignature
from chain.primitives import HASH_SIZE, Hash32
from registry.licenses.errors import (
    BadTokenSignature,
    InvalidTokenRequest,
    MalformedToken,
    TokenExpired,
)

__all__ = [
    "MAX_TOKEN_LIFETIME",
    "TOKEN_NONCE_SIZE",
    "TOKEN_SIGN_PREFIX",
    "TOKEN_VERSION",
    "TokenClaims",
    "issue_token",
    "verify_token",
]

TOKEN_SIGN_PREFIX = b"lianxin/license-token/v1\x00"
"""Domain-separation prefix of the signed bytes."""

TOKEN_VERSION = 1
"""The one token layout defined so far."""

TOKEN_NONCE_SIZE = 8
"""Random bytes that make every token distinct (and countable, if the caller wants)."""

MAX_TOKEN_LIFETIME = datetime.timedelta(days=1)
"""Longest validity :func:`issue_token` grants by default."""

_EXPIRY_SIZE = 8
_CLAIMS_SIZE = 1 + HASH_SIZE + _EXPIRY_SIZE + TOKEN_NONCE_SIZE
_MIN_SIGNATURE_SIZE = 8
"""The shortest strict-DER SM2 signature: SEQUENCE of two one-byte INTEGERs."""
_MAX_SIGNATURE_SIZE = 72
"""The longest: SEQUENCE of two 33-byte INTEGERs."""
_MAX_TOKEN_TEXT_SIZE = (4 * (_CLAIMS_SIZE + _MAX_SIGNATURE_SIZE) + 2) // 3


@dataclass(frozen=True)
class TokenClaims:
    """What an authentic, unexpired token says."""

    license_id_hash: Hash32
    """SM3 of the license's identifier: its key in ``LicenseRegistry``."""
    expires_at: datetime.datetime
    """First instant (UTC, whole seconds) at which the token is no longer accepted."""
    nonce: bytes
    """The token's random nonce (TOKEN_NONCE_SIZE bytes)."""
    version: int = TOKEN_VERSION
    """Token layout version."""


def _epoch_seconds(name: str, moment: datetime.datetime) -> int:
    if not isinstance(moment, datetime.datetime) or moment.utcoffset() is None:
        raise InvalidTokenRequest(f"{name} must be a timezone-aware datetime")
    return int(moment.timestamp() // 1)


def _claims_bytes(license_id_hash: bytes, expires_at: int, nonce: bytes) -> bytes:
    return (
        bytes([TOKEN_VERSION]) + license_id_hash + expires_at.to_bytes(_EXPIRY_SIZE, "big") + nonce
    )


def issue_token(
    license_id_hash: bytes,
    expires_at: datetime.datetime,
    key: PrivateKey,
    *,
    now: datetime.datetime,
    nonce: bytes,
    max_lifetime: datetime.timedelta = MAX_TOKEN_LIFETIME,
) -> str:
    """Return a token for the license ``license_id_hash``, signed by ``key``, valid until
    ``expires_at`` (rounded down to the second).

    ``nonce`` must be TOKEN_NONCE_SIZE bytes from a CSPRNG (``secrets.token_bytes``).
    Raises InvalidTokenRequest if the hash is not 32 bytes, the nonce has the wrong size,
    a datetime is naive, or ``expires_at`` is not after ``now`` or is more than
    ``max_lifetime`` after it.
    """
    if not isinstance(license_id_hash, bytes) or len(license_id_hash) != HASH_SIZE:
        raise InvalidTokenRequest(f"license id hash must be {HASH_SIZE} bytes")
    if not isinstance(nonce, bytes) or len(nonce) != TOKEN_NONCE_SIZE:
        raise InvalidTokenRequest(f"nonce must be {TOKEN_NONCE_SIZE} bytes")
    expiry = _epoch_seconds("expires_at", expires_at)
    current = _epoch_seconds("now", now)
    if expiry <= current:
        raise InvalidTokenRequest("expires_at must be after now")
    if expires_at - now > max_lifetime:
        raise InvalidTokenRequest(f"a token may live at most {max_lifetime}")
    claims = _claims_bytes(license_id_hash, expiry, nonce)
    signature = key.sign(TOKEN_SIGN_PREFIX + claims)
    return base64.urlsafe_b64encode(claims + signature).rstrip(b"=").decode("ascii")


def _decode_text(token: str) -> bytes:
    """The bytes of a token's text; raises MalformedToken unless it is canonical unpadded
    base64url of a plausible size."""
    if not isinstance(token, str) or not token.isascii():
        raise MalformedToken("token must be ASCII text")
    if len(token) > _MAX_TOKEN_TEXT_SIZE:
        raise MalformedToken("token too long")
    if len(token) % 4 == 1 or "=" in token:
        raise MalformedToken("token is not unpadded base64url")
    try:
        data = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except binascii.Error as error:
        raise MalformedToken(f"token is not base64url: {error}") from error
    # Unused low bits of the last character would give one token several spellings.
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != token:
        raise MalformedToken("token is not in canonical base64url")
    return data


def verify_token(token: str, public_key: PublicKey, *, now: datetime.datetime) -> TokenClaims:
    """Return the claims of ``token`` if it is well formed, signed by ``public_key`` and
    not expired at ``now``.

    Raises MalformedToken for text that is no token (checked first), BadTokenSignature when
    the signature does not verify, and TokenExpired when an authentic token is used at or
    after its expiry. A forged token therefore never reports "expired".
    """
    current = _epoch_seconds("now", now)
    data = _decode_text(token)
    if len(data) < _CLAIMS_SIZE + _MIN_SIGNATURE_SIZE:
        raise MalformedToken("token too short")
    if data[0] != TOKEN_VERSION:
        raise MalformedToken(f"unknown token version {data[0]}")
    claims, signature = data[:_CLAIMS_SIZE], data[_CLAIMS_SIZE:]
    try:
        decode_signature(signature)
    except InvalidSignature as error:
        raise MalformedToken(f"token signature is not strict DER: {error}") from error
    try:
        public_key.verify(signature, TOKEN_SIGN_PREFIX + claims)
    except InvalidSignature as error:
        raise BadTokenSignature("token signature does not verify") from error
    license_id_hash = Hash32(claims[1 : 1 + HASH_SIZE])
    expiry = int.from_bytes(claims[1 + HASH_SIZE : 1 + HASH_SIZE + _EXPIRY_SIZE], "big")
    nonce = claims[1 + HASH_SIZE + _EXPIRY_SIZE :]
    expires_at = _from_epoch(expiry)
    if current >= expiry:
        raise TokenExpired(expires_at, now)
    return TokenClaims(license_id_hash, expires_at, nonce)


def _from_epoch(seconds: int) -> datetime.datetime:
    try:
        return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError) as error:
        # issue_token never signs such an expiry; a key that did is not to be believed.
        raise MalformedToken(f"token expiry {seconds} is out of range") from error
