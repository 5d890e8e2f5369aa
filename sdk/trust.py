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

This module is the public import place. The clients here only do the I/O (send, wait
between attempts); what each call sends, the signing of every attempt, the decision to
retry and the mapping of answers to results and errors are in :mod:`sdk.trust_core`, the
result and error types in :mod:`sdk.trust_types`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from chain.crypto import PrivateKey
from contracts.trust import Reason
from sdk.account import Sm2Account
from sdk.bundle import LicenseBundle
from sdk.license_calls import (
    DepartmentLicenses,
    LicenseSigning,
    department_licenses_call,
    license_signing_call,
    signed_change_license_call,
    signed_issue_license_call,
    signed_transition_call,
    status_sequence,
)
from sdk.record_calls import (
    chain_id_call,
    check_record_arguments,
    department_records_call,
    revoke_record_call,
    revoke_signed_by_call,
    signed_notarize_call,
    signed_notarize_many_call,
)
from sdk.streamed_upload import Progress, StreamedBody
from sdk.trust_async import AsyncTrustClient
from sdk.trust_base import _T, _answer, _TrustClientBase
from sdk.trust_core import (
    CLIENT_HEADER,
    IDEMPOTENCY_HEADER,
    LICENSE_TRANSITIONS,
    MAX_BULK_RECORDS,
    NONCE_HEADER,
    REQUEST_SIGN_PREFIX,
    RETRY_STATUSES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AnchorWait,
    Answer,
    Attempt,
    Call,
    get_record_call,
    license_bundle_call,
    license_status_call,
    license_token_call,
    new_request_nonce,
    request_sign_bytes,
    signed_headers,
    verify_call,
)
from sdk.trust_types import (
    DepartmentRecords,
    LicenseChainStatus,
    LicenseHistoryEntry,
    LicenseOperationResult,
    LicenseResult,
    LicenseToken,
    MalformedAnswer,
    NotarizeResult,
    RecordResult,
    RegistryError,
    RegistryUnavailable,
    Verdict,
    VerdictDetail,
    Verification,
)

