"""``/v1/verify``: separate verdicts on a document or a digest.

The busiest authenticated endpoint, so it takes the request as it is rather than through
FastAPI's parameter and dependency machinery (a fifth of its cost): it checks the signature,
parses the body with the same pydantic model (same 422), spends the nonce and answers. The
OpenAPI document describes the body all the same."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from registry.deps import get_state, signed_payload
from registry.errors import Forbidden
from registry.schemas import VerificationPublic, VerifyRequest
from registry.threads import run_verifying
from registry.verification import verify_text

router = APIRouter(prefix="/v1/verify", tags=["verify"])

VERIFY_ROLE = "verify"
"""The client role needed to verify."""

_BODY = {
    "required": True,
    "content": {"application/json": {"schema": VerifyRequest.model_json_schema()}},
}


@router.post(
    "",
    response_model=VerificationPublic,
    responses={401: {}, 403: {}, 413: {}, 422: {}},
    openapi_extra={"requestBody": _BODY},
)
async def verify_document(request: Request) -> Response:
    """Integrity, issuance, status and issuer verdicts, each VALID, INVALID or
    UNAVAILABLE (the chain could not be asked — never taken as revoked). Body: a
    ``VerifyRequest`` (digest or document, optional record id)."""
    state = await get_state(request)
    signed, payload = await signed_payload(request, state, VerifyRequest)
    await state.intake.spend_nonce(signed.nonce)
    if VERIFY_ROLE not in signed.client.roles:
        raise Forbidden(f"client {signed.client.id} may not verify")
    # The answer's JSON text, its proof bundle joined from text kept per record and batch.
    body = await run_verifying(verify_text, state.db, state.chain, state.caches, payload)
    return Response(body, media_type="application/json")
