"""``ArchiveClient`` (``AsyncArchiveClient`` in :mod:`sdk.archive_client_async`): the
registry's e-archive API
(``/v1/archives``) on the trust clients' request core (:mod:`sdk.trust_core`: every request
signed by the department's key, retried with the same bytes, typed errors).

A department ingests a bag it holds (a directory, zip or tar): the client reads it once to
compute the SM3 entry of every file the archive will store and signs one record per file
and one for the package root (:mod:`sdk.archive_entries`), streams the bag to the
archive's spool (the body's SM3 declared and signed before the first byte, the file read
from disk in blocks, never whole in memory; a directory is packed into a tar on disk
first), then ingests from that upload. The same for a format migration (signed for the
next version). A disposal carries the approval and the department's signed commitment to
it and to the roots of every version destroyed. Packages, custody history, 四性 reports,
the catalogue and the archive's last fixity audit are read; an access copy (DIP) is
written to disk as it arrives and verifies offline (:func:`sdk.archive_bundle.verify_dip`,
on the one bundle verifier).

A fixity audit of one package is asked for now and waited for (the files found changed,
the 四性 report of each version); a package version's files are listed a page at a time
(path, size, SM3, anchoring). Every method made of several requests is written once, as
a program of steps (:mod:`sdk.archive_steps`) this client runs and
:class:`sdk.archive_client_async.AsyncArchiveClient` awaits.

Refusals raise the typed errors of :mod:`sdk.archive_calls`: IngestRefused (422, with the
四性 report), BagRejected (other 422), NotPackageOwner (403), RetentionPermanent and
RetentionNotExpired (409), PackageConflict (other 409), PackageNotFound (404),
UploadTooLarge (413); a bag that
cannot be read here raises BagNotReadable before anything is sent."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from chain.commit import ValidatorSet
from sdk.archive_bundle import DipVerdict, verify_dip
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
    run_steps,
    sendable,
)
from sdk.archive_upload import Progress, StreamedBody, upload_exchange
from sdk.trust import TrustClient
from sdk.trust_core import Answer, Attempt, Call, Exchange, RegistryRequest

_T = TypeVar("_T")

DOWNLOAD_BLOCK = 1024 * 1024
"""Bytes written per block of a downloaded access copy."""

AUDIT_TIMEOUT_S = 600.0
"""How long :meth:`ArchiveClient.wait_for_audit` waits by default."""

AUDIT_POLL_S = 0.5
"""How often it reads the audit."""

FILES_PAGE = 500
"""Files asked for per page by :meth:`ArchiveClient.all_files`."""


def response_answer(response: httpx.Response, body: bytes) -> Answer:
    """``response`` as the request core's Answer, with ``body``."""
    return Answer(response.status_code, response.reason_phrase, body)