__all__ = [
    "CLIENT_HEADER",
    "IDEMPOTENCY_HEADER",
    "LICENSE_TRANSITIONS",
    "MAX_BULK_RECORDS",
    "NONCE_HEADER",
    "REQUEST_SIGN_PREFIX",
    "RETRY_STATUSES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AsyncTrustClient",
    "DepartmentRecords",
    "LicenseChainStatus",
    "LicenseHistoryEntry",
    "LicenseOperationResult",
    "LicenseResult",
    "LicenseToken",
    "MalformedAnswer",
    "NotarizeResult",
    "RecordResult",
    "RegistryError",
    "RegistryUnavailable",
    "TrustClient",
    "Verdict",
    "VerdictDetail",
    "Verification",
    "new_request_nonce",
    "request_sign_bytes",
    "signed_headers",
]


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
        chain_id: int | None = None,
    ) -> None:
        """``private_key``: the key registered for ``client_id`` (it also signs every
        notarized record's commitment); ``retries``: extra attempts after a transport
        failure or a 502/503/504; ``transport``: an httpx transport; ``http_client``: a
        ready client to use instead (e.g. an in-process test client), closed by
        :meth:`close`; ``chain_id``: the chain records are signed for (asked of the
        registry once if not given)."""
        super().__init__(
            base_url, client_id, private_key, retries=retries, backoff=backoff, chain_id=chain_id
        )
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

    def _run(self, call: Call[_T]) -> _T:
        exchange = self._exchange(call)
        while (attempt := exchange.next_attempt()) is not None:
            exchange.receive(self._send(attempt))
        return exchange.result()

    def _send(self, attempt: Attempt) -> Answer | httpx.TransportError:
        if attempt.delay:
            time.sleep(attempt.delay)
        request = attempt.request
        try:
            response = self._http.request(
                request.method, request.path, content=request.body, headers=attempt.headers
            )
        except httpx.TransportError as exc:
            return exc
        return _answer(response)

    def _send_streamed(
        self, attempt: Attempt, body: StreamedBody, progress: Progress | None = None
    ) -> Answer | httpx.TransportError:
        """Send ``attempt`` of a :mod:`sdk.streamed_upload` request, its body read from disk."""
        if attempt.delay:
            time.sleep(attempt.delay)
        request = attempt.request
        try:
            response = self._http.request(
                request.method, request.path, content=body.blocks(progress), headers=attempt.headers
            )
        except httpx.TransportError as exc:
            return exc
        return _answer(response)

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
        salted hashes. The metadata hash is salted too, and the department signs the
        record's commitment with its key (:mod:`sdk.record_signing`); the result carries the
        salts — keep them to disclose later (:func:`sdk.disclosure.disclose`). Retries
        reuse one idempotency key (a new one is drawn unless given), and the same key gives
        the same salts. Raises RegistryError (409 ``idempotency_conflict`` for a key reused
        with another body)."""
        check_record_arguments(digest, document)
        return self._run(
            signed_notarize_call(
                self._key,
                self._signing_chain_id(),
                digest=digest,
                document=document,
                metadata=metadata,
                fields=fields,
                idempotency_key=idempotency_key,
            )
        )

    def _signing_chain_id(self) -> int:
        if self.chain_id is None:
            self.chain_id = self._run(chain_id_call())
        return self.chain_id

    def notarize_many(
        self, records: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[NotarizeResult]:
        """Notarize 1 to :data:`MAX_BULK_RECORDS` (1,000) records in one request, each a
        mapping of :meth:`notarize`'s keyword arguments (``digest`` or ``document``, and
        ``metadata``, ``fields``); the results come in the order of ``records``. The
        registry stores all of them or none. Retries reuse one idempotency key (a new one is
        drawn unless given). Raises ValueError for no records or more than the limit (split
        larger sets yourself), RegistryError as :meth:`notarize` (and 413 for a body over
        the registry's size limit)."""
        return self._run(
            signed_notarize_many_call(
                self._key, self._signing_chain_id(), records, idempotency_key=idempotency_key
            )
        )

    def get_record(self, record_id: str) -> RecordResult:
        """The record with its status, history, and its proof bundle once anchored."""
        return self._run(get_record_call(record_id))

    def revoke_record(
        self,
        record_id: str,
        *,
        reason: int = Reason.UNSPECIFIED,
        idempotency_key: str | None = None,
    ) -> RecordResult:
        """Revoke a record this department notarized (a leaf revocation on the Notary,
        through the registry's outbox); returns the record with its history. Raises
        RegistryError (403 for another department's record, 409 if it is not anchored
        yet or revoked already)."""
        return self._run(revoke_record_call(record_id, int(reason), idempotency_key))

    def revoke_signed_by(
        self,
        *,
        department_key: bytes | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        reason: int = Reason.KEY_COMPROMISE,
    ) -> int:
        """Revoke every anchored record of this department signed with ``department_key``
        (any of its keys if None) and notarized in [``since``, ``until``) — for a key
        compromise. Returns how many revocations were queued; each goes on chain through
        the registry's outbox, and each record's status shows it."""
        return self._run(
            revoke_signed_by_call(
                department_key=department_key, since=since, until=until, reason=int(reason)
            )
        )

    def department_records(
        self, uscc: str, *, after: int = 0, limit: int = 100
    ) -> DepartmentRecords:
        """One page of the records department ``uscc`` signed, oldest first (an auditor's
        listing); pass ``next_after`` back as ``after`` for the next page."""
        return self._run(department_records_call(uscc, after=after, limit=limit))

    def wait_until_anchored(
        self, record_id: str, *, timeout: float = 30.0, poll_interval: float = 0.2
    ) -> RecordResult:
        """Poll :meth:`get_record` until the record is anchored with a bundle; raises
        TimeoutError after ``timeout`` seconds."""
        wait = AnchorWait.starting(record_id, timeout=timeout, now=time.monotonic())
        record = self.get_record(record_id)
        while not wait.done(record, time.monotonic()):
            time.sleep(poll_interval)
            record = self.get_record(record_id)
        return record

    def verify(
        self,
        *,
        digest: bytes | str | None = None,
        document: bytes | None = None,
        record_id: str | None = None,
    ) -> Verification:
        """Ask the registry for the verdicts on a document or digest."""
        return self._run(verify_call(digest=digest, document=document, record_id=record_id))

    def issue_license(
        self, metadata: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> LicenseResult:
        """Issue an e-license with GB/T 36903 ``metadata`` (identifier, license_name,
        holder_name, holder_id_type, holder_id, issuer_name, issue_date, valid_from,
        valid_until, license_number, content; dates as ``datetime.date`` or ISO text).
        The department salts the license and signs its commitment with its key
        (:mod:`sdk.license_signing`); the issuance bundle carries that signature. Retries
        reuse one idempotency key, so a lost answer never issues twice, and the same key
        gives the same salt. Raises RegistryError: 422 ``invalid_license_identifier`` /
        ``invalid_uscc`` / ``invalid_resident_id``, 409 ``license_exists``, 403
        ``wrong_department``."""
        return self._run(
            signed_issue_license_call(self._key, self.license_signing(), metadata, idempotency_key)
        )

    def license_signing(self) -> LicenseSigning:
        """What this department signs its licenses for: the chain id and its registered
        name (asked of the registry once)."""
        if self._license_signing is None:
            self._license_signing = self._run(license_signing_call())
        return self._license_signing

    def department_licenses(
        self, uscc: str, *, after: str = "", limit: int = 100
    ) -> DepartmentLicenses:
        """One page of the licenses department ``uscc`` signed, by identifier (an auditor's
        listing); pass ``next_after`` back as ``after`` for the next page."""
        return self._run(department_licenses_call(uscc, after=after, limit=limit))

    def change_license(
        self,
        identifier: str,
        metadata: Mapping[str, Any],
        *,
        reason: int = Reason.DATA_CHANGED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """Replace the license by a new version (``metadata`` with a new identifier),
        signed by the department as its successor; returns the new version."""
        return self._run(
            signed_change_license_call(
                self._key, self.license_signing(), identifier, metadata, reason, idempotency_key
            )
        )

    def _transition(
        self, identifier: str, action: str, reason: int, idempotency_key: str | None
    ) -> LicenseResult:
        """The status change ``action``, signed by the department over the license, the
        action, the reason and the history position it takes (read from the registry
        first; :mod:`sdk.license_status_signing`). Raises RegistryError: 404
        ``license_not_found``, 403 ``wrong_department``, 409 ``invalid_transition`` or
        ``stale_status_sequence`` (another change came first)."""
        sequence = status_sequence(self.license_status(identifier))
        call = signed_transition_call(
            self._key,
            self.license_signing(),
            identifier,
            action,
            reason,
            sequence,
            idempotency_key,
        )
        return self._run(call)

    def suspend_license(
        self,
        identifier: str,
        *,
        reason: int = Reason.UNDER_INVESTIGATION,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """Suspend the license, signed by the department (409 ``invalid_transition``
        unless it is in force)."""
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
        return self._run(license_status_call(identifier))

    def license_token(self, identifier: str, *, lifetime_seconds: int = 300) -> LicenseToken:
        """A short-lived signed token for the license's dynamic QR code."""
        return self._run(license_token_call(identifier, lifetime_seconds))

    def license_bundle(self, identifier: str) -> LicenseBundle:
        """The offline proof of the license's issuance (503 until its block is certified;
        see :func:`sdk.bundle.verify_license_bundle`)."""
        return self._run(license_bundle_call(identifier))
