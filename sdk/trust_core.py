"""The registry's request protocol without I/O: what each call sends, how every attempt is
signed, when an attempt is tried again, and what an answer becomes.

A :class:`Call` is built once per method call by one of the ``*_call`` functions: its
:class:`RegistryRequest` (method, path, JSON body bytes, ``Idempotency-Key``) stays fixed
across attempts, so a retry never changes what the registry is asked. An :class:`Exchange`
drives one call through its attempts: :meth:`Exchange.next_attempt` gives the next
:class:`Attempt` to send (a fresh signature, nonce and timestamp; the delay to wait before
it) or None when the call is settled, :meth:`Exchange.receive` takes what came back (an
:class:`Answer` or the transport's exception), and :meth:`Exchange.result` gives the typed
result or raises the typed error. The clients in :mod:`sdk.trust` only send and sleep.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote

from chain.crypto import PrivateKey, sm3
from sdk.bundle import LicenseBundle
from sdk.errors import ANSWER_FAULTS, SdkError
from sdk.trust_types import (
    LicenseResult,
    LicenseToken,
    MalformedAnswer,
    NotarizeResult,
    RecordResult,
    RegistryError,
    RegistryUnavailable,
    Verification,
)

REQUEST_SIGN_PREFIX = b"lianxin/registry-request/v1\x00"
"""Domain separation of registry request signatures."""

CLIENT_HEADER = "X-Lianxin-Client"
"""The caller's client id, as registered in the registry."""
TIMESTAMP_HEADER = "X-Lianxin-Timestamp"
"""Seconds since the Unix epoch, as a decimal integer."""
NONCE_HEADER = "X-Lianxin-Nonce"
"""16 to 64 characters of ``[A-Za-z0-9_-]``, never reused by a client."""
SIGNATURE_HEADER = "X-Lianxin-Signature"
"""Base64 of the DER SM2 signature of :func:`request_sign_bytes`."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""A key that makes a notarization request safe to retry."""

RETRY_STATUSES = frozenset({502, 503, 504})
"""Answers after which a request is tried again."""

MAX_BULK_RECORDS = 1_000
"""Most records one bulk notarization may carry (the registry's default
``max_bulk_records``; a registry configured lower answers 413 or 422)."""

RECORD_ARGUMENTS = frozenset({"digest", "document", "metadata", "fields"})
"""The keys a record of a bulk notarization may have: the keyword arguments of a single
notarization."""

LICENSE_TRANSITIONS = ("suspend", "resume", "revoke", "expire")
"""Status changes a department may make, each with a reason code."""

_T = TypeVar("_T")


# -- request authentication ------------------------------------------------------------------


