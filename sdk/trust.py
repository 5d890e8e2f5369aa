"""Client of the registry's trust service: notarize records, read them back with their proof
bundles, and verify documents — as a department system does, signing every request with its
SM2 key.

    client = TrustClient("https://registry.example", client_id, Sm2Account.from_pem(pem))
    accepted = client.notarize(document=pdf_bytes, metadata={"title": "..."})
    record = client.wait_until_anchored(accepted.record_id)
    client.verify_bundle(record.bundle, validator_set, chain_id=record.bundle.chain_id)

Request authentication (the registry checks the same bytes): the client signs, with SM2 and
the default signer ID, :func:`request_sign_bytes` — a type prefix, then one line each of the
HTTP method, the path with its query, the client id, the timestamp (Unix seconds), the
nonce, and the hex SM3 digest of the body — and sends the headers :data:`CLIENT_HEADER`,
:data:`TIMESTAMP_HEADER`, :data:`NONCE_HEADER` and :data:`SIGNATURE_HEADER` (base64 of the DER
signature).

Retries send the same ``Idempotency-Key`` with a fresh nonce and timestamp, so a request
whose answer was lost is never notarized twice. :class:`AsyncTrustClient` offers the same
methods on ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import enum
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from chain.commit import ValidatorSet
from chain.crypto import PrivateKey, sm3
from contracts.trust import LicenseStatus, Reason
from sdk.account import Sm2Account
from sdk.bundle import BundleVerdict, LicenseBundle, ProofBundle, verify_bundle
from sdk.errors import SdkError

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

_T = TypeVar("_T")


def request_sign_bytes(
    *, method: str, path: str, client_id: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """The bytes a client signs for one request (``path`` includes the query string)."""
    lines = [method.upper(), path, client_id, timestamp, nonce, sm3(body).hex()]
    return REQUEST_SIGN_PREFIX + "\n".join(lines).encode("utf-8")


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
) -> dict[str, str]:
    """The authentication headers of one request, signed by ``key``."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = new_request_nonce() if nonce is None else nonce
    message = request_sign_bytes(
        method=method, path=path, client_id=client_id, timestamp=timestamp, nonce=nonce, body=body
    )
    return {
        CLIENT_HEADER: client_id,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: base64.b64encode(key.sign(message)).decode("ascii"),
    }


class RegistryError(SdkError):
    """The registry answered with an error: ``status_code`` (HTTP), and the typed error body's
    ``code`` and ``message``."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"registry error {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept answering 502/503/504, through every retry."""


class Verdict(enum.StrEnum):
    """The answer to one question of a verification."""

    VALID = "VALID"
    """The check holds."""
    INVALID = "INVALID"
    """The check fails."""
    UNAVAILABLE = "UNAVAILABLE"
    """The check could not be made now (the chain could not be reached, or the record is
    not anchored yet); never a statement that something is revoked or invalid."""


@dataclass(frozen=True)
class VerdictDetail:
    """One verdict and why."""

    verdict: Verdict
    """The verdict."""
    detail: str
    """A short explanation."""


@dataclass(frozen=True)
class NotarizeResult:
    """What the registry answered to a notarization."""

    record_id: str
    """The record's id."""
    status: str
    """``accepted``, ``sealed`` or ``anchored``."""
    digest: str
    """Hex SM3 digest of the document."""
    field_hashes: Mapping[str, str]
    """Salted hash of each disclosable field."""
    salts: Mapping[str, str]
    """Hex salt of each field: keep them, they are needed to disclose a field later."""


@dataclass(frozen=True)
class RecordResult:
    """A record as the registry reports it."""

    record_id: str
    """The record's id."""
    status: str
    """``accepted``, ``sealed`` or ``anchored``."""
    digest: str
    """Hex SM3 digest of the document."""
    metadata: Mapping[str, Any]
    """The metadata given when it was notarized."""
    batch: Mapping[str, Any] | None
    """Batch root, leaf index, anchoring tx hash and block once sealed."""
    bundle: ProofBundle | None
    """The proof bundle once anchored."""


