"""``GET /v1/archives/packages/{id}/files``: a package version's files a page at a time,
each with its path as stored, size, SM3 and anchoring (:mod:`registry.archives.listing`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from registry.archives.listing import DEFAULT_FILES_PAGE, MAX_CURSOR, MAX_FILES_PAGE, file_page
from registry.deps import ClientDep, StateDep
from registry.routers.archive_common import AUTH_RESPONSES, archive_service, need_role
from registry.threads import run_blocking

READ_ROLE = "verify"
"""The client role needed to list a package's files (as to read the package)."""

router = APIRouter(tags=["archives"])
"""Included in :data:`registry.routers.archives.router` (its prefix)."""


@router.get(
    "/packages/{package_id}/files",
    responses={**AUTH_RESPONSES, 404: {"description": "no such package or version"}},
)
async def list_package_files(
    package_id: str,
    request: Request,
    client: ClientDep,
    state: StateDep,
    version: Annotated[int | None, Query(ge=1, description="default: the latest")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_FILES_PAGE, description="files in this page")
    ] = DEFAULT_FILES_PAGE,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR, description="``next`` of the page before")
    ] = None,
) -> dict[str, Any]:
    """A version's files by path, ``limit`` at a time: each file's path exactly as stored,
    size, SM3 and anchoring (its record, batch and leaf index, the anchoring transaction
    once anchored, and the record's proof link). ``next`` is the cursor of the following
    page, null after the last."""
    need_role(client, READ_ROLE)
    service = archive_service(request, state)
    page = await run_blocking(
        file_page, service, package_id, version=version, cursor=cursor, limit=limit
    )
    return page.to_json()
