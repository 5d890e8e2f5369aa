"""``POST /v1/archives/uploads``: a bag streamed into the archive store's spool
(:mod:`archives.spool`), never held whole in memory.

The registry's boundary (:class:`registry.boundary.BoundedRequests`) lets this one request
through unread (:func:`streams_its_body`). The sender declares the body's SM3 in
:data:`CONTENT_SM3_HEADER` and signs the request as any other, over that SM3 (the sign bytes
carry the body's SM3 anyway): the signature is checked and the nonce spent before a byte of
the body is read, then the body is written to the spool block by block, counted against the
cap (413 ``payload_too_large`` as soon as it passes, the partial file removed) and hashed
(422 ``body_digest_mismatch`` if it is not what was declared, removed too)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from archives.spool import (
    SpooledUpload,
    SpoolWriter,
    TooManyUploads,
    UploadSpool,
    UploadTooLarge,
)
from registry.errors import Conflict, PayloadTooLarge
from registry.streamed_requests import (
    CONTENT_SM3_HEADER,
    WRITE_BLOCK,
    authenticate_streamed,
    declared_length,
    drain,
)
from registry.threads import run_blocking

UPLOAD_PATH = "/v1/archives/uploads"
"""The streamed upload's route."""


def streams_its_body(scope: Scope) -> bool:
    """Whether the boundary passes this request's body to its route unread: the bag upload
    only, which bounds its body itself."""
    return scope.get("method") == "POST" and scope.get("path") == UPLOAD_PATH


async def receive_bag(request: Request, spool: UploadSpool, owner: str) -> SpooledUpload:
    """Stream the request's body into ``spool`` as an upload of ``owner``; raises
    Conflict (409) when ``owner`` has as many unused uploads as the spool keeps,
    PayloadTooLarge (413) past the cap and the spool's UploadDigestMismatch, leaving
    nothing behind either way (nor when the client goes away)."""
    length = declared_length(request)
    if length is not None and length > spool.max_bytes:
        raise PayloadTooLarge(
            f"the bag is larger than {spool.max_bytes} bytes", code="payload_too_large"
        )
    try:
        writer: SpoolWriter = await run_blocking(spool.open, owner)
    except TooManyUploads as exc:
        raise Conflict(str(exc), code=exc.code) from exc
    pending = bytearray()
    more = True
    try:
        while more:
            message = await request.receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            more = bool(message.get("more_body", False))
            pending += message.get("body", b"")
            if len(pending) >= WRITE_BLOCK or (pending and not more):
                block, pending = bytes(pending), bytearray()
                await run_blocking(writer.write, block)
        return await run_blocking(writer.finish, request.headers.get(CONTENT_SM3_HEADER))
    except UploadTooLarge as exc:
        if more:
            await drain(request)
        raise PayloadTooLarge(str(exc), code=exc.code) from exc
    finally:
        # Whatever stopped the upload (a refusal, a client gone away), nothing half-written
        # stays; a finished upload has been renamed away already.
        await run_blocking(writer.abort)


def upload_answer(upload: SpooledUpload, spool: UploadSpool) -> dict[str, Any]:
    """The JSON answer to a finished upload."""
    return {
        "upload": upload.upload_id,
        "size": upload.size,
        "sm3": upload.sm3,
        "keptForSeconds": spool.ttl_s,
    }


UPLOAD_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": CONTENT_SM3_HEADER,
            "in": "header",
            "required": True,
            "description": "hex SM3 of the body (the request is signed over it)",
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        }
    ],
    "requestBody": {
        "required": True,
        "description": "the bag as a zip or tar file, streamed",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}
"""What the OpenAPI document says of the upload's request."""


__all__ = [
    "CONTENT_SM3_HEADER",
    "UPLOAD_OPENAPI",
    "UPLOAD_PATH",
    "authenticate_streamed",
    "declared_length",
    "receive_bag",
    "streams_its_body",
    "upload_answer",
]
