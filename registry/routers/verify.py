"""``/v1/verify``: separate verdicts on a document or a digest."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from registry.deps import ClientDep, StateDep
from registry.errors import Forbidden
from registry.notarization import verify
from registry.schemas import VerificationPublic, VerifyRequest

router = APIRouter(prefix="/v1/verify", tags=["verify"])

VERIFY_ROLE = "verify"
"""The client role needed to verify."""


@router.post("", response_model=VerificationPublic, responses={401: {}, 413: {}})
async def verify_document(
    payload: VerifyRequest, client: ClientDep, state: StateDep
) -> VerificationPublic:
    """Integrity, issuance, status and issuer verdicts, each VALID, INVALID or
    UNAVAILABLE (the chain could not be asked — never taken as revoked)."""
    if VERIFY_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not verify")
    return await run_in_threadpool(verify, state.db, state.chain, state.caches, payload)
