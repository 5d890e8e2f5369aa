"""QR codes for e-licenses: a static code that links to the license's verify page, and a
dynamic one that carries a short-lived signed token (:mod:`registry.licenses.tokens`, whose
``issue_token`` and ``verify_token`` are re-exported here).

Codes use error correction level M (about 15 % of the symbol may be damaged), are not
raised to a higher level behind the caller's back (so the size is predictable), and have
the standard four-module quiet zone. Measured: a static link of 99–113 characters
(identifier in the path) gives version 6–7 (41–45 modules a side); a token link of
190–200 characters (token 158–162) gives version 10 (57 modules, 65 with the quiet zone,
a 520-pixel PNG of about 1 KB).
"""

from __future__ import annotations

import io
from typing import NamedTuple
from urllib.parse import quote

import segno

from registry.licenses.tokens import TokenClaims, issue_token, verify_token

__all__ = [
    "ERROR_CORRECTION",
    "PNG_SCALE",
    "QrImages",
    "TokenClaims",
    "issue_token",
    "qr_version",
    "static_qr",
    "token_url",
    "verify_token",
]

ERROR_CORRECTION = "m"
"""QR error correction level (L, M, Q, H): M balances damage tolerance against size."""

PNG_SCALE = 8
"""Pixels per module of the PNG: a version 10 symbol with its quiet zone is 520 px."""

QUIET_ZONE = 4
"""Modules of blank border, as ISO/IEC 18004 requires."""


class QrImages(NamedTuple):
    """One QR symbol as a PNG image and as SVG text."""

    png: bytes
    """PNG, black on white, PNG_SCALE pixels per module."""
    svg: str
    """SVG with a view box in modules (scales without loss; no XML declaration)."""


def _make(text: str) -> segno.QRCode:
    return segno.make_qr(text, error=ERROR_CORRECTION, boost_error=False)


def static_qr(url: str) -> QrImages:
    """The QR code of ``url``, as PNG bytes and SVG text. Raises ValueError for an empty
    URL, and segno's DataOverflowError (a ValueError) when it does not fit in a QR code."""
    if not url:
        raise ValueError("a QR code needs a non-empty URL")
    symbol = _make(url)
    png = io.BytesIO()
    symbol.save(png, kind="png", scale=PNG_SCALE, border=QUIET_ZONE)
    svg = io.BytesIO()
    symbol.save(svg, kind="svg", xmldecl=False, svgns=True, border=QUIET_ZONE, omitsize=True)
    return QrImages(png.getvalue(), svg.getvalue().decode("utf-8"))


def qr_version(text: str) -> int:
    """The QR version (1–40) that :func:`static_qr` uses for ``text``; its side is
    17 + 4 × version modules, not counting the quiet zone."""
    version = _make(text).version
    if not isinstance(version, int):  # a Micro QR designator; make_qr never returns one
        raise TypeError(f"unexpected QR version {version!r}")
    return version


def token_url(base_url: str, token: str) -> str:
    """The URL of a dynamic-token verify page: ``base_url`` followed by the token as one
    path segment (a token is base64url, so it needs no escaping, but it is quoted anyway so
    that no text can add a path or query)."""
    return base_url.rstrip("/") + "/" + quote(token, safe="")
