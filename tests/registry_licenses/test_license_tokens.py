"""Dynamic QR tokens: issue → verify, and every way a token must be refused."""

from __future__ import annotations

import base64
import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.crypto import PrivateKey
from contracts.trust import license_id_hash
from registry.licenses.errors import (
    BadTokenSignature,
    InvalidTokenRequest,
    MalformedToken,
    TokenError,
    TokenExpired,
)
from registry.licenses.tokens import (
    TOKEN_NONCE_SIZE,
    TOKEN_SIGN_PREFIX,
    TokenClaims,
    issue_token,
    verify_token,
)

pytestmark = pytest.mark.no_database

IDENTIFIER = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
ID_HASH = license_id_hash(IDENTIFIER)
NOW = datetime.datetime(2025, 6, 1, 9, 30, tzinfo=datetime.UTC)
EXPIRES = NOW + datetime.timedelta(minutes=5)
NONCE = bytes(range(TOKEN_NONCE_SIZE))


def _token(key: PrivateKey, **overrides: object) -> str:
    arguments: dict[str, object] = {"now": NOW, "nonce": NONCE}
    arguments.update(overrides)
    return issue_token(ID_HASH, EXPIRES, key, **arguments)  # type: ignore[arg-type]


def _bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_round_trip(signing_key: PrivateKey) -> None:
    token = _token(signing_key)
    claims = verify_token(token, signing_key.public_key, now=NOW)
    assert claims == TokenClaims(ID_HASH, EXPIRES, NONCE)
    # Still good one second before expiry, in another time zone.
    later = (EXPIRES - datetime.timedelta(seconds=1)).astimezone(
        datetime.timezone(datetime.timedelta(hours=8))
    )
    assert verify_token(token, signing_key.public_key, now=later) == claims


def test_token_is_compact_url_safe_and_carries_only_the_hash(signing_key: PrivateKey) -> None:
    token = _token(signing_key)
    assert len(token) <= 170
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    data = _bytes(token)
    assert data[0] == 1
    assert data[1:33] == ID_HASH
    assert int.from_bytes(data[33:41], "big") == int(EXPIRES.timestamp())
    assert data[41:49] == NONCE
    # The signature covers the typed sign-bytes.
    signing_key.public_key.verify(data[49:], TOKEN_SIGN_PREFIX + data[:49])


def test_two_tokens_differ(signing_key: PrivateKey) -> None:
    assert _token(signing_key) != _token(signing_key, nonce=b"\xff" * TOKEN_NONCE_SIZE)


@pytest.mark.parametrize(
    "now", [EXPIRES, EXPIRES + datetime.timedelta(seconds=1), EXPIRES + datetime.timedelta(days=9)]
)
def test_expired(signing_key: PrivateKey, now: datetime.datetime) -> None:
    with pytest.raises(TokenExpired) as raised:
        verify_token(_token(signing_key), signing_key.public_key, now=now)
    assert raised.value.expires_at == EXPIRES


def test_wrong_key(signing_key: PrivateKey) -> None:
    with pytest.raises(BadTokenSignature):
        verify_token(_token(signing_key), PrivateKey.generate().public_key, now=NOW)


@pytest.mark.parametrize(
    ("offset", "what"), [(1, "hash"), (32, "hash end"), (40, "expiry"), (45, "nonce")]
)
def test_tampered_claims(signing_key: PrivateKey, offset: int, what: str) -> None:
    data = bytearray(_bytes(_token(signing_key)))
    data[offset] ^= 0x01
    with pytest.raises(BadTokenSignature):
        verify_token(_text(bytes(data)), signing_key.public_key, now=NOW)


def test_extended_expiry_is_a_forgery_not_an_expiry(signing_key: PrivateKey) -> None:
    data = bytearray(_bytes(_token(signing_key)))
    data[33:41] = int(NOW.timestamp() - 60).to_bytes(8, "big")
    with pytest.raises(BadTokenSignature):
        verify_token(_text(bytes(data)), signing_key.public_key, now=NOW)


@pytest.fixture(scope="module")
def issued(signing_key: PrivateKey) -> str:
    """One token, fixed for the module (signatures are randomised, so their size varies)."""
    return _token(signing_key)


@given(st.data())
def test_any_tampered_byte_is_refused(
    signing_key: PrivateKey, issued: str, data: st.DataObject
) -> None:
    raw = bytearray(_bytes(issued))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(TokenError) as raised:
        verify_token(_text(bytes(raw)), signing_key.public_key, now=NOW)
    assert not isinstance(raised.value, TokenExpired)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda token: "",
        lambda token: token[:-1],
        lambda token: token + "A",
        lambda token: token + "AAAA",
        lambda token: token + "==",
        lambda token: token.replace("-", "+").replace("_", "/") + "+/",
        lambda token: token[:20] + "!" + token[21:],
        lambda token: token[:20] + "é" + token[21:],
        lambda token: token[:60],
        lambda token: "A" * 4000,
    ],
)
def test_malformed(signing_key: PrivateKey, mutate: object) -> None:
    token = _token(signing_key)
    with pytest.raises(MalformedToken):
        verify_token(mutate(token), signing_key.public_key, now=NOW)  # type: ignore[operator]


def test_unknown_version_and_non_canonical_spelling(signing_key: PrivateKey) -> None:
    data = bytearray(_bytes(_token(signing_key)))
    data[0] = 2
    with pytest.raises(MalformedToken):
        verify_token(_text(bytes(data)), signing_key.public_key, now=NOW)
    # Set the unused low bits of the last character: same bytes, other spelling.
    token = _token(signing_key)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if len(token) % 4:
        last = alphabet.index(token[-1])
        spelling = token[:-1] + alphabet[last | 1 if last % 2 == 0 else last & ~1]
        with pytest.raises(MalformedToken):
            verify_token(spelling, signing_key.public_key, now=NOW)


def test_trailing_bytes_after_the_signature(signing_key: PrivateKey) -> None:
    data = _bytes(_token(signing_key)) + b"\x00"
    with pytest.raises(MalformedToken):
        verify_token(_text(data), signing_key.public_key, now=NOW)


@pytest.mark.parametrize(
    "overrides",
    [
        {"nonce": b"short"},
        {"now": NOW.replace(tzinfo=None)},
        {"now": EXPIRES},
        {"now": EXPIRES + datetime.timedelta(seconds=1)},
        {"now": EXPIRES - datetime.timedelta(days=2)},
    ],
)
def test_refused_requests(signing_key: PrivateKey, overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidTokenRequest):
        _token(signing_key, **overrides)


def test_refused_hash_and_lifetime(signing_key: PrivateKey) -> None:
    with pytest.raises(InvalidTokenRequest):
        issue_token(ID_HASH[:31], EXPIRES, signing_key, now=NOW, nonce=NONCE)
    longer = NOW + datetime.timedelta(days=3)
    token = issue_token(
        ID_HASH, longer, signing_key, now=NOW, nonce=NONCE, max_lifetime=datetime.timedelta(days=7)
    )
    assert verify_token(token, signing_key.public_key, now=NOW).expires_at == longer


def test_naive_now_on_verify(signing_key: PrivateKey) -> None:
    with pytest.raises(InvalidTokenRequest):
        verify_token(_token(signing_key), signing_key.public_key, now=NOW.replace(tzinfo=None))
