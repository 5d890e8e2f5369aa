"""The explorer's request boundary: what every request must be before any route parses it.
A URL longer than MAX_URL_BYTES, a body announced longer than MAX_BODY_BYTES, a query of
more than MAX_QUERY_FIELDS fields, a path or query that is not UTF-8 once percent-decoded or
that holds a control character (NUL included: PostgreSQL cannot store it, and no page key
holds one) is refused with its reason, logged, and goes no further. Heights in query
strings are bounded by MAX_HEIGHT (the index's BIGINT)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

MAX_URL_BYTES = 4096
"""Longest path with query string accepted (a page's URL is far shorter; the search box
sends at most 200 characters)."""
MAX_BODY_BYTES = 64 * 1024
"""Largest body announced (login and job forms are a few hundred bytes)."""
MAX_QUERY_FIELDS = 20
"""Most query string fields (a page takes at most three)."""
MAX_HEIGHT = 2**63 - 1
"""Largest height a query may name."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Refused(Exception):
    """A request refused at the boundary: ``status`` and a short ``reason`` code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_request(request: Request) -> None:
    """Raise Refused if ``request`` crosses a bound of the module docstring."""
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    if len(raw_path) + len(query) + 1 > MAX_URL_BYTES:
        raise Refused(414, "url_too_long")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise Refused(413, "body_too_large")
    if query.count(b"&") + 1 > MAX_QUERY_FIELDS:
        raise Refused(400, "too_many_query_fields")
    for part in (raw_path, query.replace(b"+", b" ")):
        try:
            text = unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "not_utf8") from None
        if _CONTROL.search(text):
            raise Refused(400, "control_character")


def printable(text: str) -> str:
    """``text`` with control characters escaped, for logs and the access log."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


__all__ = ["MAX_BODY_BYTES", "MAX_HEIGHT", "MAX_URL_BYTES", "Refused", "check_request", "printable"]
