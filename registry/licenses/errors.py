"""The exception hierarchy of the e-license domain. Every error it raises derives from
:class:`LicenseError`, except :class:`InvalidMetadata`, which the metadata's own module
(:mod:`sdk.license_metadata`, where departments compute the metadata hash too) raises;
identifier errors from :mod:`sdk.identifiers` are chained as causes."""

from __future__ import annotations

import datetime

from sdk.license_metadata import InvalidMetadata


class LicenseError(Exception):
    """Base of every error raised by :mod:`registry.licenses`."""


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


__all__ = [
    "BadTokenSignature",
    "InvalidMetadata",
    "InvalidPageView",
    "InvalidTokenRequest",
    "LicenseError",
    "MalformedToken",
    "TokenError",
    "TokenExpired",
    "UnsupportedLanguage",
]