def request_sign_bytes(
    *, method: str, path: str, client_id: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """The bytes a client signs for one request: the prefix, then the upper-case method,
    ``path`` (percent-decoded, with ``?`` and the query string as sent, if any), the client
    id, the timestamp, the nonce and the hex SM3 of the body, joined by newlines, as UTF-8."""
    return request_sign_bytes_for_digest(
        method=method,
        path=path,
        client_id=client_id,
        timestamp=timestamp,
        nonce=nonce,
        body_sm3=sm3(body).hex(),
    )


def request_sign_bytes_for_digest(
    *, method: str, path: str, client_id: str, timestamp: str, nonce: str, body_sm3: str
) -> bytes:
    """:func:`request_sign_bytes` of a body known by its hex SM3 (a body streamed from a
    file, hashed as it is read, never held whole)."""
    lines = [method.upper(), path, client_id, timestamp, nonce, body_sm3]
    return REQUEST_SIGN_PREFIX + "\n".join(lines).encode("utf-8")


def signed_path(path: str) -> str:
    """The path as the registry checks it: percent-escapes of the path decoded (as UTF-8),
    the query string, if any, kept as it is sent. ``/v1/licenses/%E8%AF%81`` and
    ``/v1/licenses/证`` both sign as ``/v1/licenses/证``."""
    route, mark, query = path.partition("?")
    return unquote(route) + mark + query


def new_request_nonce() -> str:
    """A fresh request nonce: 32 URL-safe characters from the CSPRNG."""
    return secrets.token_urlsafe(24)


def signed_headers(
    key: PrivateKey,
    *,
    client_id: str,
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
    nonce: str | None = None,
    body_sm3: str | None = None,
) -> dict[str, str]:
    """The authentication headers of one request to ``path`` (as sent: percent-encoded or
    not, with its query), signed by ``key`` over :func:`signed_path` of it. A body streamed
    from a file is signed by its hex SM3 ``body_sm3`` (``body`` is then ignored)."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = new_request_nonce() if nonce is None else nonce
    message = request_sign_bytes_for_digest(
        method=method,
        path=signed_path(path),
        client_id=client_id,
        timestamp=timestamp,
        nonce=nonce,
        body_sm3=sm3(body).hex() if body_sm3 is None else body_sm3,
    )
    return {
        CLIENT_HEADER: client_id,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: base64.b64encode(key.sign(message)).decode("ascii"),
    }


# -- requests and calls ----------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryRequest:
    """One request as built once: every attempt sends these bytes, signed anew."""

    method: str
    """HTTP method."""
    path: str
    """Path with its query, as signed."""
    body: bytes
    """The body (compact JSON, or empty)."""
    headers: Mapping[str, str]
    """Headers other than the authentication ones (content type, idempotency key)."""


@dataclass(frozen=True)
class Call(Generic[_T]):
    """A request and how the JSON of its successful answer becomes a typed result."""

    request: RegistryRequest
    """What to send."""
    parse: Callable[[Any], _T]
    """Decoded JSON of a 2xx answer → result."""


def json_request(
    method: str, path: str, payload: Any = None, *, idempotency_key: str | None = None
) -> RegistryRequest:
    """A request with ``payload`` as compact JSON (no body if None), carrying
    ``idempotency_key`` if given."""
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    headers: dict[str, str] = {}
    if idempotency_key is not None:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    if payload is not None:
        headers["Content-Type"] = "application/json"
    return RegistryRequest(method, path, body, headers)


def new_idempotency_key(given: str | None) -> str:
    """``given``, or a fresh random key."""
    return given or str(uuid.uuid4())


def document_body(
    digest: bytes | str | None, document: bytes | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """``extra`` with exactly one of the hex ``digest`` or the base64 ``document``; raises
    ValueError unless exactly one is given."""
    if (digest is None) == (document is None):
        raise ValueError("give exactly one of digest and document")
    body: dict[str, Any] = dict(extra)
    if document is not None:
        body["document"] = base64.b64encode(document).decode("ascii")
    else:
        body["digest"] = digest.hex() if isinstance(digest, bytes) else digest
    return body


def record_body(
    digest: bytes | str | None = None,
    document: bytes | None = None,
    metadata: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of one record to notarize, as ``POST /v1/records`` takes it and as
    each item of a bulk notarization."""
    extra: dict[str, Any] = {"metadata": dict(metadata or {})}
    if fields:
        extra["fields"] = dict(fields)
    return document_body(digest, document, extra)


def notarize_call(
    *,
    digest: bytes | str | None,
    document: bytes | None,
    metadata: Mapping[str, Any] | None,
    fields: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Call[NotarizeResult]:
    """``POST /v1/records`` for one record."""
    body = record_body(digest, document, metadata, fields)
    key = new_idempotency_key(idempotency_key)
    request = json_request("POST", "/v1/records", body, idempotency_key=key)
    return Call(request, NotarizeResult.from_json)


def bulk_record_body(record: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of one item of a bulk notarization, given as the keyword arguments
    of a single notarization; raises ValueError for other keys."""
    unknown = sorted(set(record) - RECORD_ARGUMENTS)
    if unknown:
        raise ValueError(f"unknown record keys {unknown}: use {sorted(RECORD_ARGUMENTS)}")
    return record_body(**record)


def notarize_many_call(
    records: Sequence[Mapping[str, Any]], *, idempotency_key: str | None
) -> Call[list[NotarizeResult]]:
    """``POST /v1/records/bulk`` for 1 to :data:`MAX_BULK_RECORDS` records; raises
    ValueError for another number of records or a malformed one."""
    if not 1 <= len(records) <= MAX_BULK_RECORDS:
        raise ValueError(f"give 1 to {MAX_BULK_RECORDS} records, not {len(records)}")
    items = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"record {index} is a {type(record).__name__}, not a mapping")
        try:
            items.append(bulk_record_body(record))
        except ValueError as exc:
            raise ValueError(f"record {index}: {exc}") from exc
    key = new_idempotency_key(idempotency_key)
    request = json_request("POST", "/v1/records/bulk", {"records": items}, idempotency_key=key)
    return Call(request, _accepted_list)


def get_record_call(record_id: str) -> Call[RecordResult]:
    """``GET /v1/records/{id}``."""
    path = f"/v1/records/{quote(record_id, safe='')}"
    return Call(json_request("GET", path), RecordResult.from_json)


def verify_call(
    *, digest: bytes | str | None, document: bytes | None, record_id: str | None
) -> Call[Verification]:
    """``POST /v1/verify`` for a document or digest (of the given record, if any)."""
    extra = {} if record_id is None else {"record_id": record_id}
    body = document_body(digest, document, extra)
    return Call(json_request("POST", "/v1/verify", body), Verification.from_json)


def license_path(identifier: str, suffix: str = "") -> str:
    """The path of a license, or of one of its actions (``suffix``)."""
    # Identifiers are 0-9, A-Z and dots; quoting keeps any other text one path segment.
    return f"/v1/licenses/{quote(identifier, safe='.')}{suffix}"


def json_ready(value: Any) -> Any:
    """Dates as ISO text, mappings and sequences walked, so metadata built with
    ``datetime.date`` values can be sent as JSON."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def _license_write(
    path: str, payload: Mapping[str, Any], idempotency_key: str | None
) -> Call[LicenseResult]:
    key = new_idempotency_key(idempotency_key)
    request = json_request("POST", path, json_ready(payload), idempotency_key=key)
    return Call(request, LicenseResult.from_json)


def create_license_call(
    metadata: Mapping[str, Any], idempotency_key: str | None
) -> Call[LicenseResult]:
    """``POST /v1/licenses`` with GB/T 36903 ``metadata``."""
    return _license_write("/v1/licenses", metadata, idempotency_key)


def change_license_call(
    identifier: str, metadata: Mapping[str, Any], reason: int, idempotency_key: str | None
) -> Call[LicenseResult]:
    """``POST /v1/licenses/{id}/change``: a new version with ``metadata``."""
    payload = {"license": metadata, "reason": int(reason)}
    return _license_write(license_path(identifier, "/change"), payload, idempotency_key)


def license_status_call(identifier: str) -> Call[LicenseResult]:
    """``GET /v1/licenses/{id}``."""
    return Call(json_request("GET", license_path(identifier)), LicenseResult.from_json)


def license_token_call(identifier: str, lifetime_seconds: int) -> Call[LicenseToken]:
    """``POST /v1/licenses/{id}/token``."""
    payload = {"lifetime_seconds": lifetime_seconds}
    request = json_request("POST", license_path(identifier, "/token"), payload)
    return Call(request, LicenseToken.from_json)


def license_bundle_call(identifier: str) -> Call[LicenseBundle]:
    """``GET /v1/licenses/{id}/bundle``."""
    request = json_request("GET", license_path(identifier, "/bundle"))
    return Call(request, LicenseBundle.from_json)


def _accepted_list(value: Mapping[str, Any]) -> list[NotarizeResult]:
    return [NotarizeResult.from_json(item) for item in value["records"]]


# -- attempts and answers --------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One try of a call: wait ``delay`` seconds, then send the request with ``headers``."""

    delay: float
    """Seconds to wait before sending (0 for the first try)."""
    request: RegistryRequest
    """The call's fixed request."""
    headers: Mapping[str, str]
    """Every header to send: the request's own and this try's authentication headers."""


@dataclass(frozen=True)
class Answer:
    """What the registry answered, as plain values."""

    status_code: int
    """HTTP status."""
    reason: str
    """HTTP reason phrase."""
    body: bytes
    """The body."""


def registry_error(answer: Answer) -> RegistryError:
    """The typed error of a 4xx or 5xx answer: the code and message of its JSON error body,
    or ``http_error`` and the reason phrase when it has none."""
    code, message = "http_error", answer.reason
    try:
        error = json.loads(answer.body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    return RegistryError(answer.status_code, code, message)


class Exchange(Generic[_T]):
    """One call through its attempts: at most ``retries`` more after the first, with
    exponential backoff, after a transport failure or a 502/503/504. Every attempt is
    signed anew (fresh nonce and timestamp) over the same request bytes."""

    def __init__(
        self,
        call: Call[_T],
        *,
        client_id: str,
        key: PrivateKey,
        retries: int,
        backoff: float,
    ) -> None:
        self.call = call
        self.client_id = client_id
        self.retries = retries
        self.backoff = backoff
        self._key = key
        self._attempts = 0
        self._settled: Answer | None = None
        self._last_failure: Exception | None = None

    def next_attempt(self, now: float | None = None) -> Attempt | None:
        """The next try to make, signed at ``now`` (Unix seconds, default the clock); None
        once an answer settled the call or no retries are left."""
        if self._settled is not None or self._attempts > self.retries:
            return None
        delay = 0.0 if self._attempts == 0 else self.backoff * 2 ** (self._attempts - 1)
        self._attempts += 1
        request = self.call.request
        headers = dict(request.headers)
        headers.update(
            signed_headers(
                self._key,
                client_id=self.client_id,
                method=request.method,
                path=request.path,
                body=request.body,
                now=now,
            )
        )
        return Attempt(delay, request, headers)

    def receive(self, outcome: Answer | Exception) -> None:
        """Take what the last attempt brought: an answer, or the exception of a transport
        failure. Failures and 502/503/504 leave the call open for a retry."""
        if isinstance(outcome, Exception):
            self._last_failure = outcome
        elif outcome.status_code in RETRY_STATUSES:
            text = outcome.body.decode("utf-8", errors="replace")
            self._last_failure = RegistryError(outcome.status_code, "unavailable", text)
        else:
            self._settled = outcome

    def result(self) -> _T:
        """The typed result of the settling answer. Raises RegistryError for an error
        answer, RegistryUnavailable when every attempt failed or was answered 502/503/504."""
        answer = self._settled
        if answer is None:
            raise RegistryUnavailable(
                503, "unavailable", f"registry unreachable: {self._last_failure}"
            )
        if answer.status_code >= 400:
            raise registry_error(answer)
        try:
            return self.call.parse(json.loads(answer.body))
        except SdkError:
            raise
        except ANSWER_FAULTS as exc:
            request = self.call.request
            raise MalformedAnswer(
                f"{request.method} {request.path} answered {answer.status_code} with a body"
                f" that is not its answer ({type(exc).__name__}: {exc})"
            ) from exc


# -- polling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorWait:
    """Polling a record until it is anchored with its bundle, up to a deadline."""

    record_id: str
    """The record polled."""
    timeout: float
    """Seconds allowed."""
    deadline: float
    """Monotonic clock reading after which polling gives up."""

    @classmethod
    def starting(cls, record_id: str, *, timeout: float, now: float) -> AnchorWait:
        """A wait of ``timeout`` seconds from ``now`` (monotonic clock)."""
        return cls(record_id, timeout, now + timeout)

    def done(self, record: RecordResult, now: float) -> bool:
        """Whether ``record`` is anchored with a bundle; raises TimeoutError when it is not
        and the deadline has passed at ``now``."""
        if record.status == "anchored" and record.bundle is not None:
            return True
        if now >= self.deadline:
            raise TimeoutError(f"record {self.record_id} not anchored within {self.timeout} s")
        return False
