"""The registry's outer boundary: pure ASGI middleware that sees every HTTP request before
routing, authentication or any JSON parser does.

:class:`BoundedRequests` reads the body itself, counting bytes as they arrive, and answers
on its own (the routes never run) when

- the declared ``Content-Length`` or the bytes actually streamed (a chunked body) pass
  ``max_body_bytes``: 413 ``payload_too_large``;
- a JSON body (``application/json``, ``application/*+json``, or no content type, which
  FastAPI parses as JSON too) nests deeper than ``max_json_depth``: 422 ``invalid_json``,
  found by a linear scan (:func:`chain.bounded_json.check_bounds`) that never recurses — so
  a nesting bomb never reaches ``json.loads``, which recurses in C;
- a JSON body holds what has no canonical form: ``NaN``, ``Infinity``, a number beyond the
  double range, a lone UTF-16 surrogate, bytes that are not UTF-8, or is no JSON at all:
  422 ``invalid_json`` (``details.reason`` says which, as :class:`JsonLimitError` names it);
- a JSON string holds a NUL character (``\u0000``): 422 ``invalid_json``, reason
  ``nul_character``.

It also refuses, before anything else, a request whose path or query string holds a NUL
character (``%00``): 422 ``invalid_request``. No identifier, search term or record field holds
one, and PostgreSQL cannot store or compare text with it, so it would otherwise fail deep in a
query.

Every answer has the registry's error shape ``{"error": {"code", "message", "details"}}``.
A body that passes is handed to the application unchanged. A request ``passes_unread``
names (an upload streamed to disk, e.g. an archive bag) reaches its route unread: that route
bounds the bytes itself as they arrive and answers 413 the same way.

With ``server_address_as_host``, it also drops the ``Host`` header of every request it passes
on, so that URLs the application builds from the request (links and QR codes, when no
``public_base_url`` is configured) name the address the server listens on, never a host the
caller made up. That is done here rather than in a layer of its own: one layer fewer to pass
through on every request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chain.bounded_json import JsonLimitError, check_bounds, loads_bounded, outside_strings
from registry.errors import InvalidInput, PayloadTooLarge, error_body
from registry.limits import DRAIN_BYTES, MAX_REQUEST_JSON_DEPTH

INVALID_JSON = "invalid_json"
"""Error code of a JSON body refused at the boundary (422)."""
INVALID_REQUEST = "invalid_request"
"""Error code of a request refused at the boundary for its path or query (422)."""

_LONG_NUMBER = re.compile(rb"[0-9]{16}")
"""In a body's text outside its strings: a number of 16 digits or more (beyond 2**53, or
past the double range)."""
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""In a body's strings: an escaped NUL character (``\\u0000`` not itself escaped)."""
"""In a body's strings: an escaped UTF-16 surrogate (paired or not)."""


class BoundedRequests:
    """Refuse oversize, overdeep and non-canonical request bodies before the application
    (see the module's text)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_json_depth: int = MAX_REQUEST_JSON_DEPTH,
        passes_unread: Callable[[Scope], bool] | None = None,
        server_address_as_host: bool = False,
    ) -> None:
        """Wrap ``app``; requests ``passes_unread`` accepts go to their route unread; with
        ``server_address_as_host`` every request reaches ``app`` without its Host header."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.passes_unread = passes_unread
        self.server_address_as_host = server_address_as_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and check the body, then run the application with it (or answer alone)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _holds_nul(scope):
            await _answer(
                send,
                InvalidInput.status_code,
                INVALID_REQUEST,
                "the path or query string holds a NUL character (%00)",
                details={"reason": "nul_character"},
            )
            return
        if self.passes_unread is not None and self.passes_unread(scope):
            await self._pass_on(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(send, 413, PayloadTooLarge.code, self._too_large(), close=True)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nothing to answer
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_body_bytes:
                if more:
                    await _drain(receive, DRAIN_BYTES)
                await _answer(send, 413, PayloadTooLarge.code, self._too_large(), close=True)
                return
        data = bytes(body)
        if data and _is_json(scope):
            refusal = self._check_json(data)
            if refusal is not None:
                await _answer(
                    send,
                    InvalidInput.status_code,
                    INVALID_JSON,
                    str(refusal),
                    details={"reason": refusal.reason, "limit": refusal.limit},
                )
                return
        await self._pass_on(scope, _replay(data, receive), send)

    async def _pass_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application on the request (without its Host header if so configured).
        The route the router chose for the copy without it is noted in ``scope`` too, for
        the layers outside (the request metrics' route template), even if the route raised."""
        if not self.server_address_as_host:
            await self.app(scope, receive, send)
            return
        inner = {**scope, "headers": [item for item in scope["headers"] if item[0] != b"host"]}
        try:
            await self.app(inner, receive, send)
        finally:
            route = inner.get("route")
            if route is not None:
                scope["route"] = route

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"

    def _check_json(self, data: bytes) -> JsonLimitError | None:
        """Why ``data`` is refused, or None."""
        try:
            # The structure, numbers and literals: the depth scan needs no more, nor do the
            # looks for values without a canonical form below.
            outside = outside_strings(data) if b'"' in data else data
            check_bounds(outside, max_bytes=self.max_body_bytes, max_depth=self.max_json_depth)
            if not data.isascii():
                # Strict: refuses UTF-8-encoded surrogates, which json.loads would take.
                data.decode("utf-8")
            if _may_lack_canonical_form(data, outside):
                loads_bounded(data, max_bytes=self.max_body_bytes, max_depth=self.max_json_depth)
            if b"\\u0000" in data and _NUL_ESCAPE.search(data) is not None:
                return JsonLimitError("nul_character", "a string in the body holds a NUL character")
        except JsonLimitError as exc:
            return exc
        except UnicodeDecodeError as exc:
            return JsonLimitError("not_utf8", f"body is not UTF-8: {exc.reason}")
        return None


def _holds_nul(scope: Scope) -> bool:
    """Whether the request's (decoded) path or its query string holds a NUL character."""
    query = bytes(scope.get("query_string", b"")).lower()
    return "\x00" in str(scope.get("path", "")) or b"%00" in query or b"\x00" in query


def _may_lack_canonical_form(data: bytes, outside: bytes) -> bool:
    """Whether the body ``data`` (``outside``: its text outside strings) may hold NaN,
    Infinity, a number with an exponent or of 16 digits or more, or an escaped surrogate:
    then it is parsed strictly; otherwise only scanned."""
    if b"NaN" in outside or b"Infinity" in outside:
        return True
    literals_removed = outside.replace(b"true", b"").replace(b"false", b"")
    if b"e" in literals_removed or b"E" in literals_removed:
        return True
    if _LONG_NUMBER.search(outside):
        return True
    return b"\\u" in data and _SURROGATE_ESCAPE.search(data) is not None


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse this request's body as JSON."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = bytes(value).split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives ``body`` once, then what ``receive`` gives
    (a disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop up to ``limit`` more bytes of the body."""
    dropped = 0
    while dropped <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _answer(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    details: object = None,
    close: bool = False,
) -> None:
    body = json.dumps(error_body(code, message, details)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