@dataclass(frozen=True)
class Verification:
    """The registry's separate verdicts on a document or digest."""

    found: bool
    """Whether the registry knows a record with this digest."""
    record_id: str | None
    """The record verified."""
    digest: str
    """Hex SM3 digest verified."""
    integrity: VerdictDetail
    """The digest is that of a registered record, included in its batch."""
    issuance: VerdictDetail
    """The batch was anchored by an authorised issuer (the proof bundle verifies)."""
    status: VerdictDetail
    """The record is in force on chain now (not revoked)."""
    issuer: VerdictDetail
    """The issuing department is registered on chain and its key was valid when anchoring."""
    facts: Mapping[str, Any]
    """Supporting facts: issuer USCC and name, anchoring block, revocation block/reason."""
    bundle: ProofBundle | None
    """The proof bundle, when the record is anchored."""


# -- e-licenses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LicenseHistoryEntry:
    """One recorded state of a license on chain."""

    status: LicenseStatus
    """The state entered."""
    reason: int
    """Reason code (contracts.trust.Reason)."""
    reason_text: str
    """What the code says (English)."""
    block_number: int
    """Block of the change."""
    by: str
    """Account that made it (0x hex)."""


@dataclass(frozen=True)
class LicenseChainStatus:
    """A license's status as the chain reported it when the registry was asked."""

    verdict: Verdict
    """VALID (in force), INVALID (not in force), UNAVAILABLE (chain unreachable: unknown —
    never to be read as revoked)."""
    status: LicenseStatus | None
    """``statusOf`` (None when UNAVAILABLE)."""
    detail: str
    """A short explanation."""
    read_at_block: int | None
    """The block read."""
    history: tuple[LicenseHistoryEntry, ...]
    """Every recorded state, oldest first."""


@dataclass(frozen=True)
class LicenseOperationResult:
    """The LicenseRegistry transaction a write request made."""

    id: int
    """The registry's operation id."""
    action: str
    """issue, change, suspend, resume, revoke or expire."""
    reason: int
    """Reason code."""
    state: str
    """pending, sent, confirmed or reverted."""
    tx_hash: str
    """Hex hash of the transaction."""
    block_number: int | None
    """Block that included it, once confirmed."""
    error: str | None
    """Why it reverted, if it did."""

    @property
    def confirmed(self) -> bool:
        """Whether its receipt (status 1) is in."""
        return self.state == "confirmed"


@dataclass(frozen=True)
class LicenseResult:
    """A license as the registry reports it."""

    identifier: str
    """The GB/T 36904 identifier."""
    id_hash: str
    """Its on-chain key (hex SM3 of the identifier)."""
    department: str
    """USCC of the issuing department."""
    recorded_status: str
    """The status the registry last saw confirmed (pending until the issue is)."""
    metadata: Mapping[str, Any] | None
    """GB/T 36903 metadata (holder data only for the issuing department)."""
    holder_commitment: str
    """Hex salted SM3 commitment to the holder (what the chain stores)."""
    metadata_hash: str
    """Hex salted metadata hash (what the chain stores)."""
    valid_until: int
    """``validUntil`` on chain (seconds since the epoch; 0 for no limit)."""
    predecessor: str | None
    """The version it replaced."""
    successor: str | None
    """The version that replaced it."""
    tx_hash: str | None
    """The transaction that created it on chain."""
    block_number: int | None
    """Its block."""
    anchored_at: str | None
    """Its block's time (ISO 8601)."""
    chain: LicenseChainStatus | None
    """Live status and history (reads only; writes leave it None)."""
    verify_url: str
    """The citizen's verify page."""
    qr_png_url: str
    """Static QR code, PNG."""
    qr_svg_url: str
    """Static QR code, SVG."""
    operation: LicenseOperationResult | None
    """For a write: the transaction it made."""


@dataclass(frozen=True)
class LicenseToken:
    """A short-lived signed token for a license's dynamic QR code."""

    token: str
    """The token (base64url)."""
    url: str
    """Its verify page."""
    expires_at: str
    """When it stops being accepted (ISO 8601)."""
    qr_svg: str
    """QR code of ``url`` (SVG)."""
    qr_png: bytes
    """QR code of ``url`` (PNG)."""


def _license_status(value: str | None) -> LicenseStatus | None:
    return None if value is None else LicenseStatus[value.upper()]


