"""``/v1/archives``: stream a bag to the archive's spool, ingest a BagIt package with the
department's signed records, migrate it to a new format version or dispose of it at the end
of its retention period (the owning department only), search the catalogue, read a package
with its custody history and 四性 report, take an access copy (DIP) that verifies offline,
and the archive's health (the last fixity audit). A package's files, a page at a time, are
listed by :mod:`registry.routers.archive_files`; a fixity audit of one package asked for
now is :mod:`registry.routers.archive_audits` (both included here)."""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from starlette.background import BackgroundTask

from archives.errors import ArchiveError
from archives.four_properties import FourPropertyReport
from archives.ingest import DisposalApproval, IngestRefused, remove_scratch
from archives.report_pdf import render_report_pdf
from registry.archives.access import AccessRequest, export_access_copy, search
from registry.archives.auditing import archive_health
from registry.archives.lifecycle import Department, check_owner, dispose_package
from registry.archives.lifecycle import migrate as migrate_version
from registry.archives.service import ArchiveService, utc_now
from registry.archives.upload import (
    UPLOAD_OPENAPI,
    authenticate_streamed,
    receive_bag,
    upload_answer,
)
from registry.authorizations.archive_provider import (
    ArchiveSubjectIn,
    record_archive_subject,
    subject_index_of,
)
from registry.authorizations.gateway import get_gateway
from registry.deps import ClientDep, StateDep
from registry.errors import ErrorResponse, InvalidInput, error_body
from registry.routers import archive_audits, archive_files
from registry.routers.archive_common import AUTH_RESPONSES, archive_service, need_role
from registry.threads import run_blocking

router = APIRouter(prefix="/v1/archives", tags=["archives"])

INGEST_ROLE = "notarize"
"""The client role needed to ingest (a department hands over its records)."""

READ_ROLE = "verify"
"""The client role needed to search and take access copies."""


