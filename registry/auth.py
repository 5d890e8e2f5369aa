"""Department authentication: every request carries the client id, a timestamp, a nonce and
an SM2 signature over :func:`sdk.trust.request_sign_bytes` (method, path with query, client
id, timestamp, nonce, SM3 of the body).

A request is refused with 401 — and nothing is stored — when a header is missing or
malformed, the client is unknown, the timestamp is more than ``timestamp_skew`` seconds off,
the signature does not verify, or the nonce was used before by that client. The nonce is
stored only once everything else has passed, and kept until the timestamp could no longer
be accepted anyway.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from chain.crypto import PublicKey
from chain.errors import CryptoError
from registry.db import Database
from registry.errors import AuthenticationFailed
from registry.models import Client, Nonce
from registry.settings import RegistrySettings
from sdk.trust import (
    CLIENT_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_sign_bytes,
)

NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""Accepted nonces."""

CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,36}")
"""Accepted client ids."""


async def authenticate_request(
    request: Request, db: Database, settings: RegistrySettings
) -> Client:
    """Return the client that signed ``request``; raise AuthenticationFailed otherwise."""
    headers = request.headers
    client_id = headers.get(CLIENT_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    nonce = headers.get(NONCE_HEADER)
    signature_b64 = headers.get(SIGNATURE_HEADER)
    if not client_id or not timestamp or not nonce or not signature_b64:
        raise AuthenticationFailed(
            f"sign the request: {CLIENT_HEADER}, {TIMESTAMP_HEADER}, {NONCE_HEADER} and "
            f"{SIGNATURE_HEADER} are required",
            code="missing_credentials",
        )
    if not CLIENT_ID_PATTERN.fullmatch(client_id) or not NONCE_PATTERN.fullmatch(nonce):
        raise AuthenticationFailed("malformed client id or nonce", code="malformed_credentials")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        signed_at = int(timestamp)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed(
            "signature must be base64 and timestamp an integer", code="malformed_credentials"
        ) from None
    now = time.time()
    if abs(now - signed_at) > settings.timestamp_skew:
        raise AuthenticationFailed(
            f"timestamp is more than {settings.timestamp_skew} s off", code="stale_timestamp"
        )
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    message = request_sign_bytes(
        method=request.method,
        path=path,
        client_id=client_id,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
    )
    expires = datetime.fromtimestamp(signed_at + settings.timestamp_skew + 1, UTC)
    return await run_in_threadpool(
        _check_and_consume, db, client_id, nonce, signature, message, expires
    )


def _check_and_consume(
    db: Database,
    client_id: str,
    nonce: str,
    signature: bytes,
    message: bytes,
    expires: datetime,
) -> Client:
    with db.session() as session:
        client = session.get(Client, client_id)
        if client is None:
            raise AuthenticationFailed(f"unknown client {client_id}", code="unknown_client")
        session.expunge(client)
    try:
        PublicKey.from_bytes(bytes.fromhex(client.public_key)).verify(signature, message)
    except CryptoError:
        raise AuthenticationFailed(
            "signature does not verify with the client's key", code="bad_signature"
        ) from None
    try:
        with db.session() as session:
            session.add(Nonce(client_id=client_id, nonce=nonce, expires_at=expires))
    except IntegrityError:
        raise AuthenticationFailed("nonce was used before", code="replayed_nonce") from None
    return client


def purge_expired_nonces(db: Database, now: datetime | None = None) -> int:
    """Delete nonces whose timestamps could no longer be accepted; returns how many."""
    moment = now or datetime.now(UTC)
    with db.session() as session:
        result = session.execute(delete(Nonce).where(Nonce.expires_at < moment))
        return int(getattr(result, "rowcount", 0) or 0)
