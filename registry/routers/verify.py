"""``/v1/verify``: separate verdicts on a document or a digest."""

from __future__ import annotations

from fastapi import APIRouter, Response

from registry.deps import ClientDep, StateDep
from registry.errors import Forbidden
from registry.notarization import verify
from registry.schemas import VerificationPublic, VerifyRequest
from registry.threads import run_blocking

router = APIRouter(prefix="/v1/verify", tags=["verify"])

VERIFY_ROLE = "verify"
"""The client role needed to verify."""


@router.post("", response_model=VerificationPublic, responses={401: {}, 413: {}})
async def verify_document(payload: VerifyRequest, client: ClientDep, state: StateDep) -> Response:
    """Integrity, issuance, status and issuer verdicts, each VALID, INVALID or
    UNAVAILABLE (the chain could not be asked — never taken as revoked)."""
    if VERIFY_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not verify")
    result = await run_blocking(verify, state.db, state.chain, state.caches, payload)
    # Built by verify() itself: serialized as it is, not validated a second time.
    return Response(result.model_dump_json(), media_type="application/json")
