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

Refusals raise the typed errors of :mod:`sdk.archive_calls`: IngestRefused (422, with the
四性 report), BagRejected (other 422), NotPackageOwner (403), RetentionPermanent and
RetentionNotExpired (409), PackageConflict (other 409), PackageNotFound (404),
UploadTooLarge (413); a bag that
cannot be read here raises BagNotReadable before anything is sent."""

from __future__ import annotations

import contextlib
import datetime
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from chain.commit import ValidatorSet
from chain.crypto import PrivateKey
from sdk.archive_bundle import DipVerdict, verify_dip
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
from sdk.archive_entries import (
    BagContents,
    BagNotReadable,
    bag_kind,
    read_bag_contents,
    sign_disposal,
    sign_entries,
)
from sdk.trust import TrustClient
from sdk.trust_core import Answer, Attempt, Call, Exchange, RegistryRequest

_T = TypeVar("_T")

DOWNLOAD_BLOCK = 1024 * 1024
"""Bytes written per block of a downloaded access copy."""


@contextlib.contextmanager
def sendable(bag: Path) -> Iterator[Path]:
    """The bag as one file to stream: a zip or tar as it is, a directory packed into a tar
    in a scratch directory (removed after)."""
    if bag_kind(bag) != "directory":
        yield bag
        return
    scratch = Path(tempfile.mkdtemp(prefix="lianxin-bag-"))
    try:
        packed = scratch / "bag.tar"
        with tarfile.open(packed, "w") as archive:
            archive.add(bag, arcname=bag.name or "bag")
        yield packed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def records_for(
    key: PrivateKey, contents: BagContents, chain_id: int, version: int
) -> dict[str, Any]:
    """The department's signed records of ``contents`` as ``version`` of its package."""
    entries = [(entry.path, entry.sm3) for entry in contents.entries]
    return sign_entries(key, chain_id, contents.package_id, version, entries)


def check_migrated(contents: BagContents, package_id: str) -> None:
    """Raise BagNotReadable unless the migrated bag describes ``package_id``."""
    if contents.package_id != package_id:
        raise BagNotReadable(
            f"the migrated bag describes package {contents.package_id}, not {package_id}"
        )


def response_answer(response: httpx.Response, body: bytes) -> Answer:
    """``response`` as the request core's Answer, with ``body``."""
    return Answer(response.status_code, response.reason_phrase, body)


class ArchiveClient(TrustClient):
    """Synchronous client of ``/v1/archives`` (and of everything :class:`TrustClient`
    does)."""

    def __enter__(self) -> ArchiveClient:
        return self

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

    def _signing(self) -> int:
        return self._signing_chain_id()

    def upload(self, bag: Path, *, progress: Progress | None = None) -> Upload:
        """Stream ``bag`` (a directory, zip or tar) to the archive's spool for one ingest
        or migration; ``progress(sent, total)`` after each block. A retry reads the file
        again. Raises UploadTooLarge (413), PackageConflict (409: too many unused
        uploads), BagRejected (422)."""
        with sendable(Path(bag)) as file:
            body = StreamedBody.of(file)
            exchange = StreamedExchange(
                body,
                client_id=self.client_id,
                key=self._key,
                retries=self.retries,
                backoff=self.backoff,
            )
            return self._settled(exchange, lambda attempt: self._stream(attempt, body, progress))

    def _stream(
        self, attempt: Attempt, body: StreamedBody, progress: Progress | None
    ) -> Answer | httpx.TransportError:
        if attempt.delay:
            time.sleep(attempt.delay)
        try:
            response = self._http.post(
                attempt.request.path, content=body.blocks(progress), headers=attempt.headers
            )
        except httpx.TransportError as exc:
            return exc
        return response_answer(response, response.content)

    def ingest(self, bag: Path, *, progress: Progress | None = None) -> StoredVersion:
        """Ingest ``bag`` (a directory, zip or tar) as version 1 of its package: its
        records signed, the bag streamed, then ingested. Raises BagNotReadable before
        sending, IngestRefused (422 with the 四性 report), BagRejected, UploadTooLarge."""
        bag = Path(bag)
        contents = read_bag_contents(bag)
        records = records_for(self._key, contents, self._signing(), 1)
        upload = self.upload(bag, progress=progress)
        try:
            return self._archive(ingest_call(upload.upload_id, records))
        except BagRejected as error:
            return self._stored_by_a_lost_attempt(error, contents.package_id, 1, contents.root)

    def _stored_by_a_lost_attempt(
        self, error: BagRejected, package_id: str, version: int, root: str
    ) -> StoredVersion:
        """An ingest or migration retried after its answer was lost finds its upload used
        up: the version that attempt stored, if it is there; else ``error``."""
        if error.code != UPLOAD_USED_UP:
            raise error
        try:
            package = self.package(package_id)
        except PackageNotFound:
            raise error from None
        stored = None
        if any(v.version == version and v.root == root for v in package.versions):
            stored = stored_already(package, version, root, self.report(package_id, version))
        if stored is None:
            raise error
        return stored

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
        bag = Path(bag)
        contents = read_bag_contents(bag)
        check_migrated(contents, package_id)
        version = self.package(package_id).latest.version + 1
        records = records_for(self._key, contents, self._signing(), version)
        upload = self.upload(bag, progress=progress)
        call = migration_call(
            package_id,
            upload.upload_id,
            records,
            tool=tool,
            tool_version=tool_version,
            parameters=parameters or {},
        )
        try:
            return self._archive(call)
        except BagRejected as error:
            return self._stored_by_a_lost_attempt(error, package_id, version, contents.root)

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
        approval = approval_json(approval_id, approved_by, approved_at, reason)
        roots = destroyed_roots(self.package(package_id))
        require_roots(roots)
        records = sign_disposal(self._key, self._signing(), package_id, approval, roots)
        return self._archive(disposal_call(package_id, approval, records))

    def package(self, package_id: str) -> Package:
        """A package's versions (roots, lineage, report hash) and its custody history."""
        return self._archive(package_call(package_id))

    def custody(self, package_id: str) -> list[dict[str, Any]]:
        """A package's custody events, in order."""
        return self.package(package_id).events

    def report(self, package_id: str, version: int | None = None) -> dict[str, Any]:
        """The 四性 report of a version (default: the latest)."""
        check_version(version)
        return self._archive(report_call(package_id, version))

    def report_pdf(self, package_id: str, version: int | None = None) -> bytes:
        """The 四性 report as the Chinese PDF whose SM3 the ingestion event records."""
        check_version(version)
        exchange = self._exchange(Call(report_pdf_request(package_id, version), bytes))
        last = self._attempts(exchange, self._send)
        return raw_body(exchange, last)

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
        check_version(version)
        return self._download(dip_request(package_id, purpose, version), Path(target))

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

    @staticmethod
    def verify_dip(
        path: Path, validator_set: ValidatorSet, *, chain_id: int, notary: bytes | None = None
    ) -> DipVerdict:
        """Verify an access copy offline (:func:`sdk.archive_bundle.verify_dip`)."""
        return verify_dip(Path(path), validator_set, chain_id=chain_id, notary=notary)


__all__ = [
    "ArchiveClient",
    "check_migrated",
    "records_for",
    "response_answer",
    "sendable",
]
