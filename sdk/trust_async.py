"""The trust client on ``httpx.AsyncClient``: the same calls as :class:`sdk.trust.TrustClient`
(import it from :mod:`sdk.trust`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
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
from sdk.trust_base import _T, _answer, _TrustClientBase
from sdk.trust_core import (
    AnchorWait,
    Answer,
    Attempt,
    Call,
    get_record_call,
    license_bundle_call,
    license_status_call,
    license_token_call,
    verify_call,
)
from sdk.trust_types import (
    DepartmentRecords,
    LicenseResult,
    LicenseToken,
    NotarizeResult,
    RecordResult,
    Verification,
)


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
        chain_id: int | None = None,
    ) -> None:
        """As :class:`TrustClient`."""
        super().__init__(
            base_url, client_id, private_key, retries=retries, backoff=backoff, chain_id=chain_id
        )
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

    async def _run(self, call: Call[_T]) -> _T:
        exchange = self._exchange(call)
        while (attempt := exchange.next_attempt()) is not None:
            exchange.receive(await self._send(attempt))
        return exchange.result()

    async def _send(self, attempt: Attempt) -> Answer | httpx.TransportError:
        if attempt.delay:
            await asyncio.sleep(attempt.delay)
        request = attempt.request
        try:
            response = await self._http.request(
                request.method, request.path, content=request.body, headers=attempt.headers
            )
        except httpx.TransportError as exc:
            return exc
        return _answer(response)

    async def _send_streamed(
        self, attempt: Attempt, body: StreamedBody, progress: Progress | None = None
    ) -> Answer | httpx.TransportError:
        """Send ``attempt`` of a :mod:`sdk.streamed_upload` request, its body read from disk
        on a worker thread block by block."""
        if attempt.delay:
            await asyncio.sleep(attempt.delay)

        async def blocks() -> AsyncIterator[bytes]:
            source = body.blocks(progress)
            while (block := await asyncio.to_thread(next, source, None)) is not None:
                yield block

        request = attempt.request
        try:
            response = await self._http.request(
                request.method, request.path, content=blocks(), headers=attempt.headers
            )
        except httpx.TransportError as exc:
            return exc
        return _answer(response)

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
        check_record_arguments(digest, document)
        return await self._run(
            signed_notarize_call(
                self._key,
                await self._signing_chain_id(),
                digest=digest,
                document=document,
                metadata=metadata,
                fields=fields,
                idempotency_key=idempotency_key,
            )
        )

    async def _signing_chain_id(self) -> int:
        if self.chain_id is None:
            self.chain_id = await self._run(chain_id_call())
        return self.chain_id

    async def notarize_many(
        self, records: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[NotarizeResult]:
        """As :meth:`TrustClient.notarize_many`."""
        return await self._run(
            signed_notarize_many_call(
                self._key, await self._signing_chain_id(), records, idempotency_key=idempotency_key
            )
        )

    async def get_record(self, record_id: str) -> RecordResult:
        """As :meth:`TrustClient.get_record`."""
        return await self._run(get_record_call(record_id))

    async def revoke_record(
        self,
        record_id: str,
        *,
        reason: int = Reason.UNSPECIFIED,
        idempotency_key: str | None = None,
    ) -> RecordResult:
        """As :meth:`TrustClient.revoke_record`."""
        return await self._run(revoke_record_call(record_id, int(reason), idempotency_key))

    async def revoke_signed_by(
        self,
        *,
        department_key: bytes | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        reason: int = Reason.KEY_COMPROMISE,
    ) -> int:
        """As :meth:`TrustClient.revoke_signed_by`."""
        return await self._run(
            revoke_signed_by_call(
                department_key=department_key, since=since, until=until, reason=int(reason)
            )
        )

    async def department_records(
        self, uscc: str, *, after: int = 0, limit: int = 100
    ) -> DepartmentRecords:
        """As :meth:`TrustClient.department_records`."""
        return await self._run(department_records_call(uscc, after=after, limit=limit))

    async def wait_until_anchored(
        self, record_id: str, *, timeout: float = 30.0, poll_interval: float = 0.2
    ) -> RecordResult:
        """As :meth:`TrustClient.wait_until_anchored`."""
        wait = AnchorWait.starting(record_id, timeout=timeout, now=time.monotonic())
        record = await self.get_record(record_id)
        while not wait.done(record, time.monotonic()):
            await asyncio.sleep(poll_interval)
            record = await self.get_record(record_id)
        return record

    async def verify(
        self,
        *,
        digest: bytes | str | None = None,
        document: bytes | None = None,
        record_id: str | None = None,
    ) -> Verification:
        """As :meth:`TrustClient.verify`."""
        return await self._run(verify_call(digest=digest, document=document, record_id=record_id))

    async def issue_license(
        self, metadata: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> LicenseResult:
        """As :meth:`TrustClient.issue_license`."""
        signing = await self.license_signing()
        return await self._run(
            signed_issue_license_call(self._key, signing, metadata, idempotency_key)
        )

    async def license_signing(self) -> LicenseSigning:
        """As :meth:`TrustClient.license_signing`."""
        if self._license_signing is None:
            self._license_signing = await self._run(license_signing_call())
        return self._license_signing

    async def department_licenses(
        self, uscc: str, *, after: str = "", limit: int = 100
    ) -> DepartmentLicenses:
        """As :meth:`TrustClient.department_licenses`."""
        return await self._run(department_licenses_call(uscc, after=after, limit=limit))

    async def change_license(
        self,
        identifier: str,
        metadata: Mapping[str, Any],
        *,
        reason: int = Reason.DATA_CHANGED,
        idempotency_key: str | None = None,
    ) -> LicenseResult:
        """As :meth:`TrustClient.change_license`."""
        signing = await self.license_signing()
        return await self._run(
            signed_change_license_call(
                self._key, signing, identifier, metadata, reason, idempotency_key
            )
        )

    async def _transition(
        self, identifier: str, action: str, reason: int, idempotency_key: str | None
    ) -> LicenseResult:
        """As :meth:`TrustClient._transition`."""
        sequence = status_sequence(await self.license_status(identifier))
        signing = await self.license_signing()
        call = signed_transition_call(
            self._key, signing, identifier, action, reason, sequence, idempotency_key
        )
        return await self._run(call)

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
        return await self._run(license_status_call(identifier))

    async def license_token(self, identifier: str, *, lifetime_seconds: int = 300) -> LicenseToken:
        """As :meth:`TrustClient.license_token`."""
        return await self._run(license_token_call(identifier, lifetime_seconds))

    async def license_bundle(self, identifier: str) -> LicenseBundle:
        """As :meth:`TrustClient.license_bundle`."""
        return await self._run(license_bundle_call(identifier))
