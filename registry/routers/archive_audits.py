"""``POST /v1/archives/packages/{id}/audits``: a fixity audit of one package now, asked for
by the department that ingested it (or a client with the ``archive_audit`` role); answered
202 with where to poll it, ``GET /v1/archives/packages/{id}/audits/{audit}``, which gives
its result once finished: the files found changed and the 四性 report of each version
(:mod:`registry.archives.audit_requests`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from registry.archives.audit_requests import (
    MAX_REASON,
    check_auditor,
    find_audit,
    request_audit,
)
from registry.archives.service import utc_now
from registry.deps import ClientDep, StateDep
from registry.routers.archive_common import AUTH_RESPONSES, archive_service
from registry.threads import run_blocking

router = APIRouter(tags=["archives"])
"""Included in :data:`registry.routers.archives.router` (its prefix)."""


class AuditRequest(BaseModel):
    """``POST /v1/archives/packages/{id}/audits`` (the body may be ``{}``)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None, min_length=1, max_length=MAX_REASON, description="why (kept with it)"
    )


_AUDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "no such package (or audit)"},
}


@router.post(
    "/packages/{package_id}/audits",
    status_code=202,
    responses={
        **_AUDIT_RESPONSES,
        409: {"description": "the package was disposed of"},
    },
)
async def request_package_audit(
    package_id: str,
    payload: AuditRequest,
    request: Request,
    client: ClientDep,
    state: StateDep,
) -> JSONResponse:
    """Queue a fixity audit of every stored version of the package, run by the archive's
    audit worker as the scheduled audits are (stopped at shutdown and continued after).
    Answers 202 with the audit's id and ``location`` (also the Location header); asked
    again while it is queued or running, the same audit (``created`` false)."""
    service = archive_service(request, state)
    view, created = await run_blocking(
        request_audit, service, package_id, client, payload.reason, now=utc_now()
    )
    return JSONResponse(
        view | {"created": created}, status_code=202, headers={"Location": view["location"]}
    )


@router.get("/packages/{package_id}/audits/{audit_id}", responses=_AUDIT_RESPONSES)
async def read_package_audit(
    package_id: str, audit_id: str, request: Request, client: ClientDep, state: StateDep
) -> dict[str, Any]:
    """A requested audit: ``queued``, ``running``, ``finished`` (``ok``, the ``findings``
    naming each file changed, missing or added, and the 四性 report of each version) or
    ``failed`` (``error``)."""
    service = archive_service(request, state)
    await run_blocking(check_auditor, service, package_id, client)
    return await run_blocking(find_audit, service, package_id, audit_id)
