"""``/v1/records``: notarize a record, read it back with its proof bundle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from registry.deps import ClientDep, StateDep
from registry.errors import Forbidden
from registry.notarization import check_idempotency_key, create_record, record_view
from registry.schemas import RecordAccepted, RecordCreate, RecordPublic

router = APIRouter(prefix="/v1/records", tags=["records"])

NOTARIZE_ROLE = "notarize"
"""The client role needed to notarize."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed by a registered client"}
}


@router.post(
    "",
    status_code=202,
    response_model=RecordAccepted,
    responses={
        **_ERRORS,
        200: {"model": RecordAccepted, "description": "idempotent replay of an earlier request"},
        409: {"description": "Idempotency-Key reused with another body"},
        413: {"description": "body too large"},
    },
)
async def notarize(
    payload: RecordCreate,
    request: Request,
    client: ClientDep,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept a record for notarization; it is sealed into the next batch and anchored.
    Answers 202 with the record id at once (200 for a replay of the same request)."""
    if NOTARIZE_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not notarize")
    key = check_idempotency_key(idempotency_key)
    body = await request.body()
    accepted, created = await run_in_threadpool(create_record, state.db, client, payload, key, body)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202 if created else 200)


@router.get("/{record_id}", response_model=RecordPublic, responses={**_ERRORS, 404: {}})
async def get_record(record_id: str, client: ClientDep, state: StateDep) -> RecordPublic:
    """The record's status, batch and, once anchored, its proof bundle."""
    return await run_in_threadpool(record_view, state.db, state.chain, client, record_id)
