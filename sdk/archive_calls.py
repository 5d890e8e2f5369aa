"""The registry's ``/v1/archives`` calls without I/O, for :mod:`sdk.archive_client`: what
each request sends, what its answer becomes, the typed errors of the archive's refusals,
and the streamed upload of a bag (its body signed by the SM3 declared before sending,
read from disk in blocks on every attempt)."""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from chain.crypto import PrivateKey
from sdk.archive_entries import BLOCK_SIZE, sm3_file
from sdk.trust_core import (
    Answer,
    Attempt,
    Call,
    Exchange,
    RegistryRequest,
    json_request,
    registry_error,
    signed_headers,
)
from sdk.trust_types import RegistryError

ARCHIVES_PATH = "/v1/archives"
"""Prefix of the archive API."""

UPLOAD_PATH = f"{ARCHIVES_PATH}/uploads"
"""The streamed bag upload."""

CONTENT_SM3_HEADER = "X-Lianxin-Content-SM3"
"""The hex SM3 of a streamed body, declared before it is sent (the request is signed over
it)."""


# -- typed errors ----------------------------------------------------------------------------


class ArchiveRefused(RegistryError):
    """The archive refused a request: ``code`` and ``message`` of its error body, and its
    ``details`` (None when it gave none)."""

    def __init__(self, status_code: int, code: str, message: str, details: Any) -> None:
        super().__init__(status_code, code, message)
        self.details = details


class IngestRefused(ArchiveRefused):
    """422 ``ingest_refused``: the bag fails the 四性 check; ``report`` is the whole
    report (every item, its verdict and evidence). Nothing was stored."""

    @property
    def report(self) -> dict[str, Any]:
        """The 四性 report."""
        return dict(self.details or {})

    @property
    def failed_items(self) -> list[dict[str, Any]]:
        """The report's items that FAILed."""
        return [item for item in self.report.get("items", []) if item.get("verdict") == "FAIL"]


class BagRejected(ArchiveRefused):
    """422: the bag cannot be taken as sent (unsafe or damaged archive, invalid bag,
    description, classified material, records that do not match its files, a used-up
    upload ...)."""


class NotPackageOwner(ArchiveRefused):
    """403 ``not_package_owner``: only the department that ingested a package migrates or
    disposes of it."""


class PackageNotFound(ArchiveRefused):
    """404 ``package_not_found``: no such package."""


class RetentionPermanent(ArchiveRefused):
    """409 ``retention_permanent``: a 永久 package is never destroyed."""


class RetentionNotExpired(ArchiveRefused):
    """409 ``retention_not_expired``: the retention period has not run out."""


class PackageConflict(ArchiveRefused):
    """409 otherwise: the 档号 is stored already (``package_exists``), the package was
    disposed of or is changing, or the department has as many unused uploads as the
    archive keeps."""


class UploadTooLarge(ArchiveRefused):
    """413 ``payload_too_large``: the bag is larger than the archive's upload cap."""


UPLOAD_USED_UP = "upload_not_found"
"""The code of an ingest or migration naming an upload that is gone: used up (by an attempt
whose answer was lost, say), expired, or never made."""


def stored_already(
    package: Package, version: int, root: str, report: dict[str, Any]
) -> StoredVersion | None:
    """The version an earlier attempt stored, if ``package`` holds ``version`` with
    ``root`` (its events are then the package's whole custody history)."""
    found = next((v for v in package.versions if v.version == version and v.root == root), None)
    if found is None:
        return None
    return StoredVersion(package.package_id, version, root, report, package.events, found.lineage)


def archive_error(answer: Answer) -> RegistryError:
    """The typed error of an error answer of the archive API."""
    plain = registry_error(answer)
    details: Any = None
    with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
        details = json.loads(answer.body)["error"].get("details")
    status, code = plain.status_code, plain.code
    kind: type[ArchiveRefused] | None = None
    if code == "ingest_refused":
        kind = IngestRefused
    elif code == "not_package_owner":
        kind = NotPackageOwner
    elif code == "retention_permanent":
        kind = RetentionPermanent
    elif code == "retention_not_expired":
        kind = RetentionNotExpired
    elif status == 404:
        kind = PackageNotFound
    elif status == 413:
        kind = UploadTooLarge
    elif status == 409:
        kind = PackageConflict
    elif status == 422:
        kind = BagRejected
    if kind is None:
        return plain
    return kind(status, code, plain.message, details)


