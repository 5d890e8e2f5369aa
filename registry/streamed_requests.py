"""Requests whose body is streamed to disk instead of read whole: a bag upload
(:mod:`registry.archives.upload`) and a 双公示 table import (:mod:`registry.credit.import_upload`).

The registry's boundary (:class:`registry.boundary.BoundedRequests`) lets such a request
through unread. Its sender declares the body's SM3 in :data:`CONTENT_SM3_HEADER`; the request
is signed as any other, since the sign bytes carry the body's SM3 anyway
(:func:`registry.auth.verify_signed_request`). So the signature is checked and the nonce spent
before a byte of the body is read (:func:`authenticate_streamed`), then the body is written to
a file block by block, counted against a cap (413 ``payload_too_large`` as soon as it passes)
and hashed (422 ``body_digest_mismatch`` if it is not what was declared), and nothing of a
refused body stays (:func:`receive_to_file`)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Request
from starlette.requests import ClientDisconnect

from chain.crypto.sm3 import sm3_hasher
from registry.auth import verify_signed_request
from registry.deps import RegistryState
from registry.errors import AuthenticationFailed, InvalidInput, PayloadTooLarge
from registry.limits import DRAIN_BYTES
from registry.models import Client
from registry.threads import run_blocking

CONTENT_SM3_HEADER = "X-Lianxin-Content-SM3"
"""The hex SM3 of the body a streamed request will send (signed, as the sign bytes carry
it)."""

WRITE_BLOCK = 1024 * 1024
"""Bytes gathered before one write to disk (one thread hop per block)."""

BODY_DIGEST_MISMATCH = "body_digest_mismatch"
"""Error code of a streamed body that does not hash to the SM3 declared for it (422)."""

_HEX_SM3 = re.compile(r"[0-9a-fA-F]{64}")


def declares_content_sm3(request_headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether raw ASGI headers hold :data:`CONTENT_SM3_HEADER` (any value)."""
    wanted = CONTENT_SM3_HEADER.lower().encode()
    return any(name.lower() == wanted for name, _value in request_headers)


def declared_length(request: Request) -> int | None:
    """The declared ``Content-Length``, or None (chunked, or not a number)."""
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


async def authenticate_streamed(request: Request, state: RegistryState) -> Client:
    """The client that signed this streamed request over its declared body SM3, its nonce
    spent; raises AuthenticationFailed (401) without reading the body."""
    declared = request.headers.get(CONTENT_SM3_HEADER, "")
    if not _HEX_SM3.fullmatch(declared):
        raise AuthenticationFailed(
            f"declare the body's hex SM3 in {CONTENT_SM3_HEADER} and sign over it",
            code="missing_credentials",
        )
    signed = await verify_signed_request(
        request, state.clients, state.settings, body_sm3=declared.lower()
    )
    await state.intake.spend_nonce(signed.nonce)
    return signed.client


async def drain(request: Request) -> None:
    """Read and drop up to DRAIN_BYTES more of the body, so a client still sending sees
    the 413 rather than a reset connection."""
    dropped = 0
    while dropped <= DRAIN_BYTES:
        message = await request.receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def receive_to_file(request: Request, path: Path, *, max_bytes: int) -> int:
    """Stream the request's body into the new file ``path``, hashing it; returns its size.
    Raises PayloadTooLarge (413) past ``max_bytes`` (declared or sent), InvalidInput (422
    ``body_digest_mismatch``) when it does not hash to the declared SM3, and
    ClientDisconnect; whatever is raised, ``path`` is removed."""
    length = declared_length(request)
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    declared = request.headers.get(CONTENT_SM3_HEADER, "").lower()
    hasher = sm3_hasher()
    size = 0
    pending = bytearray()
    more = True
    stream = await run_blocking(path.open, "xb")
    try:
        while more:
            message = await request.receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            more = bool(message.get("more_body", False))
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                if more:
                    await drain(request)
                raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
            pending += chunk
            if len(pending) >= WRITE_BLOCK or (pending and not more):
                block, pending = bytes(pending), bytearray()
                hasher.update(block)
                await run_blocking(stream.write, block)
        await run_blocking(stream.close)
        if hasher.hexdigest() != declared:
            raise InvalidInput(
                f"the body does not hash to the SM3 declared in {CONTENT_SM3_HEADER}",
                code=BODY_DIGEST_MISMATCH,
            )
        return size
    except BaseException:
        stream.close()
        path.unlink(missing_ok=True)
        raise


__all__ = [
    "BODY_DIGEST_MISMATCH",
    "CONTENT_SM3_HEADER",
    "authenticate_streamed",
    "declared_length",
    "declares_content_sm3",
    "drain",
    "receive_to_file",
]