class ArchiveClient(TrustClient):
    """Synchronous client of ``/v1/archives`` (and of everything :class:`TrustClient`
    does)."""

    def __enter__(self) -> ArchiveClient:
        return self

    # -- carrying out requests and steps ---------------------------------------------------

    def _attempts(
        self, exchange: Exchange[Any], send: Callable[[Attempt], Answer | Exception]
    ) -> Answer | None:
        last: Answer | None = None
        while (attempt := exchange.next_attempt()) is not None:
            outcome = send(attempt)
            if isinstance(outcome, Answer):
                last = outcome
            exchange.receive(outcome)
        return last

    def _settled(self, exchange: Exchange[_T], send: Callable[[Attempt], Answer | Exception]) -> _T:
        result: _T = settle(exchange, self._attempts(exchange, send))
        return result

    def _archive(self, call: Call[_T]) -> _T:
        return self._settled(self._exchange(call), self._send)

    def _perform(self, steps: Steps[_T]) -> _T:
        return run_steps(steps, self._carry_out)

    def _carry_out(self, step: Step) -> Any:
        if isinstance(step, Call):
            return self._archive(step)
        if isinstance(step, Local):
            return step.function(*step.arguments)
        if isinstance(step, SigningChainId):
            return self._signing_chain_id()
        if isinstance(step, SendBag):
            return self.upload(step.bag, progress=step.progress)
        if isinstance(step, Fetch):
            return self._fetch(step)
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            return time.monotonic()
        if isinstance(step, Clock):
            return time.monotonic()
        raise TypeError(f"not a step: {step!r}")

    def _fetch(self, step: Fetch) -> Any:
        if step.target is None:
            exchange = self._exchange(Call(step.request, bytes))
            return raw_body(exchange, self._attempts(exchange, self._send))
        return self._download(step.request, step.target)

    def _download(self, request: RegistryRequest, target: Path) -> Path:
        exchange = self._exchange(Call(request, lambda _value: target))

        def send(attempt: Attempt) -> Answer | httpx.TransportError:
            if attempt.delay:
                time.sleep(attempt.delay)
            try:
                with self._http.stream(
                    request.method, request.path, content=request.body, headers=attempt.headers
                ) as response:
                    if response.status_code >= 300:
                        return response_answer(response, response.read())
                    with target.open("wb") as out:
                        for block in response.iter_bytes(DOWNLOAD_BLOCK):
                            out.write(block)
                    return response_answer(response, b"null")
            except httpx.TransportError as exc:
                return exc

        return self._settled(exchange, send)

    def upload(self, bag: Path, *, progress: Progress | None = None) -> Upload:
        """Stream ``bag`` (a directory, zip or tar) to the archive's spool for one ingest
        or migration; ``progress(sent, total)`` after each block. A retry reads the file
        again. Raises UploadTooLarge (413), PackageConflict (409: too many unused
        uploads), BagRejected (422)."""
        with sendable(Path(bag)) as file:
            body = StreamedBody.of(file)
            exchange = upload_exchange(
                body,
                client_id=self.client_id,
                key=self._key,
                retries=self.retries,
                backoff=self.backoff,
            )
            return self._settled(
                exchange, lambda attempt: self._send_streamed(attempt, body, progress)
            )

    # -- the archive's methods ---------------------------------------------------------------

    def ingest(self, bag: Path, *, progress: Progress | None = None) -> StoredVersion:
        """Ingest ``bag`` (a directory, zip or tar) as version 1 of its package: its
        records signed, the bag streamed, then ingested. Raises BagNotReadable before
        sending, IngestRefused (422 with the 四性 report), BagRejected, UploadTooLarge.
        Retried after its answer was lost, answers the version that attempt stored."""
        return self._perform(ingest_steps(self._key, Path(bag), progress))

    def migrate(
        self,
        package_id: str,
        bag: Path,
        *,
        tool: str,
        tool_version: str,
        parameters: Mapping[str, str | int | bool] | None = None,
        progress: Progress | None = None,
    ) -> StoredVersion:
        """Store ``bag`` (the output of a format migration, same 全宗号 and 档号) as the
        next version of ``package_id``, its files and root signed for that version.
        Raises NotPackageOwner (403), IngestRefused (422), PackageConflict (409)."""
        return self._perform(
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

    def dispose(
        self,
        package_id: str,
        *,
        approval_id: str,
        approved_by: str,
        approved_at: datetime.datetime,
        reason: str,
    ) -> dict[str, Any]:
        """Destroy every version of ``package_id`` under the approval (by someone other
        than this department), with the department's signed commitment to it and to the
        roots destroyed; answers the tombstone. Raises RetentionPermanent (永久),
        RetentionNotExpired, NotPackageOwner, BagRejected (422: approved by the one who
        carries it out)."""
        return self._perform(
            disposal_steps(
                self._key,
                package_id,
                approval_id=approval_id,
                approved_by=approved_by,
                approved_at=approved_at,
                reason=reason,
            )
        )

    def package(self, package_id: str) -> Package:
        """A package's versions (roots, lineage, report hash) and its custody history."""
        return self._archive(package_call(package_id))

    def custody(self, package_id: str) -> list[dict[str, Any]]:
        """A package's custody events, in order."""
        return self._perform(custody_steps(package_id))

    def report(self, package_id: str, version: int | None = None) -> dict[str, Any]:
        """The 四性 report of a version (default: the latest)."""
        return self._archive(report_call(package_id, version))

    def report_pdf(self, package_id: str, version: int | None = None) -> bytes:
        """The 四性 report as the Chinese PDF whose SM3 the ingestion event records."""
        return self._perform(report_pdf_steps(package_id, version))

    def search(self, **criteria: Any) -> list[dict[str, Any]]:
        """The catalogue: packages matching every criterion (``archival_code`` prefix,
        ``title``, ``fonds``, ``formed_from``, ``formed_to``, ``limit``)."""
        return self._archive(search_call(**criteria))

    def health(self) -> ArchiveHealth:
        """The archive's last fixity audit (status, when, findings)."""
        return self._archive(health_call())

    def export_dip(
        self, package_id: str, target: Path, *, purpose: str, version: int | None = None
    ) -> Path:
        """Take an access copy of ``package_id`` (logged with ``purpose`` as an access
        event) into the file ``target``, written block by block as it arrives."""
        return self._perform(dip_steps(package_id, Path(target), purpose, version))

    def request_audit(self, package_id: str, *, reason: str | None = None) -> AuditState:
        """Ask for a fixity audit of every stored version of ``package_id`` now (the
        department that ingested it, or a client with the ``archive_audit`` role): the
        audit queued, or the one queued or running already (``created`` False). Raises
        PackageNotFound, NotPackageOwner, PackageConflict (disposed of)."""
        return self._archive(audit_request_call(package_id, reason))

    def audit(self, package_id: str, audit_id: str) -> AuditState:
        """A requested audit as it is now."""
        return self._archive(audit_call(package_id, audit_id))

    def wait_for_audit(
        self,
        package_id: str,
        audit_id: str,
        *,
        timeout: float = AUDIT_TIMEOUT_S,
        poll: float = AUDIT_POLL_S,
    ) -> AuditState:
        """The requested audit once finished or failed, read every ``poll`` seconds;
        raises TimeoutError after ``timeout`` seconds."""
        return self._perform(audit_wait_steps(package_id, audit_id, timeout=timeout, poll=poll))

    def audit_package(
        self,
        package_id: str,
        *,
        reason: str | None = None,
        timeout: float = AUDIT_TIMEOUT_S,
        poll: float = AUDIT_POLL_S,
    ) -> AuditState:
        """:meth:`request_audit`, then :meth:`wait_for_audit`."""
        return self._perform(audit_package_steps(package_id, reason, timeout=timeout, poll=poll))

    def files(
        self,
        package_id: str,
        *,
        version: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> FilePage:
        """One page of a version's files (default: the latest version), by path:
        ``next_cursor`` asks for the following page."""
        return self._archive(files_call(package_id, version=version, limit=limit, cursor=cursor))

    def all_files(
        self, package_id: str, *, version: int | None = None, page_size: int = FILES_PAGE
    ) -> list[PackageFile]:
        """Every file of a version, by path, read a page at a time."""
        return self._perform(all_files_steps(package_id, version=version, page_size=page_size))

    @staticmethod
    def verify_dip(
        path: Path, validator_set: ValidatorSet, *, chain_id: int, notary: bytes | None = None
    ) -> DipVerdict:
        """Verify an access copy offline (:func:`sdk.archive_bundle.verify_dip`)."""
        return verify_dip(Path(path), validator_set, chain_id=chain_id, notary=notary)


__all__ = [
    "AUDIT_POLL_S",
    "AUDIT_TIMEOUT_S",
    "DOWNLOAD_BLOCK",
    "FILES_PAGE",
    "ArchiveClient",
    "response_answer",
]