# -- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A bag streamed into the archive's spool, for one ingest or migration."""

    upload_id: str
    """The id to ingest or migrate from (used up by that request)."""
    size: int
    """Bytes received."""
    sm3: str
    """SM3 of the bytes received (hex)."""
    kept_for_seconds: float
    """How long the archive keeps it unused."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Upload:
        """Parse the registry's answer."""
        return cls(
            str(value["upload"]), int(value["size"]), str(value["sm3"]), value["keptForSeconds"]
        )


@dataclass(frozen=True)
class StoredVersion:
    """What an ingest or a migration stored."""

    package_id: str
    """The package (SM3 of 全宗号 and 档号)."""
    version: int
    """The version stored."""
    root: str
    """Its package root (hex), which the department signed."""
    report: dict[str, Any]
    """The 四性 report."""
    events: list[dict[str, Any]]
    """The custody events recorded."""
    lineage: dict[str, Any] | None
    """For a migration: the previous version and root, tool, version, parameters."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> StoredVersion:
        """Parse the registry's answer."""
        return cls(
            package_id=str(value["packageId"]),
            version=int(value["version"]),
            root=str(value["root"]),
            report=dict(value["report"]),
            events=list(value["events"]),
            lineage=value.get("lineage"),
        )


@dataclass(frozen=True)
class VersionInfo:
    """One version of a package as the registry lists it."""

    version: int
    root: str
    report_sm3: str
    lineage: dict[str, Any] | None
    disposed_at: str | None


@dataclass(frozen=True)
class Package:
    """A package: its versions and its custody history."""

    package_id: str
    """The package."""
    versions: list[VersionInfo]
    """Its versions, oldest first."""
    events: list[dict[str, Any]]
    """Its custody events (ingest, validation, fixity checks, access, migration,
    disposal), in order, each hash-chained to the one before."""

    @property
    def latest(self) -> VersionInfo:
        """The latest version."""
        return self.versions[-1]

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Package:
        """Parse the registry's answer."""
        return cls(
            package_id=str(value["packageId"]),
            versions=[
                VersionInfo(
                    version=int(item["version"]),
                    root=str(item["root"]),
                    report_sm3=str(item["reportSm3"]),
                    lineage=item.get("lineage"),
                    disposed_at=item.get("disposedAt"),
                )
                for item in value["versions"]
            ],
            events=list(value["events"]),
        )


@dataclass(frozen=True)
class ArchiveHealth:
    """The archive's last fixity audit."""

    status: str
    """``ok``, ``fixity_failed`` or ``not_audited``."""
    last_audit: dict[str, Any] | None
    """The audit (id, when, files and bytes checked), if any."""
    findings: list[dict[str, Any]]
    """What a failed audit found (missing or changed files, with their package)."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ArchiveHealth:
        """Parse the registry's answer."""
        return cls(str(value["status"]), value.get("lastAudit"), list(value.get("findings") or []))


# -- calls -----------------------------------------------------------------------------------


def package_path(package_id: str, suffix: str = "") -> str:
    """The path of a package, or of one of its parts (``suffix``)."""
    return f"{ARCHIVES_PATH}/packages/{quote(package_id, safe='')}{suffix}"


def ingest_call(upload_id: str, records: Mapping[str, Any]) -> Call[StoredVersion]:
    """``POST /v1/archives/packages`` from an upload, with the department's records."""
    payload = {"upload": upload_id, "records": dict(records)}
    return Call(json_request("POST", f"{ARCHIVES_PATH}/packages", payload), StoredVersion.from_json)


def migration_call(
    package_id: str,
    upload_id: str,
    records: Mapping[str, Any],
    *,
    tool: str,
    tool_version: str,
    parameters: Mapping[str, str | int | bool],
) -> Call[StoredVersion]:
    """``POST /v1/archives/packages/{id}/migrations``."""
    payload = {
        "upload": upload_id,
        "tool": tool,
        "toolVersion": tool_version,
        "parameters": dict(parameters),
        "records": dict(records),
    }
    request = json_request("POST", package_path(package_id, "/migrations"), payload)
    return Call(request, StoredVersion.from_json)


