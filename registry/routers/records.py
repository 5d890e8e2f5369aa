"""``/v1/records``: notarize a record, read it back with its proof bundle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from registry.deps import ClientDep, SignedDep, StateDep
from registry.errors import Forbidden, RegistryError
from registry.notarization import check_idempotency_key, prepare_record, record_view
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
    signed: SignedDep,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept a record for notarization; it is sealed into the next batch and anchored.
    Answers 202 with the record id once the record is durably stored (200 for a replay of
    the same request)."""
    try:
        if NOTARIZE_ROLE not in signed.client.roles:
            raise Forbidden(f"client {signed.client.id} may not notarize")
        key = check_idempotency_key(idempotency_key)
        body = await request.body()
        if payload.document is None:
            record = prepare_record(signed.client, payload, key, body)
        else:
            # Hashing a large document would hold up every other request on the loop.
            record = await run_in_threadpool(prepare_record, signed.client, payload, key, body)
    except RegistryError:
        # A refused request spends its nonce all the same: replaying it gets 401.
        await state.intake.spend_nonce(signed.nonce)
        raise
    accepted, created = await state.intake.accept_record(signed.nonce, record)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202 if created else 200)


@router.get("/{record_id}", response_model=RecordPublic, responses={**_ERRORS, 404: {}})
async def get_record(record_id: str, client: ClientDep, state: StateDep) -> RecordPublic:
    """The record's status, batch and, once anchored, its proof bundle."""
    return await run_in_threadpool(
        record_view, state.db, state.chain, state.caches, client, record_id
    )
