"""The exception hierarchy of the e-license domain. Every error it raises derives from
:class:`LicenseError`; identifier errors from :mod:`sdk.identifiers` are chained as causes."""

from __future__ import annotations

import datetime


class LicenseError(Exception):
    """Base of every error raised by :mod:`registry.licenses`."""


class InvalidMetadata(LicenseError, ValueError):
    """License metadata that breaks a rule. ``field`` names the offending field (or
    ``"encoding"`` for bytes that are not the canonical JSON of any metadata) and ``detail``
    says what is wrong; a malformed identifier is the ``__cause__``."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"license metadata {field}: {detail}")
        self.field = field
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.detail))


class TokenError(LicenseError):
    """A dynamic QR token that must not be trusted."""


class MalformedToken(TokenError, ValueError):
    """Text that is not the encoding of any token: wrong alphabet or padding, wrong length,
    unknown version, or a signature that is not strict DER."""


class BadTokenSignature(TokenError):
    """A well-formed token whose signature does not verify under the key given."""


class TokenExpired(TokenError):
    """An authentic token used at or after its expiry."""

    def __init__(self, expires_at: datetime.datetime, now: datetime.datetime) -> None:
        super().__init__(f"token expired at {expires_at.isoformat()} (now {now.isoformat()})")
        self.expires_at = expires_at
        self.now = now

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.expires_at, self.now))


class InvalidTokenRequest(TokenError, ValueError):
    """Arguments from which no token is issued: a hash that is not 32 bytes, a nonce of the
    wrong size, an expiry not after ``now`` or too far after it, or a naive datetime."""


class InvalidPageView(LicenseError, ValueError):
    """A verify-page view that cannot be shown: an unsafe successor link, or a field
    missing for its status."""


class UnsupportedLanguage(LicenseError, ValueError):
    """A language the verify page is not written in."""