def approval_json(
    approval_id: str, approved_by: str, approved_at: datetime.datetime, reason: str
) -> dict[str, str]:
    """A disposal approval as the archive records it (and as the department signs it):
    the time in UTC; raises ValueError for a time without its offset."""
    if approved_at.tzinfo is None or approved_at.utcoffset() is None:
        raise ValueError("approved_at needs its UTC offset")
    return {
        "approvalId": approval_id,
        "approvedBy": approved_by,
        "approvedAt": approved_at.astimezone(datetime.UTC).isoformat(),
        "reason": reason,
    }


def disposal_call(
    package_id: str, approval: Mapping[str, str], records: Mapping[str, Any]
) -> Call[dict[str, Any]]:
    """``POST /v1/archives/packages/{id}/disposal``: answers the tombstone."""
    payload = {"approval": dict(approval), "records": dict(records)}
    request = json_request("POST", package_path(package_id, "/disposal"), payload)
    return Call(request, dict)


def package_call(package_id: str) -> Call[Package]:
    """``GET /v1/archives/packages/{id}``."""
    return Call(json_request("GET", package_path(package_id)), Package.from_json)


def report_call(package_id: str, version: int | None) -> Call[dict[str, Any]]:
    """``GET /v1/archives/packages/{id}/report``: a version's 四性 report."""
    query = "" if version is None else f"?{urlencode({'version': version})}"
    return Call(json_request("GET", package_path(package_id, "/report") + query), dict)


def report_pdf_request(package_id: str, version: int | None) -> RegistryRequest:
    """``GET /v1/archives/packages/{id}/report.pdf``."""
    query = "" if version is None else f"?{urlencode({'version': version})}"
    return json_request("GET", package_path(package_id, "/report.pdf") + query)


def search_call(
    *,
    archival_code: str | None = None,
    title: str | None = None,
    fonds: str | None = None,
    formed_from: datetime.date | None = None,
    formed_to: datetime.date | None = None,
    limit: int = 50,
) -> Call[list[dict[str, Any]]]:
    """``GET /v1/archives/packages`` with the criteria given."""
    query: dict[str, str | int] = {"limit": limit}
    for name, value in (("archival_code", archival_code), ("title", title), ("fonds", fonds)):
        if value is not None:
            query[name] = value
    if formed_from is not None:
        query["formed_from"] = formed_from.isoformat()
    if formed_to is not None:
        query["formed_to"] = formed_to.isoformat()
    request = json_request("GET", f"{ARCHIVES_PATH}/packages?{urlencode(query)}")
    return Call(request, list)


def dip_request(package_id: str, purpose: str, version: int | None) -> RegistryRequest:
    """``POST /v1/archives/packages/{id}/dip``: answers the DIP zip."""
    payload: dict[str, Any] = {"purpose": purpose}
    if version is not None:
        payload["version"] = version
    return json_request("POST", package_path(package_id, "/dip"), payload)


def health_call() -> Call[ArchiveHealth]:
    """``GET /v1/archives/health``: the last fixity audit."""
    return Call(json_request("GET", f"{ARCHIVES_PATH}/health"), ArchiveHealth.from_json)


def destroyed_roots(package: Package) -> list[str]:
    """The roots a disposal destroys: every version not disposed of, in version order."""
    return [item.root for item in package.versions if item.disposed_at is None]


# -- the streamed upload ---------------------------------------------------------------------

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_sent, total_bytes)`` after each block of an upload is sent."""


@dataclass(frozen=True)
class StreamedBody:
    """A request body read from a file on every attempt, known by its SM3 and size."""

    path: Path
    """The file."""
    sm3: str
    """Its SM3 (hex), hashed before the first attempt."""
    size: int
    """Its size."""

    @classmethod
    def of(cls, path: Path) -> StreamedBody:
        """Hash ``path`` (streamed) for sending."""
        digest, size = sm3_file(path)
        return cls(path, digest, size)

    def blocks(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The file in blocks, ``progress(sent, total)`` after each; raises
        ChangedWhileSending if the file grows past the size hashed."""
        sent = 0
        with self.path.open("rb") as stream:
            while block := stream.read(BLOCK_SIZE):
                sent += len(block)
                if sent > self.size:
                    raise ChangedWhileSending(f"{self.path} changed after it was hashed")
                yield block
                if progress is not None:
                    progress(sent, self.size)


