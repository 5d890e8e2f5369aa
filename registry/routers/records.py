"""``/v1/records``: notarize a record, read it back with its proof bundle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from registry.deps import ClientDep, SignedDep, StateDep
from registry.errors import Forbidden, PayloadTooLarge, RegistryError
from registry.notarization import (
    MAX_IDEMPOTENCY_KEY,
    check_idempotency_key,
    prepare_record,
    prepare_records,
    record_view,
)
from registry.schemas import (
    RecordAccepted,
    RecordBulkAccepted,
    RecordBulkCreate,
    RecordCreate,
    RecordPublic,
)
from registry.threads import run_blocking

router = APIRouter(prefix="/v1/records", tags=["records"])

NOTARIZE_ROLE = "notarize"
"""The client role needed to notarize."""

MAX_BULK_IDEMPOTENCY_KEY = MAX_IDEMPOTENCY_KEY - 8
"""Longest Idempotency-Key of a bulk request (its records are keyed ``<key>#<index>``)."""

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
            record = await run_blocking(prepare_record, signed.client, payload, key, body)
    except RegistryError:
        # A refused request spends its nonce all the same: replaying it gets 401.
        await state.intake.spend_nonce(signed.nonce)
        raise
    accepted, created = await state.intake.accept_record(signed.nonce, record)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202 if created else 200)


@router.post(
    "/bulk",
    status_code=202,
    response_model=RecordBulkAccepted,
    responses={
        **_ERRORS,
        200: {
            "model": RecordBulkAccepted,
            "description": "idempotent replay of an earlier request",
        },
        409: {"description": "Idempotency-Key reused with another body"},
        413: {"description": "body too large, or more records than max_bulk_records"},
    },
)
async def notarize_bulk(
    payload: RecordBulkCreate,
    request: Request,
    signed: SignedDep,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept many records in one request (a department's daily upload, say): all are
    stored, or none. Answers 202 with one entry per record, in request order, once they
    are durably stored (200 for a replay of the same request under the same key). Each
    record is sealed and anchored like one sent alone."""
    try:
        if NOTARIZE_ROLE not in signed.client.roles:
            raise Forbidden(f"client {signed.client.id} may not notarize")
        limit = state.settings.max_bulk_records
        if len(payload.records) > limit:
            raise PayloadTooLarge(
                f"{len(payload.records)} records in one request; at most {limit}",
                code="too_many_records",
            )
        key = check_idempotency_key(idempotency_key, MAX_BULK_IDEMPOTENCY_KEY)
        body = await request.body()
        # Hashing and committing many records would hold up every other request on the loop.
        records = await run_blocking(prepare_records, signed.client, payload.records, key, body)
    except RegistryError:
        await state.intake.spend_nonce(signed.nonce)
        raise
    answers = await state.intake.accept_records(signed.nonce, records)
    created = any(new for _, new in answers)
    return JSONResponse(
        {"records": [accepted.model_dump(mode="json") for accepted, _ in answers]},
        status_code=202 if created else 200,
    )


@router.get("/{record_id}", response_model=RecordPublic, responses={**_ERRORS, 404: {}})
async def get_record(record_id: str, client: ClientDep, state: StateDep) -> RecordPublic:
    """The record's status, batch and, once anchored, its proof bundle."""
    return await run_blocking(record_view, state.db, state.chain, state.caches, client, record_id)