def _license_result(value: Mapping[str, Any]) -> LicenseResult:
    chain = value.get("chain")
    operation = value.get("operation")
    return LicenseResult(
        identifier=value["identifier"],
        id_hash=value["id_hash"],
        department=value["department"],
        recorded_status=value["recorded_status"],
        metadata=value.get("metadata"),
        holder_commitment=value["holder_commitment"],
        metadata_hash=value["metadata_hash"],
        valid_until=int(value["valid_until"]),
        predecessor=value.get("predecessor"),
        successor=value.get("successor"),
        tx_hash=value.get("tx_hash"),
        block_number=value.get("block_number"),
        anchored_at=value.get("anchored_at"),
        chain=None
        if chain is None
        else LicenseChainStatus(
            verdict=Verdict(chain["verdict"]),
            status=_license_status(chain.get("status")),
            detail=str(chain.get("detail", "")),
            read_at_block=chain.get("read_at_block"),
            history=tuple(
                LicenseHistoryEntry(
                    status=LicenseStatus[entry["status"].upper()],
                    reason=int(entry["reason"]),
                    reason_text=str(entry.get("reason_text", "")),
                    block_number=int(entry["block_number"]),
                    by=str(entry["by"]),
                )
                for entry in chain.get("history", ())
            ),
        ),
        verify_url=value["verify_url"],
        qr_png_url=value["qr_png_url"],
        qr_svg_url=value["qr_svg_url"],
        operation=None if operation is None else LicenseOperationResult(**operation),
    )


def _license_token(value: Mapping[str, Any]) -> LicenseToken:
    return LicenseToken(
        token=value["token"],
        url=value["url"],
        expires_at=value["expires_at"],
        qr_svg=value["qr_svg"],
        qr_png=base64.b64decode(value["qr_png_base64"]),
    )


