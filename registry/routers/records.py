"""``/v1/records``: notarize a record signed by its department, read it back with its
history and proof bundle, revoke it; what a department signs for; what a department vouched
for (an auditor's listing)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from registry.deps import ClientDep, SignedDep, StateDep
from registry.errors import (
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    RegistryError,
    ServiceUnavailable,
)
from registry.notarization import (
    MAX_IDEMPOTENCY_KEY,
    check_idempotency_key,
    department_records,
    prepare_record,
    prepare_records,
    record_view,
)
from registry.record_revocation import request_revocation, revoke_signed_by
from registry.record_schemas import (
    MAX_DEPARTMENT_PAGE,
    DepartmentRecordsPublic,
    KeyCompromiseRevoke,
    KeyCompromiseRevoked,
    RecordRevoke,
    SignedRecordAccepted,
    SignedRecordBulkCreate,
    SignedRecordCreate,
    SignedRecordPublic,
    SigningFacts,
)
from registry.schemas import RecordBulkAccepted
from registry.threads import run_blocking
from sdk.bundle import BUNDLE_VERSION, DEPARTMENT_SIGNATURE_PREFIX
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.identifiers import InvalidIdentifier, validate_uscc

router = APIRouter(prefix="/v1/records", tags=["records"])

NOTARIZE_ROLE = "notarize"
"""The client role needed to notarize and revoke."""

AUDIT_ROLE = "verify"
"""The client role needed to list what a department vouched for."""

MAX_BULK_IDEMPOTENCY_KEY = MAX_IDEMPOTENCY_KEY - 8
"""Longest Idempotency-Key of a bulk request (its records are keyed ``<key>#<index>``)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed by a registered client"}
}


