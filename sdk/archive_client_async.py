"""``AsyncArchiveClient``: :class:`sdk.archive_client.ArchiveClient` on
``httpx.AsyncClient``, the same methods awaited (see that module): each single request is
built by :mod:`sdk.archive_calls` and each method of several requests is the same program
of :mod:`sdk.archive_steps`, whose steps this client awaits."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from sdk.archive_calls import (
    ArchiveHealth,
    AuditState,
    FilePage,
    Package,
    PackageFile,
    StoredVersion,
    Upload,
    audit_call,
    audit_request_call,
    files_call,
    health_call,
    package_call,
    raw_body,
    report_call,
    search_call,
    settle,
)
from sdk.archive_client import (
    AUDIT_POLL_S,
    AUDIT_TIMEOUT_S,
    DOWNLOAD_BLOCK,
    FILES_PAGE,
    ArchiveClient,
    response_answer,
)
from sdk.archive_steps import (
    Clock,
    Fetch,
    Local,
    Pause,
    SendBag,
    SigningChainId,
    Step,
    Steps,
    all_files_steps,
    audit_package_steps,
    audit_wait_steps,
    custody_steps,
    dip_steps,
    disposal_steps,
    ingest_steps,
    migration_steps,
    report_pdf_steps,
    run_steps_async,
    sendable,
)
from sdk.archive_upload import Progress, StreamedBody, upload_exchange
from sdk.trust_async import AsyncTrustClient
from sdk.trust_core import Answer, Attempt, Call, Exchange, RegistryRequest

_T = TypeVar("_T")


class AsyncArchiveClient(AsyncTrustClient):
    """The same client on ``httpx.AsyncClient``: the bag is read and hashed, and the
    upload read from disk, in worker threads, so the event loop never waits on them."""

    async def __aenter__(self) -> AsyncArchiveClient:
        return self

    # -- carrying out requests and steps ---------------------------------------------------

    async def _attempts(
        self, exchange: Exchange[Any], send: Callable[[Attempt], Awaitable[Answer | Exception]]
    ) -> Answer | None:
        last: Answer | None = None
        while (attempt := exchange.next_attempt()) is not None:
            outcome = await send(attempt)
            if isinstance(outcome, Answer):
                last = outcome
            exchange.receive(outcome)
        return last

    async def _settled(
        self, exchange: Exchange[_T], send: Callable[[Attempt], Awaitable[Answer | Exception]]
    ) -> _T:
        result: _T = settle(exchange, await self._attempts(exchange, send))
        return result

    async def _archive(self, call: Call[_T]) -> _T:
        return await self._settled(self._exchange(call), self._send)

    async def _perform(self, steps: Steps[_T]) -> _T:
        return await run_steps_async(steps, self._carry_out)

    async def _carry_out(self, step: Step) -> Any:
        if isinstance(step, Call):
            return await self._archive(step)
        if isinstance(step, Local):
            return await asyncio.to_thread(step.function, *step.arguments)
        if isinstance(step, SigningChainId):
            return await self._signing_chain_id()
        if isinstance(step, SendBag):
            return await self.upload(step.bag, progress=step.progress)
        if isinstance(step, Fetch):
            return await self._fetch(step)
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            return time.monotonic()
        if isinstance(step, Clock):
            return time.monotonic()
        raise TypeError(f"not a step: {step!r}")

    async def _fetch(self, step: Fetch) -> Any:
        if step.target is None:
            exchange = self._exchange(Call(step.request, bytes))
            return raw_body(exchange, await self._attempts(exchange, self._send))
        return await self._download(step.request, step.target)

    async def _download(self, request: RegistryRequest, target: Path) -> Path:
        exchange = self._exchange(Call(request, lambda _value: target))

        async def send(attempt: Attempt) -> Answer | Exception:
            if attempt.delay:
                await asyncio.sleep(attempt.delay)
            try:
                async with self._http.stream(
                    request.method, request.path, content=request.body, headers=attempt.headers
                ) as response:
                    if response.status_code >= 300:
                        return response_answer(response, await response.aread())
                    with target.open("wb") as out:
                        async for block in response.aiter_bytes(DOWNLOAD_BLOCK):
                            await asyncio.to_thread(out.write, block)
                    return response_answer(response, b"null")
            except httpx.TransportError as exc:
                return exc

        return await self._settled(exchange, send)

    async def upload(self, bag: Path, *, progress: Progress | None = None) -> Upload:
        """As :meth:`ArchiveClient.upload`."""
        with sendable(Path(bag)) as file:
            body = await asyncio.to_thread(StreamedBody.of, file)
            exchange = upload_exchange(
                body,
                client_id=self.client_id,
                key=self._key,
                retries=self.retries,
                backoff=self.backoff,
            )

            async def send(attempt: Attempt) -> Answer | Exception:
                return await self._send_streamed(attempt, body, progress)

            return await self._settled(exchange, send)

    # -- the archive's methods ---------------------------------------------------------------

    async def ingest(self, bag: Path, *, progress: Progress | None = None) -> StoredVersion:
        """As :meth:`ArchiveClient.ingest`."""
        return await self._perform(ingest_steps(self._key, Path(bag), progress))

    async def migrate(
        self,
        package_id: str,
        bag: Path,
        *,
        tool: str,
        tool_version: str,
        parameters: Mapping[str, str | int | bool] | None = None,
        progress: Progress | None = None,
    ) -> StoredVersion:
        """As :meth:`ArchiveClient.migrate`."""
        return await self._perform(
            migration_steps(
                self._key,
                package_id,
                Path(bag),
                tool=tool,
                tool_version=tool_version,
                parameters=parameters or {},
                progress=progress,
            )
        )

    async def dispose(
        self,
        package_id: str,
        *,
        approval_id: str,
        approved_by: str,
        approved_at: datetime.datetime,
        reason: str,
    ) -> dict[str, Any]:
        """As :meth:`ArchiveClient.dispose`."""
        return await self._perform(
            disposal_steps(
                self._key,
                package_id,
                approval_id=approval_id,
                approved_by=approved_by,
                approved_at=approved_at,
                reason=reason,
            )
        )

    async def package(self, package_id: str) -> Package:
        """As :meth:`ArchiveClient.package`."""
        return await self._archive(package_call(package_id))

    async def custody(self, package_id: str) -> list[dict[str, Any]]:
        """As :meth:`ArchiveClient.custody`."""
        return await self._perform(custody_steps(package_id))

    async def report(self, package_id: str, version: int | None = None) -> dict[str, Any]:
        """As :meth:`ArchiveClient.report`."""
        return await self._archive(report_call(package_id, version))

    async def report_pdf(self, package_id: str, version: int | None = None) -> bytes:
        """As :meth:`ArchiveClient.report_pdf`."""
        return await self._perform(report_pdf_steps(package_id, version))

    async def search(self, **criteria: Any) -> list[dict[str, Any]]:
        """As :meth:`ArchiveClient.search`."""
        return await self._archive(search_call(**criteria))

    async def health(self) -> ArchiveHealth:
        """As :meth:`ArchiveClient.health`."""
        return await self._archive(health_call())

    async def export_dip(
        self, package_id: str, target: Path, *, purpose: str, version: int | None = None
    ) -> Path:
        """As :meth:`ArchiveClient.export_dip`."""
        return await self._perform(dip_steps(package_id, Path(target), purpose, version))

    async def request_audit(self, package_id: str, *, reason: str | None = None) -> AuditState:
        """As :meth:`ArchiveClient.request_audit`."""
        return await self._archive(audit_request_call(package_id, reason))

    async def audit(self, package_id: str, audit_id: str) -> AuditState:
        """As :meth:`ArchiveClient.audit`."""
        return await self._archive(audit_call(package_id, audit_id))

    async def wait_for_audit(
        self,
        package_id: str,
        audit_id: str,
        *,
        timeout: float = AUDIT_TIMEOUT_S,
        poll: float = AUDIT_POLL_S,
    ) -> AuditState:
        """As :meth:`ArchiveClient.wait_for_audit`."""
        steps = audit_wait_steps(package_id, audit_id, timeout=timeout, poll=poll)
        return await self._perform(steps)

    async def audit_package(
        self,
        package_id: str,
        *,
        reason: str | None = None,
        timeout: float = AUDIT_TIMEOUT_S,
        poll: float = AUDIT_POLL_S,
    ) -> AuditState:
        """As :meth:`ArchiveClient.audit_package`."""
        steps = audit_package_steps(package_id, reason, timeout=timeout, poll=poll)
        return await self._perform(steps)

    async def files(
        self,
        package_id: str,
        *,
        version: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> FilePage:
        """As :meth:`ArchiveClient.files`."""
        call = files_call(package_id, version=version, limit=limit, cursor=cursor)
        return await self._archive(call)

    async def all_files(
        self, package_id: str, *, version: int | None = None, page_size: int = FILES_PAGE
    ) -> list[PackageFile]:
        """As :meth:`ArchiveClient.all_files`."""
        steps = all_files_steps(package_id, version=version, page_size=page_size)
        return await self._perform(steps)

    verify_dip = staticmethod(ArchiveClient.verify_dip)
    """As :meth:`ArchiveClient.verify_dip` (offline, no I/O but the file)."""


__all__ = ["AsyncArchiveClient"]
