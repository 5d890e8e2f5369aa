"""Department authentication: every request carries the client id, a timestamp, a nonce and
an SM2 signature over :func:`sdk.trust.request_sign_bytes` (method, path with query, client
id, timestamp, nonce, SM3 of the body).

A request is refused with 401 — and nothing is stored — when a header is missing or
malformed, the client is unknown, the timestamp is more than ``timestamp_skew`` seconds off,
the signature does not verify, or the nonce was used before by that client. An unknown
client id and a signature that does not verify get the same answer (``bad_signature``),
after the same work (a signature check against a stand-in key), so that the 401 never tells
a caller which client ids exist; the log keeps the real reason. The nonce is
stored only once everything else has passed (through the group committer of
:mod:`registry.intake`, in the same transaction as a notarized record), and kept until the
timestamp could no longer be accepted anyway. A request refused before its handler runs
(401, or 422 for a body that does not parse) stores nothing, its nonce included; one the
handler refuses (403, 409, 422) spends its nonce, so replaying it gets 401.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import delete

from chain.crypto import PrivateKey, PublicKey, sm3
from chain.errors import CryptoError
from registry.caches import TtlCache
from registry.db import Database
from registry.errors import AuthenticationFailed
from registry.intake import NonceClaim
from registry.models import Client, Nonce
from registry.settings import RegistrySettings
from registry.threads import run_blocking
from sdk.trust import (
    CLIENT_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from sdk.trust_core import request_sign_bytes_for_digest

logger = logging.getLogger(__name__)

BAD_SIGNATURE_MESSAGE = "the signature does not verify with the key of this client id"
"""What the caller is told both for an unknown client id and for a bad signature."""

NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""Accepted nonces."""

CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,36}")
"""Accepted client ids."""


CLIENT_CACHE_TTL_S = 1.0
"""How long a client's row and parsed key — or the fact that no client has an id — are
reused before the database is asked again. Remembering unknown ids as long as known ones
keeps a second probe of an id from telling, by its speed, whether the id exists; a new
client still works at once, since its id is drawn when it is added."""


@dataclass(frozen=True)
class SignedRequest:
    """A request whose signature verified with a registered client's key. Its nonce is not
    spent yet: see :class:`registry.intake.GroupCommitter`."""

    client: Client
    """The signing client (detached from any session; read only)."""
    nonce: NonceClaim
    """The nonce to spend."""


class ClientDirectory:
    """Registered clients and their parsed SM2 keys, read from the database at most every
    ``ttl`` seconds per client."""

    def __init__(self, db: Database, ttl: float = CLIENT_CACHE_TTL_S) -> None:
        """Read clients from ``db``."""
        self.db = db
        self._clients: TtlCache[str, tuple[Client, PublicKey] | None] = TtlCache(ttl)
        self.stand_in_key = PrivateKey.generate().public_key
        """A key no client has: an unknown client's signature is checked against it, so
        that refusing it costs what refusing a bad signature costs."""

    def find(self, client_id: str) -> tuple[Client, PublicKey] | None:
        """The client and its key, or None if no client has this id."""
        return self._clients.get_or_load(client_id, lambda: self._read(client_id))

    def lookup(self, client_id: str) -> tuple[Client, PublicKey]:
        """The client and its key; raises AuthenticationFailed (``bad_signature``, the
        answer a bad signature gets) if there is none."""
        found = self.find(client_id)
        if found is None:
            logger.info("request refused: unknown client id %r", client_id)
            raise AuthenticationFailed(BAD_SIGNATURE_MESSAGE, code="bad_signature")
        return found

    def _read(self, client_id: str) -> tuple[Client, PublicKey] | None:
        with self.db.read_session() as session:
            client = session.get(Client, client_id)
            if client is None:
                return None
            session.expunge(client)
        return client, PublicKey.from_bytes(bytes.fromhex(client.public_key))


async def verify_signed_request(
    request: Request,
    clients: ClientDirectory,
    settings: RegistrySettings,
    *,
    body_sm3: str | None = None,
) -> SignedRequest:
    """Check the request's credentials and signature without storing anything; raises
    AuthenticationFailed. The caller spends the returned nonce (alone, or together with
    what the request stores). A route that streams its body checks the signature over the
    hex SM3 the caller declares, ``body_sm3``, before reading it, and then refuses a body
    that hashes otherwise."""
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
    if body_sm3 is None:
        body_sm3 = sm3(await request.body()).hex()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    message = request_sign_bytes_for_digest(
        method=request.method,
        path=path,
        client_id=client_id,
        timestamp=timestamp,
        nonce=nonce,
        body_sm3=body_sm3,
    )
    client = await run_blocking(_check_signature, clients, client_id, signature, message)
    expires = datetime.fromtimestamp(signed_at + settings.timestamp_skew + 1, UTC)
    return SignedRequest(client, NonceClaim(client_id, nonce, expires))


def _check_signature(
    clients: ClientDirectory, client_id: str, signature: bytes, message: bytes
) -> Client:
    """The client ``client_id`` if ``signature`` over ``message`` verifies with its key;
    else AuthenticationFailed (``bad_signature``, an unknown id checked against a stand-in
    key so that it costs what a bad signature costs)."""
    found = clients.find(client_id)
    public_key = clients.stand_in_key if found is None else found[1]
    try:
        public_key.verify(signature, message)
        verified = found is not None
    except CryptoError:
        verified = False
    if found is None or not verified:
        reason = "unknown client id" if found is None else "bad signature"
        logger.info("request refused: %s (client id %r)", reason, client_id)
        raise AuthenticationFailed(BAD_SIGNATURE_MESSAGE, code="bad_signature")
    return found[0]


def purge_expired_nonces(db: Database, now: datetime | None = None) -> int:
    """Delete nonces whose timestamps could no longer be accepted; returns how many."""
    moment = now or datetime.now(UTC)
    with db.session() as session:
        result = session.execute(delete(Nonce).where(Nonce.expires_at < moment))
        return int(getattr(result, "rowcount", 0) or 0)
