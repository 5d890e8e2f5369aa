"""The registry's ``/v1/archives`` calls without I/O, for :mod:`sdk.archive_client`: what
each request sends, what its answer becomes and the typed errors of the archive's
refusals (the streamed upload of a bag is :mod:`sdk.archive_upload`; the methods made of
several calls, :mod:`sdk.archive_steps`)."""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from sdk.trust_core import (
    Answer,
    Call,
    Exchange,
    RegistryRequest,
    json_request,
    registry_error,
)
from sdk.trust_types import RegistryError

ARCHIVES_PATH = "/v1/archives"
"""Prefix of the archive API."""


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


@dataclass(frozen=True)
class AuditState:
    """A fixity audit of one package asked for on demand, where it is and what it found."""

    audit_id: str
    """The audit."""
    package_id: str
    """The package audited."""
    status: str
    """``queued``, ``running``, ``finished`` or ``failed``."""
    location: str
    """Where it is polled (:meth:`ArchiveClient.audit`)."""
    created: bool | None
    """On a request: False when an audit of the package was queued or running already
    (this is that one); None when read."""
    ok: bool | None
    """Once finished: whether every file is as anchored."""
    findings: list[dict[str, Any]]
    """Once finished: each file changed, truncated, missing, added or renamed (its path,
    kind, anchored and found SM3)."""
    versions: list[dict[str, Any]]
    """Once finished: per version audited, ``ok`` and the 四性 report of the audit."""
    error: str | None
    """When failed: why."""
    files: int | None
    """Once finished: files hashed."""

    @property
    def settled(self) -> bool:
        """Whether the audit is over (finished or failed)."""
        return self.status in ("finished", "failed")

    @property
    def changed_paths(self) -> list[str]:
        """The paths the findings name, in order."""
        return [str(finding["path"]) for finding in self.findings]

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> AuditState:
        """Parse the registry's answer."""
        return cls(
            audit_id=str(value["auditId"]),
            package_id=str(value["packageId"]),
            status=str(value["status"]),
            location=str(value["location"]),
            created=value.get("created"),
            ok=value.get("ok"),
            findings=list(value.get("findings") or []),
            versions=list(value.get("versions") or []),
            error=value.get("error"),
            files=value.get("files"),
        )


@dataclass(frozen=True)
class PackageFile:
    """One stored file of a package version."""

    path: str
    """Its path in the bag, exactly as stored."""
    size: int
    """Bytes."""
    sm3: str
    """Its SM3 (hex), as anchored."""
    anchoring: dict[str, Any]
    """The record committing to it (``recordId``, ``status``), its ``batch`` and
    ``leafIndex``, ``batchRoot``, ``txHash`` and ``blockNumber`` once anchored, and
    ``proof``, the record's path (its proof bundle)."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> PackageFile:
        """Parse one file of a page."""
        return cls(str(value["path"]), int(value["size"]), str(value["sm3"]), value["anchoring"])


@dataclass(frozen=True)
class FilePage:
    """A page of a version's files, by path."""

    package_id: str
    """The package."""
    version: int
    """The version listed."""
    files: list[PackageFile]
    """The files of this page."""
    next_cursor: str | None
    """The cursor of the next page; None after the last."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> FilePage:
        """Parse the registry's answer."""
        return cls(
            package_id=str(value["packageId"]),
            version=int(value["version"]),
            files=[PackageFile.from_json(item) for item in value["files"]],
            next_cursor=value.get("next"),
        )


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
    """``GET /v1/archives/packages/{id}/report``: a version's 四性 report; raises
    ValueError for a version below 1."""
    check_version(version)
    query = "" if version is None else f"?{urlencode({'version': version})}"
    return Call(json_request("GET", package_path(package_id, "/report") + query), dict)


def report_pdf_request(package_id: str, version: int | None) -> RegistryRequest:
    """``GET /v1/archives/packages/{id}/report.pdf``; raises ValueError for a version
    below 1."""
    check_version(version)
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
    """``POST /v1/archives/packages/{id}/dip``: answers the DIP zip; raises ValueError
    for a version below 1."""
    check_version(version)
    payload: dict[str, Any] = {"purpose": purpose}
    if version is not None:
        payload["version"] = version
    return json_request("POST", package_path(package_id, "/dip"), payload)


def health_call() -> Call[ArchiveHealth]:
    """``GET /v1/archives/health``: the last fixity audit."""
    return Call(json_request("GET", f"{ARCHIVES_PATH}/health"), ArchiveHealth.from_json)


def audit_request_call(package_id: str, reason: str | None) -> Call[AuditState]:
    """``POST /v1/archives/packages/{id}/audits``: a fixity audit of the package now."""
    payload = {} if reason is None else {"reason": reason}
    request = json_request("POST", package_path(package_id, "/audits"), payload)
    return Call(request, AuditState.from_json)


def audit_call(package_id: str, audit_id: str) -> Call[AuditState]:
    """``GET /v1/archives/packages/{id}/audits/{audit}``."""
    path = package_path(package_id, f"/audits/{quote(audit_id, safe='')}")
    return Call(json_request("GET", path), AuditState.from_json)


MAX_FILES_PAGE = 1_000
"""Most files the registry answers in one page."""


def files_call(
    package_id: str, *, version: int | None, limit: int, cursor: str | None
) -> Call[FilePage]:
    """``GET /v1/archives/packages/{id}/files``: one page; raises ValueError for a limit
    outside 1 to :data:`MAX_FILES_PAGE`."""
    if not 1 <= limit <= MAX_FILES_PAGE:
        raise ValueError(f"limit {limit} is not 1 to {MAX_FILES_PAGE}")
    check_version(version)
    query: dict[str, str | int] = {"limit": limit}
    if version is not None:
        query["version"] = version
    if cursor is not None:
        query["cursor"] = cursor
    request = json_request("GET", package_path(package_id, f"/files?{urlencode(query)}"))
    return Call(request, FilePage.from_json)


def destroyed_roots(package: Package) -> list[str]:
    """The roots a disposal destroys: every version not disposed of, in version order."""
    return [item.root for item in package.versions if item.disposed_at is None]


# -- settling ------------------------------------------------------------------------------


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
    "MAX_FILES_PAGE",
    "UPLOAD_USED_UP",
    "ArchiveHealth",
    "ArchiveRefused",
    "AuditState",
    "BagRejected",
    "FilePage",
    "IngestRefused",
    "NotPackageOwner",
    "Package",
    "PackageConflict",
    "PackageFile",
    "PackageNotFound",
    "RetentionNotExpired",
    "RetentionPermanent",
    "StoredVersion",
    "Upload",
    "UploadTooLarge",
    "VersionInfo",
    "approval_json",
    "archive_error",
    "audit_call",
    "audit_request_call",
    "check_version",
    "destroyed_roots",
    "dip_request",
    "disposal_call",
    "files_call",
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