class BagSource(BaseModel):
    """Where a request's bag is: streamed before (``upload``) or inline (``bag``)."""

    model_config = ConfigDict(extra="forbid")

    bag: str | None = Field(
        default=None, description="base64 of the bag as a zip or tar file (small bags)"
    )
    upload: str | None = Field(
        default=None,
        pattern="^[0-9a-f]{32}$",
        description="the id POST /v1/archives/uploads answered (the upload is used up)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> BagSource:
        if (self.bag is None) == (self.upload is None):
            raise ValueError("give exactly one of bag and upload")
        return self


class PackageIngest(BagSource):
    """``POST /v1/archives/packages``."""

    records: dict[str, dict[str, Any]] = Field(
        description="one signed record per stored file (by path) and '#root', as "
        "archives.submission.sign_bag makes them"
    )
    subject: ArchiveSubjectIn | None = Field(
        default=None,
        description="whom the package is about, if one enterprise or citizen: kept only as "
        "its blind index, for the data-sharing gateway",
    )


class MigrationRequest(BagSource):
    """``POST /v1/archives/packages/{id}/migrations``: the migrated bag (same 全宗号 and
    档号) and how it was made."""

    tool: str = Field(min_length=1, max_length=200, description="the migration tool")
    tool_version: str = Field(
        alias="toolVersion", min_length=1, max_length=100, description="its version"
    )
    parameters: dict[str, str | int | bool] = Field(
        default_factory=dict, max_length=50, description="how it was run"
    )
    records: dict[str, dict[str, Any]] = Field(
        description="the department's signed record per stored file and '#root' of the new "
        "version (archives.submission.sign_bag with version = latest + 1)"
    )


class ApprovalBody(BaseModel):
    """The disposal approval (鉴定销毁审批)."""

    model_config = ConfigDict(extra="forbid")

    approval_id: str = Field(alias="approvalId", min_length=1, max_length=200)
    approved_by: str = Field(alias="approvedBy", min_length=1, max_length=200)
    approved_at: AwareDatetime = Field(alias="approvedAt", description="with its UTC offset")
    reason: str = Field(min_length=1, max_length=500)


class DisposalRequest(BaseModel):
    """``POST /v1/archives/packages/{id}/disposal``."""

    model_config = ConfigDict(extra="forbid")

    approval: ApprovalBody
    records: dict[str, dict[str, Any]] = Field(
        description="{'disposal': the department's signed record of "
        "sdk.archive_bundle.disposal_commitment(package, approval, roots)}"
    )


class AccessCopyRequest(BaseModel):
    """``POST /v1/archives/packages/{id}/dip``."""

    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(min_length=1, max_length=500, description="why (logged)")
    version: int | None = Field(default=None, ge=1, description="default: the latest")


@router.post(
    "/uploads",
    status_code=201,
    responses={
        **AUTH_RESPONSES,
        409: {"description": "the department has as many unused uploads as are kept"},
        413: {"description": "the bag is larger than the upload cap"},
    },
    openapi_extra=UPLOAD_OPENAPI,
)
async def upload_bag(request: Request, state: StateDep) -> JSONResponse:
    """Stream a bag (zip or tar) into the archive's spool, for one ingest or migration to
    use by the id answered. Signed over the SM3 declared in X-Lianxin-Content-SM3; 413
    past the cap and 422 for a body that hashes otherwise, keeping nothing of it."""
    client = await authenticate_streamed(request, state)
    need_role(client, INGEST_ROLE)
    service = archive_service(request, state)
    await run_blocking(service.spool.purge_expired)
    try:
        upload = await receive_bag(request, service.spool, client.id)
    except ArchiveError as exc:
        raise InvalidInput(str(exc), code=exc.code) from exc
    return JSONResponse(upload_answer(upload, service.spool), status_code=201)


async def _with_bag(
    source: BagSource,
    client: Any,
    service: ArchiveService,
    use: Callable[[Path], Awaitable[JSONResponse]],
) -> JSONResponse:
    """``use(path of the bag)``; the bag (inline, or the upload named) is gone after,
    whatever the outcome. A failed 四性 check answers 422 with its report."""
    scratch = Path(tempfile.mkdtemp(prefix="lianxin-upload-"))
    try:
        if source.upload is not None:
            path = await run_blocking(service.spool.find, client.id, source.upload)
        else:
            try:
                data = base64.b64decode(source.bag or "", validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("bag is not base64", code="invalid_bag") from None
            path = scratch / "bag"
            path.write_bytes(data)
        return await use(path)
    except IngestRefused as refused:
        return ErrorResponse(
            error_body(refused.code, str(refused), refused.report.to_json()), status_code=422
        )
    except ArchiveError as exc:
        raise InvalidInput(str(exc), code=exc.code) from exc
    finally:
        if source.upload is not None:
            await run_blocking(service.spool.remove, client.id, source.upload)
        remove_scratch(scratch)


@router.post("/packages", status_code=201, responses=AUTH_RESPONSES)
async def ingest_package(
    payload: PackageIngest, request: Request, client: ClientDep, state: StateDep
) -> JSONResponse:
    """Ingest a bag (streamed before, or inline): validated with bagit, 四性-checked,
    stored write-once with SM3 manifests, every file anchored under the department's own
    signature. 422 with the report when a check fails."""
    need_role(client, INGEST_ROLE)
    service = archive_service(request, state)
    subject = None
    if payload.subject is not None:
        signer = get_gateway(request).sharing.signer
        subject = await run_blocking(subject_index_of, signer, payload.subject)

    async def ingest(source: Path) -> JSONResponse:
        answer = await run_blocking(service.ingest, client, source, payload.records, now=utc_now())
        if subject is not None:
            await run_blocking(
                record_archive_subject, state.db, answer.package_id, subject, client.id
            )
        return JSONResponse(
            {
                "packageId": answer.package_id,
                "version": answer.version,
                "root": answer.root,
                "report": answer.report.to_json(),
                "events": [event.to_json() for event in answer.events],
            },
            status_code=201,
        )

    return await _with_bag(payload, client, service, ingest)


_OWNER = {
    **AUTH_RESPONSES,
    404: {"description": "no such package"},
    409: {"description": "the package was disposed of, or is changing"},
}


@router.post("/packages/{package_id}/migrations", status_code=201, responses=_OWNER)
async def migrate_package(
    package_id: str,
    payload: MigrationRequest,
    request: Request,
    client: ClientDep,
    state: StateDep,
) -> JSONResponse:
    """A format migration: the migrated bag (same 全宗号 and 档号) becomes the next
    version, linked to the latest (tool, version, parameters kept), after the 四性 check
    at preservation (422 with the report if it fails). Only the department that ingested
    the package, signing every new file and the root; the old version stays."""
    need_role(client, INGEST_ROLE)
    service = archive_service(request, state)
    await run_blocking(check_owner, service, package_id, client)

    async def migrate(source: Path) -> JSONResponse:
        answer = await run_blocking(
            migrate_version,
            service,
            package_id,
            source,
            tool=payload.tool,
            tool_version=payload.tool_version,
            parameters=dict(payload.parameters),
            now=utc_now(),
            department=Department(client, payload.records),
        )
        lineage = answer.stored.lineage
        return JSONResponse(
            {
                "packageId": package_id,
                "version": answer.stored.version,
                "root": answer.stored.root,
                "lineage": None if lineage is None else lineage.to_json(),
                "report": answer.report.to_json(),
                "events": [event.to_json() for event in answer.events],
            },
            status_code=201,
        )

    return await _with_bag(payload, client, service, migrate)


@router.post("/packages/{package_id}/disposal", responses=_OWNER)
async def dispose_of_package(
    package_id: str,
    payload: DisposalRequest,
    request: Request,
    client: ClientDep,
    state: StateDep,
) -> dict[str, Any]:
    """Destroy a package whose retention period has run out, under an approval given by
    someone else (鉴定销毁), signed by the department that ingested it; leaves the
    tombstone (answered) and an anchored disposal event. 409 ``retention_permanent`` for
    a 永久 package (never destroyed), ``retention_not_expired`` before the period ends."""
    need_role(client, INGEST_ROLE)
    service = archive_service(request, state)
    await run_blocking(check_owner, service, package_id, client)
    approval = DisposalApproval(
        payload.approval.approval_id,
        payload.approval.approved_by,
        payload.approval.approved_at,
        payload.approval.reason,
    )
    return await run_blocking(
        dispose_package,
        service,
        package_id,
        approval,
        now=utc_now(),
        department=Department(client, payload.records),
    )


@router.get("/packages", responses=AUTH_RESPONSES)
async def search_packages(
    request: Request,
    client: ClientDep,
    state: StateDep,
    archival_code: Annotated[str | None, Query(max_length=500, description="档号 prefix")] = None,
    title: Annotated[str | None, Query(max_length=500, description="in 题名")] = None,
    fonds: Annotated[str | None, Query(max_length=16, description="全宗号")] = None,
    formed_from: Annotated[date | None, Query(description="形成时间 from")] = None,
    formed_to: Annotated[date | None, Query(description="形成时间 to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """The catalogue: packages matching every criterion given."""
    need_role(client, READ_ROLE)
    rows = await run_blocking(
        search,
        state.db,
        archival_code=archival_code,
        title=title,
        fonds=fonds,
        formed_from=formed_from,
        formed_to=formed_to,
        limit=limit,
    )
    return [
        {
            "packageId": row.package_id,
            "version": row.version,
            "档号": row.archival_code,
            "题名": row.title,
            "全宗号": row.fonds,
            "责任者": row.creator,
            "形成时间": [row.formed_first.isoformat(), row.formed_last.isoformat()],
            "保管期限": row.retention,
            "root": row.root,
        }
        for row in rows
    ]


@router.get("/packages/{package_id}", responses=AUTH_RESPONSES)
async def read_package(
    package_id: str, request: Request, client: ClientDep, state: StateDep
) -> dict[str, Any]:
    """A package's versions (roots, lineage, report hash) and its custody history."""
    need_role(client, READ_ROLE)
    service = archive_service(request, state)
    rows = await run_blocking(service.package_rows, package_id)
    history = await run_blocking(service.history, package_id)
    return {
        "packageId": package_id,
        "versions": [
            {
                "version": row.version,
                "root": row.root,
                "reportSm3": row.report_sm3,
                "lineage": None if row.lineage_json is None else json.loads(row.lineage_json),
                "disposedAt": None if row.disposed_at is None else row.disposed_at.isoformat(),
            }
            for row in rows
        ],
        "events": [event.to_json() for event in history],
    }


@router.get("/packages/{package_id}/report", responses=AUTH_RESPONSES)
async def package_report(
    package_id: str,
    request: Request,
    client: ClientDep,
    state: StateDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    """The 四性 report of a version's ingest (JSON; its SM3 is anchored with the package)."""
    need_role(client, READ_ROLE)
    rows = await run_blocking(archive_service(request, state).package_rows, package_id)
    row = rows[-1] if version is None else next((r for r in rows if r.version == version), None)
    if row is None:
        raise InvalidInput(f"package {package_id} has no version {version}")
    return JSONResponse(json.loads(row.report_json))


@router.get("/packages/{package_id}/report.pdf", responses=AUTH_RESPONSES)
async def package_report_pdf(
    package_id: str,
    request: Request,
    client: ClientDep,
    state: StateDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The 四性 report as a Chinese PDF; it renders to the same bytes every time, whose SM3
    the ingestion event records (``reportPdfSm3``)."""
    need_role(client, READ_ROLE)
    rows = await run_blocking(archive_service(request, state).package_rows, package_id)
    row = rows[-1] if version is None else next((r for r in rows if r.version == version), None)
    if row is None:
        raise InvalidInput(f"package {package_id} has no version {version}")
    report = FourPropertyReport.from_json(json.loads(row.report_json))
    description = {"档号": row.archival_code, "题名": row.title, "全宗号": row.fonds}
    pdf = await run_blocking(render_report_pdf, report, description)
    return Response(pdf, media_type="application/pdf")


@router.post("/packages/{package_id}/dip", responses=AUTH_RESPONSES)
async def access_copy(
    package_id: str,
    payload: AccessCopyRequest,
    request: Request,
    client: ClientDep,
    state: StateDep,
) -> FileResponse:
    """An access copy (DIP zip) with every file's proof; logged as an access event."""
    need_role(client, READ_ROLE)
    service = archive_service(request, state)
    scratch = Path(tempfile.mkdtemp(prefix="lianxin-dip-"))
    target = scratch / f"{package_id}.dip.zip"
    try:
        await run_blocking(
            export_access_copy,
            service,
            state.caches,
            package_id,
            target,
            AccessRequest(requester=f"{client.name} ({client.uscc})", purpose=payload.purpose),
            now=utc_now(),
            version=payload.version,
        )
    except BaseException:
        remove_scratch(scratch)
        raise
    return FileResponse(
        target,
        media_type="application/zip",
        filename=target.name,
        background=BackgroundTask(remove_scratch, scratch),
    )


@router.get("/health")
async def health(request: Request, state: StateDep) -> dict[str, Any]:
    """The last fixity audit: ``ok``, ``fixity_failed`` (with findings) or ``not_audited``."""
    return await run_blocking(archive_health, archive_service(request, state))


router.include_router(archive_audits.router)
router.include_router(archive_files.router)