def _json_ready(value: Any) -> Any:
    """Dates as ISO text, mappings and sequences walked, so metadata built with
    ``datetime.date`` values can be sent as JSON."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def _license_path(identifier: str, suffix: str = "") -> str:
    # Identifiers are 0-9, A-Z and dots; quoting keeps any other text one path segment.
    return f"/v1/licenses/{quote(identifier, safe='.')}{suffix}"


LICENSE_TRANSITIONS = ("suspend", "resume", "revoke", "expire")
"""Status changes a department may make, each with a reason code."""


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    code, message = "http_error", response.reason_phrase
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    raise RegistryError(response.status_code, code, message)


def _bundle(value: Any) -> ProofBundle | None:
    return None if value is None else ProofBundle.from_json(value)


def _verdict(value: Mapping[str, Any]) -> VerdictDetail:
    return VerdictDetail(Verdict(value["verdict"]), str(value.get("detail", "")))


def _notarize_result(value: Mapping[str, Any]) -> NotarizeResult:
    return NotarizeResult(
        record_id=value["id"],
        status=value["status"],
        digest=value["digest"],
        field_hashes=dict(value.get("field_hashes") or {}),
        salts=dict(value.get("salts") or {}),
    )


def _record_result(value: Mapping[str, Any]) -> RecordResult:
    return RecordResult(
        record_id=value["id"],
        status=value["status"],
        digest=value["digest"],
        metadata=dict(value.get("metadata") or {}),
        batch=value.get("batch"),
        bundle=_bundle(value.get("bundle")),
    )


def _verification(value: Mapping[str, Any]) -> Verification:
    return Verification(
        found=bool(value["found"]),
        record_id=value.get("record_id"),
        digest=value["digest"],
        integrity=_verdict(value["integrity"]),
        issuance=_verdict(value["issuance"]),
        status=_verdict(value["status"]),
        issuer=_verdict(value["issuer"]),
        facts=dict(value.get("facts") or {}),
        bundle=_bundle(value.get("bundle")),
    )


def _document_body(
    digest: bytes | str | None, document: bytes | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    if (digest is None) == (document is None):
        raise ValueError("give exactly one of digest and document")
    body: dict[str, Any] = dict(extra)
    if document is not None:
        body["document"] = base64.b64encode(document).decode("ascii")
    else:
        body["digest"] = digest.hex() if isinstance(digest, bytes) else digest
    return body


@dataclass(frozen=True)
class _Request:
    """One prepared request: signing happens per attempt, the rest stays fixed."""

    method: str
    path: str
    body: bytes
    headers: Mapping[str, str]


class _TrustClientBase:
    """What the sync and async clients share: keys, paths, request bodies, retries policy."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        private_key: PrivateKey | Sm2Account,
        *,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._key = private_key.private_key if isinstance(private_key, Sm2Account) else private_key
        self.retries = retries
        self.backoff = backoff

    def _prepare(
        self, method: str, path: str, payload: Any = None, headers: Mapping[str, str] = {}
    ) -> _Request:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        extra = dict(headers)
        if payload is not None:
            extra["Content-Type"] = "application/json"
        return _Request(method, path, body, extra)

    def _attempt_headers(self, request: _Request) -> dict[str, str]:
        headers = dict(request.headers)
        headers.update(
            signed_headers(
                self._key,
                client_id=self.client_id,
                method=request.method,
                path=request.path,
                body=request.body,
            )
        )
        return headers

    def _notarize_request(
        self,
        digest: bytes | str | None,
        document: bytes | None,
        metadata: Mapping[str, Any] | None,
        fields: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> _Request:
        extra: dict[str, Any] = {"metadata": dict(metadata or {})}
        if fields:
            extra["fields"] = dict(fields)
        key = idempotency_key or str(uuid.uuid4())
        return self._prepare(
            "POST",
            "/v1/records",
            _document_body(digest, document, extra),
            {IDEMPOTENCY_HEADER: key},
        )

    def _verify_request(
        self, digest: bytes | str | None, document: bytes | None, record_id: str | None
    ) -> _Request:
        extra = {} if record_id is None else {"record_id": record_id}
        return self._prepare("POST", "/v1/verify", _document_body(digest, document, extra))

    def _license_write(
        self, path: str, payload: Mapping[str, Any], idempotency_key: str | None
    ) -> _Request:
        key = idempotency_key or str(uuid.uuid4())
        return self._prepare("POST", path, _json_ready(payload), {IDEMPOTENCY_HEADER: key})

    def _issue_request(self, metadata: Mapping[str, Any], idempotency_key: str | None) -> _Request:
        return self._license_write("/v1/licenses", metadata, idempotency_key)

    def _change_request(
        self,
        identifier: str,
        metadata: Mapping[str, Any],
        reason: int,
        idempotency_key: str | None,
    ) -> _Request:
        payload = {"license": metadata, "reason": int(reason)}
        return self._license_write(_license_path(identifier, "/change"), payload, idempotency_key)

    def _transition_request(
        self, identifier: str, action: str, reason: int, idempotency_key: str | None
    ) -> _Request:
        if action not in LICENSE_TRANSITIONS:
            raise ValueError(f"unknown license status change {action!r}")
        path = _license_path(identifier, f"/{action}")
        return self._license_write(path, {"reason": int(reason)}, idempotency_key)

    def _token_request(self, identifier: str, lifetime_seconds: int) -> _Request:
        path = _license_path(identifier, "/token")
        return self._prepare("POST", path, {"lifetime_seconds": lifetime_seconds})

    @staticmethod
    def verify_bundle(
        bundle: ProofBundle,
        validator_set: ValidatorSet,
        *,
        chain_id: int,
        expected_digest: bytes | None = None,
        notary: bytes | None = None,
    ) -> BundleVerdict:
        """Verify ``bundle`` offline against a trusted validator set (see
        :func:`sdk.bundle.verify_bundle`)."""
        return verify_bundle(
            bundle, validator_set, chain_id=chain_id, expected_digest=expected_digest, notary=notary
        )


class TrustClient(_TrustClientBase):
    """Synchronous client of the registry."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        private_key: PrivateKey | Sm2Account,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        """``private_key``: the key registered for ``client_id``; ``retries``: extra
        attempts after a transport failure or a 502/503/504; ``transport``: an httpx
        transport; ``http_client``: a ready client to use instead (e.g. an in-process test
        client), closed by :meth:`close`."""
        super().__init__(base_url, client_id, private_key, retries=retries, backoff=backoff)
        self._http = http_client or httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> TrustClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, request: _Request) -> Any:
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.request(
                    request.method,
                    request.path,
                    content=request.body,
                    headers=self._attempt_headers(request),
                )
            except httpx.TransportError as exc:
                last_error = exc
                continue
            if response.status_code in RETRY_STATUSES:
                last_error = RegistryError(response.status_code, "unavailable", response.text)
                continue
            _raise_for_error(response)
            return response.json()
        raise RegistryUnavailable(503, "unavailable", f"registry unreachable: {last_error}")

    def notarize(
        self,
        *,
        digest: bytes | str | None = None,
        document: bytes | None = None,
        metadata: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> NotarizeResult:
        """Notarize a document (or its SM3 ``digest``) with ``metadata``; ``fields`` become
        salted hashes whose salts come back once. Retries reuse one idempotency key (a new
        one is drawn unless given). Raises RegistryError (409 ``idempotency_conflict`` for a
        key reused with another body)."""
        request = self._notarize_request(digest, document, metadata, fields, idempotency_key)
        return _notarize_result(self._send(request))

    def get_record(self, record_id: str) -> RecordResult:
        """The record with its status, and its proof bundle once anchored."""
        return _record_result(self._send(self._prepare("GET", f"/v1/records/{record_id}")))

    def wait_until_anchored(
        self, record_id: str, *, timeout: float = 30.0, poll_interval: float = 0.2
    ) -> RecordResult:
        """Poll :meth:`get_record` until the record is anchored with a bundle; raises
        TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.get_record(record_id)
            if record.status == "anchored" and record.bundle is not None:
                return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"record {record_id} not anchored within {timeout} s")
            time.sleep(poll_interval)

    def verify(
        self,
        *,
        digest: bytes | str | None = None,
        document: bytes | None = None,
        record_id: str | None = None,
    ) -> Verification:
        """Ask the registry for the verdicts on a document or digest."""
        return _verification(self._send(self._verify_request(digest, document, record_id)))

    def issue_license(
        self, metadata: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> LicenseResult:
        """Issue an e-license with GB/T 36903 ``metadata`` (identifier, license_name,
        holder_name, holder_id_type, holder_id, issuer_name, issue_date, valid_from,
        valid_until, license_number, content; dates as ``datetime.date`` or ISO text).
        Retries reuse one idempotency key, so a lost answer never issues twice. Raises
        RegistryError: 422 ``invalid_license_identifier`` / ``invalid_uscc`` /
        ``invalid_resident_id``, 409 ``license_exists``, 403 ``wrong_department``."""
        return _license_result(self._send(self._issue_request(metadata, idempotency_key)))

    def change_license(
        self,
        identifier: str,
        metadata: Mapping[str, Any],
        *,
        reason: int = Reason.DATA_CHANGED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """Replace the license by a new version (``metadata`` with a new identifier);
        returns the new version."""
        request = self._change_request(identifier, metadata, reason, idempotency_key)
        return _license_result(self._send(request))

    def _transition(
        self, identifier: str, action: str, reason: int, idempotency_key: str | None
    ) -> LicenseResult:
        request = self._transition_request(identifier, action, reason, idempotency_key)
        return _license_result(self._send(request))

    def suspend_license(
        self,
        identifier: str,
        *,
        reason: int = Reason.UNDER_INVESTIGATION,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """Suspend the license (409 ``invalid_transition`` unless it is in force)."""
        return self._transition(identifier, "suspend", reason, idempotency_key)

    def resume_license(
        self,
        identifier: str,
        *,
        reason: int = Reason.RESTORED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """Put a suspended license back in force."""
        return self._transition(identifier, "resume", reason, idempotency_key)

    def revoke_license(
        self, identifier: str, *, reason: int, idempotency_key: str | None = None
    ) -> LicenseResult:
        """Revoke the license for good, with a reason code (contracts.trust.Reason)."""
        return self._transition(identifier, "revoke", reason, idempotency_key)

    def expire_license(
        self,
        identifier: str,
        *,
        reason: int = Reason.TERM_ENDED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """Record that the license is expired."""
        return self._transition(identifier, "expire", reason, idempotency_key)

    def license_status(self, identifier: str) -> LicenseResult:
        """The license with its status and history read from the chain now (its
        ``chain.verdict`` is UNAVAILABLE when the registry cannot reach the chain)."""
        return _license_result(self._send(self._prepare("GET", _license_path(identifier))))

    def license_token(self, identifier: str, *, lifetime_seconds: int = 300) -> LicenseToken:
        """A short-lived signed token for the license's dynamic QR code."""
        return _license_token(self._send(self._token_request(identifier, lifetime_seconds)))

    def license_bundle(self, identifier: str) -> LicenseBundle:
        """The offline proof of the license's issuance (503 until its block is certified;
        see :func:`sdk.bundle.verify_license_bundle`)."""
        value = self._send(self._prepare("GET", _license_path(identifier, "/bundle")))
        return LicenseBundle.from_json(value)


class AsyncTrustClient(_TrustClientBase):
    """The same client on ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        private_key: PrivateKey | Sm2Account,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """As :class:`TrustClient`."""
        super().__init__(base_url, client_id, private_key, retries=retries, backoff=backoff)
        self._http = http_client or httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTrustClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, request: _Request) -> Any:
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = await self._http.request(
                    request.method,
                    request.path,
                    content=request.body,
                    headers=self._attempt_headers(request),
                )
            except httpx.TransportError as exc:
                last_error = exc
                continue
            if response.status_code in RETRY_STATUSES:
                last_error = RegistryError(response.status_code, "unavailable", response.text)
                continue
            _raise_for_error(response)
            return response.json()
        raise RegistryUnavailable(503, "unavailable", f"registry unreachable: {last_error}")

    async def notarize(
        self,
        *,
        digest: bytes | str | None = None,
        document: bytes | None = None,
        metadata: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> NotarizeResult:
        """As :meth:`TrustClient.notarize`."""
        request = self._notarize_request(digest, document, metadata, fields, idempotency_key)
        return _notarize_result(await self._send(request))

    async def get_record(self, record_id: str) -> RecordResult:
        """As :meth:`TrustClient.get_record`."""
        return _record_result(await self._send(self._prepare("GET", f"/v1/records/{record_id}")))

    async def wait_until_anchored(
        self, record_id: str, *, timeout: float = 30.0, poll_interval: float = 0.2
    ) -> RecordResult:
        """As :meth:`TrustClient.wait_until_anchored`."""
        return await _poll(
            lambda: self.get_record(record_id),
            lambda record: record.status == "anchored" and record.bundle is not None,
            timeout=timeout,
            poll_interval=poll_interval,
            what=f"record {record_id} anchored",
        )

    async def verify(
        self,
        *,
        digest: bytes | str | None = None,
        document: bytes | None = None,
        record_id: str | None = None,
    ) -> Verification:
        """As :meth:`TrustClient.verify`."""
        return _verification(await self._send(self._verify_request(digest, document, record_id)))

    async def issue_license(
        self, metadata: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> LicenseResult:
        """As :meth:`TrustClient.issue_license`."""
        return _license_result(await self._send(self._issue_request(metadata, idempotency_key)))

    async def change_license(
        self,
        identifier: str,
        metadata: Mapping[str, Any],
        *,
        reason: int = Reason.DATA_CHANGED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """As :meth:`TrustClient.change_license`."""
        request = self._change_request(identifier, metadata, reason, idempotency_key)
        return _license_result(await self._send(request))

    async def _transition(
        self, identifier: str, action: str, reason: int, idempotency_key: str | None
    ) -> LicenseResult:
        request = self._transition_request(identifier, action, reason, idempotency_key)
        return _license_result(await self._send(request))

    async def suspend_license(
        self,
        identifier: str,
        *,
        reason: int = Reason.UNDER_INVESTIGATION,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """As :meth:`TrustClient.suspend_license`."""
        return await self._transition(identifier, "suspend", reason, idempotency_key)

    async def resume_license(
        self,
        identifier: str,
        *,
        reason: int = Reason.RESTORED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """As :meth:`TrustClient.resume_license`."""
        return await self._transition(identifier, "resume", reason, idempotency_key)

    async def revoke_license(
        self, identifier: str, *, reason: int, idempotency_key: str | None = None
    ) -> LicenseResult:
        """As :meth:`TrustClient.revoke_license`."""
        return await self._transition(identifier, "revoke", reason, idempotency_key)

    async def expire_license(
        self,
        identifier: str,
        *,
        reason: int = Reason.TERM_ENDED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """As :meth:`TrustClient.expire_license`."""
        return await self._transition(identifier, "expire", reason, idempotency_key)

    async def license_status(self, identifier: str) -> LicenseResult:
        """As :meth:`TrustClient.license_status`."""
        return _license_result(await self._send(self._prepare("GET", _license_path(identifier))))

    async def license_token(self, identifier: str, *, lifetime_seconds: int = 300) -> LicenseToken:
        """As :meth:`TrustClient.license_token`."""
        request = self._token_request(identifier, lifetime_seconds)
        return _license_token(await self._send(request))

    async def license_bundle(self, identifier: str) -> LicenseBundle:
        """As :meth:`TrustClient.license_bundle`."""
        value = await self._send(self._prepare("GET", _license_path(identifier, "/bundle")))
        return LicenseBundle.from_json(value)


async def _poll(
    fetch: Callable[[], Awaitable[_T]],
    done: Callable[[_T], bool],
    *,
    timeout: float,
    poll_interval: float,
    what: str,
) -> _T:
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        await asyncio.sleep(poll_interval)