@router.post(
    "",
    status_code=202,
    response_model=SignedRecordAccepted,
    responses={
        **_ERRORS,
        200: {
            "model": SignedRecordAccepted,
            "description": "idempotent replay of an earlier request",
        },
        409: {"description": "Idempotency-Key reused with another body"},
        413: {"description": "body too large"},
        422: {"description": "invalid, or not signed by the department (see /v1/records/signing)"},
    },
)
async def notarize(
    payload: SignedRecordCreate,
    request: Request,
    signed: SignedDep,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept a record for notarization, its commitment signed by the department; it is
    sealed into the next batch and anchored. Answers 202 with the record id once the record
    is durably stored (200 for a replay of the same request)."""
    try:
        if NOTARIZE_ROLE not in signed.client.roles:
            raise Forbidden(f"client {signed.client.id} may not notarize")
        key = check_idempotency_key(idempotency_key)
        chain_id = await _chain_id(state)
        if payload.document is None:
            record = prepare_record(signed.client, payload, key, chain_id)
        else:
            # Hashing a large document would hold up every other request on the loop.
            record = await run_blocking(prepare_record, signed.client, payload, key, chain_id)
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
    payload: SignedRecordBulkCreate,
    request: Request,
    signed: SignedDep,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept many records in one request (a department's daily upload, say): all are
    stored, or none. Answers 202 with one entry per record, in request order, once they
    are durably stored (200 for a replay of the same request under the same key). Each
    record is sealed and anchored like one sent alone. The department signs each record,
    or — cheaper for both sides — the request once, over the Merkle root of the records'
    commitments (``department_signature`` beside ``records``; see GET /v1/records/signing)."""
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
        chain_id = await _chain_id(state)
        # Hashing and checking many signatures would hold up every other request on the loop.
        records = await run_blocking(
            prepare_records,
            signed.client,
            payload.records,
            key,
            chain_id,
            request_signature=payload.department_signature,
        )
    except RegistryError:
        await state.intake.spend_nonce(signed.nonce)
        raise
    answers = await state.intake.accept_records(signed.nonce, records)
    created = any(new for _, new in answers)
    return JSONResponse(
        {"records": [accepted.model_dump(mode="json") for accepted, _ in answers]},
        status_code=202 if created else 200,
    )


async def _chain_id(state: Any) -> int:
    """The chain id records are signed for (recorded at bootstrap, then kept in memory);
    ServiceUnavailable (503) while it is not recorded and the node cannot be asked."""
    try:
        return int(await run_blocking(state.chain.chain_id))
    except (ChainUnavailable, RpcCallFailed) as exc:
        raise ServiceUnavailable(
            f"the chain id is not known yet: {exc}", code="chain_id_unknown"
        ) from None


@router.get("/signing", response_model=SigningFacts)
async def signing_facts(state: StateDep) -> SigningFacts:
    """What a department signs to notarize a record: the chain id, the commitment scheme
    and the signature's prefix (no authentication needed)."""
    return SigningFacts(
        chainId=await _chain_id(state),
        commitmentScheme=BUNDLE_VERSION,
        signaturePrefix=DEPARTMENT_SIGNATURE_PREFIX.decode("ascii"),
    )


@router.get(
    "/by-department/{uscc}",
    response_model=DepartmentRecordsPublic,
    responses={**_ERRORS, 403: {}, 422: {}},
)
async def list_department_records(
    uscc: str,
    client: ClientDep,
    state: StateDep,
    after: int = 0,
    limit: int = 100,
) -> DepartmentRecordsPublic:
    """Every record department ``uscc`` signed, oldest first, a page at a time: what it
    vouched for (for auditors; needs the verify role)."""
    if AUDIT_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not list records")
    try:
        code = validate_uscc(uscc)
    except InvalidIdentifier as exc:
        raise InvalidInput(f"uscc: {exc}", code="invalid_uscc") from None
    if not 1 <= limit <= MAX_DEPARTMENT_PAGE or after < 0:
        raise InvalidInput(f"limit is 1 to {MAX_DEPARTMENT_PAGE}, after ≥ 0", code="invalid_page")
    return await run_blocking(department_records, state.db, code, after=after, limit=limit)


@router.post(
    "/revoke-by-key",
    status_code=202,
    response_model=KeyCompromiseRevoked,
    responses={**_ERRORS, 403: {}, 409: {}},
)
async def revoke_by_key(
    payload: KeyCompromiseRevoke, client: ClientDep, state: StateDep
) -> KeyCompromiseRevoked:
    """Revoke every anchored record of the client's department signed with a key (or any of
    its keys) within a window of time, for a key compromise; the revocations go on chain
    through the outbox (each record's status and history show them)."""
    if NOTARIZE_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not revoke records")
    queued = await run_blocking(
        revoke_signed_by,
        state.db,
        client,
        department_key=payload.department_key,
        since=payload.since,
        until=payload.until,
        reason=payload.reason,
    )
    return KeyCompromiseRevoked(queued=queued)


@router.get("/{record_id}", response_model=SignedRecordPublic, responses={**_ERRORS, 404: {}})
async def get_record(record_id: str, client: ClientDep, state: StateDep) -> SignedRecordPublic:
    """The record's status (``revoked`` once its revocation is on chain), history, batch
    and, once anchored, its proof bundle."""
    return await run_blocking(record_view, state.db, state.chain, state.caches, client, record_id)


@router.post(
    "/{record_id}/revoke",
    response_model=SignedRecordPublic,
    responses={
        **_ERRORS,
        202: {"model": SignedRecordPublic, "description": "revocation sent, not confirmed yet"},
        403: {"description": "the record was notarized by another department"},
        404: {},
        409: {"description": "the record is not anchored yet"},
    },
)
async def revoke_record(
    record_id: str, payload: RecordRevoke, client: ClientDep, state: StateDep
) -> JSONResponse:
    """Revoke a record the client's department notarized (a leaf revocation on the Notary,
    through the registry's outbox). 200 once confirmed on chain (or for a record revoked
    before), 202 while its transaction is not confirmed; another department gets 403 and
    nothing changes."""
    if NOTARIZE_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not revoke records")
    await run_blocking(request_revocation, state.db, state.chain, client, record_id, payload.reason)
    view = await run_blocking(record_view, state.db, state.chain, state.caches, client, record_id)
    confirmed = view.status == "revoked"
    return JSONResponse(view.model_dump(mode="json"), status_code=200 if confirmed else 202)
