"""``AsyncArchiveClient``: :class:`sdk.archive_client.ArchiveClient` on
``httpx.AsyncClient``, the same calls awaited (see that module)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from sdk.archive_calls import (
    UPLOAD_USED_UP,
    ArchiveHealth,
    BagRejected,
    Package,
    PackageNotFound,
    Progress,
    StoredVersion,
    StreamedBody,
    StreamedExchange,
    Upload,
    approval_json,
    check_version,
    destroyed_roots,
    dip_request,
    disposal_call,
    health_call,
    ingest_call,
    migration_call,
    package_call,
    raw_body,
    report_call,
    report_pdf_request,
    require_roots,
    search_call,
    settle,
    stored_already,
)
from sdk.archive_client import (
    DOWNLOAD_BLOCK,
    ArchiveClient,
    check_migrated,
    records_for,
    response_answer,
    sendable,
)
from sdk.archive_entries import read_bag_contents, sign_disposal
from sdk.trust_async import AsyncTrustClient
from sdk.trust_core import Answer, Attempt, Call, Exchange

_T = TypeVar("_T")


class AsyncArchiveClient(AsyncTrustClient):
    """The same client on ``httpx.AsyncClient``: the bag is read and hashed, and the
    upload read from disk, in worker threads, so the event loop never waits on them."""

    async def __aenter__(self) -> AsyncArchiveClient:
        return self

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

    async def upload(self, bag: Path, *, progress: Progress | None = None) -> Upload:
        """As :meth:`ArchiveClient.upload`."""
        with sendable(Path(bag)) as file:
            body = await asyncio.to_thread(StreamedBody.of, file)
            exchange = StreamedExchange(
                body,
                client_id=self.client_id,
                key=self._key,
                retries=self.retries,
                backoff=self.backoff,
            )

            async def send(attempt: Attempt) -> Answer | Exception:
                return await self._stream(attempt, body, progress)

            return await self._settled(exchange, send)

    async def _stream(
        self, attempt: Attempt, body: StreamedBody, progress: Progress | None
    ) -> Answer | httpx.TransportError:
        if attempt.delay:
            await asyncio.sleep(attempt.delay)

        async def blocks() -> AsyncIterator[bytes]:
            source = body.blocks(progress)
            while (block := await asyncio.to_thread(next, source, None)) is not None:
                yield block

        try:
            response = await self._http.post(
                attempt.request.path, content=blocks(), headers=attempt.headers
            )
        except httpx.TransportError as exc:
            return exc
        return response_answer(response, response.content)

    async def ingest(self, bag: Path, *, progress: Progress | None = None) -> StoredVersion:
        """As :meth:`ArchiveClient.ingest`."""
        bag = Path(bag)
        contents = await asyncio.to_thread(read_bag_contents, bag)
        records = records_for(self._key, contents, await self._signing_chain_id(), 1)
        upload = await self.upload(bag, progress=progress)
        try:
            return await self._archive(ingest_call(upload.upload_id, records))
        except BagRejected as error:
            return await self._stored_by_a_lost_attempt(
                error, contents.package_id, 1, contents.root
            )

    async def _stored_by_a_lost_attempt(
        self, error: BagRejected, package_id: str, version: int, root: str
    ) -> StoredVersion:
        """As :meth:`ArchiveClient._stored_by_a_lost_attempt`."""
        if error.code != UPLOAD_USED_UP:
            raise error
        try:
            package = await self.package(package_id)
        except PackageNotFound:
            raise error from None
        stored = None
        if any(v.version == version and v.root == root for v in package.versions):
            report = await self.report(package_id, version)
            stored = stored_already(package, version, root, report)
        if stored is None:
            raise error
        return stored

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
        bag = Path(bag)
        contents = await asyncio.to_thread(read_bag_contents, bag)
        check_migrated(contents, package_id)
        version = (await self.package(package_id)).latest.version + 1
        records = records_for(self._key, contents, await self._signing_chain_id(), version)
        upload = await self.upload(bag, progress=progress)
        call = migration_call(
            package_id,
            upload.upload_id,
            records,
            tool=tool,
            tool_version=tool_version,
            parameters=parameters or {},
        )
        try:
            return await self._archive(call)
        except BagRejected as error:
            return await self._stored_by_a_lost_attempt(error, package_id, version, contents.root)

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
        approval = approval_json(approval_id, approved_by, approved_at, reason)
        roots = destroyed_roots(await self.package(package_id))
        require_roots(roots)
        chain_id = await self._signing_chain_id()
        records = sign_disposal(self._key, chain_id, package_id, approval, roots)
        return await self._archive(disposal_call(package_id, approval, records))

    async def package(self, package_id: str) -> Package:
        """As :meth:`ArchiveClient.package`."""
        return await self._archive(package_call(package_id))

    async def custody(self, package_id: str) -> list[dict[str, Any]]:
        """As :meth:`ArchiveClient.custody`."""
        return (await self.package(package_id)).events

    async def report(self, package_id: str, version: int | None = None) -> dict[str, Any]:
        """As :meth:`ArchiveClient.report`."""
        check_version(version)
        return await self._archive(report_call(package_id, version))

    async def report_pdf(self, package_id: str, version: int | None = None) -> bytes:
        """As :meth:`ArchiveClient.report_pdf`."""
        check_version(version)
        exchange = self._exchange(Call(report_pdf_request(package_id, version), bytes))
        return raw_body(exchange, await self._attempts(exchange, self._send))

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
        check_version(version)
        request = dip_request(package_id, purpose, version)
        target = Path(target)
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

    verify_dip = staticmethod(ArchiveClient.verify_dip)
    """As :meth:`ArchiveClient.verify_dip` (offline, no I/O but the file)."""


__all__ = ["AsyncArchiveClient"]