class ChangedWhileSending(RegistryError):
    """The file being uploaded changed after its SM3 was declared."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "changed_while_sending", message)


def upload_request(body: StreamedBody) -> RegistryRequest:
    """``POST /v1/archives/uploads`` of ``body`` (the body itself is streamed; the request
    holds no bytes of it)."""
    headers = {
        CONTENT_SM3_HEADER: body.sm3,
        "Content-Type": "application/octet-stream",
        "Content-Length": str(body.size),
    }
    return RegistryRequest("POST", UPLOAD_PATH, b"", headers)


class StreamedExchange(Exchange[Upload]):
    """The exchange of a streamed upload: the retry policy of :class:`Exchange`, each
    attempt signed over the body's declared SM3 rather than the (empty) request bytes."""

    def __init__(
        self, body: StreamedBody, *, client_id: str, key: PrivateKey, retries: int, backoff: float
    ) -> None:
        super().__init__(
            Call(upload_request(body), Upload.from_json),
            client_id=client_id,
            key=key,
            retries=retries,
            backoff=backoff,
        )
        self.body = body
        self._signing_key = key

    def next_attempt(self, now: float | None = None) -> Attempt | None:
        """The next try, signed over the body's SM3."""
        attempt = super().next_attempt(now)
        if attempt is None:
            return None
        headers = dict(attempt.headers)
        headers.update(
            signed_headers(
                self._signing_key,
                client_id=self.client_id,
                method="POST",
                path=UPLOAD_PATH,
                body=b"",
                now=now,
                body_sm3=self.body.sm3,
            )
        )
        return Attempt(attempt.delay, attempt.request, headers)


def settle(exchange: Exchange[Any], last: Answer | None) -> Any:
    """The result of a settled exchange, its error typed by :func:`archive_error`."""
    try:
        return exchange.result()
    except RegistryError:
        if last is None or last.status_code < 400 or last.status_code in (502, 503, 504):
            raise
        raise archive_error(last) from None


def raw_body(exchange: Exchange[Any], last: Answer | None) -> bytes:
    """The body of a call's successful answer as it came (not JSON); raises as
    :func:`settle` would."""
    if last is not None and last.status_code < 300:
        return last.body
    settle(exchange, last)
    raise RegistryError(0, "no_answer", "the registry gave no answer")


def check_version(version: int | None) -> None:
    """Raise ValueError for a version that is not a positive number."""
    if version is not None and version < 1:
        raise ValueError(f"version {version} is not 1 or more")


def require_roots(roots: Sequence[str]) -> None:
    """Raise ValueError when a disposal would destroy nothing."""
    if not roots:
        raise ValueError("the package has no version left to dispose of")


__all__ = [
    "ARCHIVES_PATH",
    "CONTENT_SM3_HEADER",
    "UPLOAD_PATH",
    "UPLOAD_USED_UP",
    "ArchiveHealth",
    "ArchiveRefused",
    "BagRejected",
    "ChangedWhileSending",
    "IngestRefused",
    "NotPackageOwner",
    "Package",
    "PackageConflict",
    "PackageNotFound",
    "Progress",
    "RetentionNotExpired",
    "RetentionPermanent",
    "StoredVersion",
    "StreamedBody",
    "StreamedExchange",
    "Upload",
    "UploadTooLarge",
    "VersionInfo",
    "approval_json",
    "archive_error",
    "check_version",
    "destroyed_roots",
    "dip_request",
    "disposal_call",
    "health_call",
    "ingest_call",
    "migration_call",
    "package_call",
    "raw_body",
    "report_call",
    "report_pdf_request",
    "search_call",
    "settle",
    "stored_already",
]
