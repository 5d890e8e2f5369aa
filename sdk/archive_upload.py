"""The streamed upload of a bag to the archive's spool (``POST /v1/archives/uploads``),
without I/O: a :mod:`sdk.streamed_upload` request, its body signed by the SM3 declared before
sending, read from disk in blocks on every attempt, never whole in memory."""

from __future__ import annotations

from chain.crypto import PrivateKey
from sdk.archive_calls import ARCHIVES_PATH, Upload
from sdk.streamed_upload import (
    CONTENT_SM3_HEADER,
    ChangedWhileSending,
    Progress,
    StreamedBody,
    StreamedExchange,
    streamed_request,
)
from sdk.trust_core import Call, RegistryRequest

UPLOAD_PATH = f"{ARCHIVES_PATH}/uploads"
"""The streamed bag upload."""


def upload_request(body: StreamedBody) -> RegistryRequest:
    """``POST /v1/archives/uploads`` of ``body`` (the body itself is streamed; the request
    holds no bytes of it)."""
    return streamed_request("POST", UPLOAD_PATH, body)


def upload_exchange(
    body: StreamedBody, *, client_id: str, key: PrivateKey, retries: int, backoff: float
) -> StreamedExchange[Upload]:
    """The exchange of one bag upload."""
    return StreamedExchange(
        body,
        Call(upload_request(body), Upload.from_json),
        client_id=client_id,
        key=key,
        retries=retries,
        backoff=backoff,
    )


__all__ = [
    "CONTENT_SM3_HEADER",
    "UPLOAD_PATH",
    "ChangedWhileSending",
    "Progress",
    "StreamedBody",
    "StreamedExchange",
    "upload_exchange",
    "upload_request",
]
