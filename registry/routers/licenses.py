"""``/v1/licenses``: issue e-licenses signed by their department and change their status on
LicenseRegistry, read them with their live on-chain status, QR codes (public), dynamic
tokens and issuance bundles; what a department signs for; what a department issued (an
auditor's listing)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from registry.deps import ClientDep, StateDep
from registry.errors import Forbidden, InvalidInput, ServiceUnavailable
from registry.issuers import issuer_codes_of
from registry.license_schemas import (
    MAX_LICENSE_PAGE,
    DepartmentLicensesPublic,
    LicenseSigningFacts,
    SignedLicenseChange,
    SignedLicenseCreate,
    SignedLicensePublic,
    SignedLicenseStatusChange,
)
from registry.license_service import LicenseService, WriteOutcome, request_hash
from registry.license_signatures import department_licenses
from registry.models import Client, LicenseAction
from registry.notarization import check_idempotency_key
from registry.schemas import (
    LICENSE_IDENTIFIER_MAX,
    TokenPublic,
    TokenRequest,
)
from registry.threads import run_blocking
from sdk.bundle import DEPARTMENT_SIGNATURE_PREFIX
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.identifiers import InvalidIdentifier, validate_uscc
from sdk.license_signing import LICENSE_COMMITMENT_PREFIX

router = APIRouter(prefix="/v1/licenses", tags=["licenses"])

LICENSES_ROLE = "licenses"
"""The client role needed to issue and change licenses and to ask for tokens."""
READ_ROLES = frozenset({"licenses", "verify"})
"""Roles that may read a license."""
AUDIT_ROLE = "verify"
"""The client role needed to list what a department issued."""

QR_CACHE_CONTROL = "public, max-age=86400"
"""A static QR code depends only on the identifier (and this site's address)."""

IdentifierPath = Annotated[
    str, Path(min_length=1, max_length=LICENSE_IDENTIFIER_MAX, description="e-license identifier")
]
IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key")]

_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": SignedLicensePublic, "description": "idempotent replay of an earlier request"},
    202: {"model": SignedLicensePublic, "description": "stored and sent; receipt not in yet"},
    401: {"description": "not signed by a registered client"},
    403: {"description": "the license belongs to another department"},
    404: {"description": "no such license"},
    409: {"description": "identifier used, transition refused, or Idempotency-Key reused"},
    413: {"description": "body too large"},
    503: {"description": "the chain cannot be reached; nothing stored"},
}


def get_license_service(state: StateDep, request: Request) -> LicenseService:
    """The application's license service, made on first use for the running database."""
    service: LicenseService | None = getattr(request.app.state, "licenses", None)
    if service is None or service.db is not state.db:
        service = LicenseService(state.db, state.chain, state.settings.public_base_url)
        request.app.state.licenses = service
    return service


ServiceDep = Annotated[LicenseService, Depends(get_license_service)]


def base_url_of(request: Request, service: LicenseService) -> str:
    """The site's base URL for links and QR codes: the configured public one, else as the
    client reached it."""
    return service.site_url(str(request.base_url))


def _require(client: Client, roles: frozenset[str]) -> None:
    if not roles & set(client.roles):
        raise Forbidden(f"client {client.id} lacks the role for licenses", code="missing_role")


def _hash_signed(request: Request, payload: SignedLicenseCreate | SignedLicenseChange) -> str:
    """What tells a retry from another request under one key, for a signed license: the
    request as parsed, without the department's signature (SM2 signatures are randomised,
    so a retry signed again differs only there)."""
    value = payload.model_dump(mode="json")
    inner = value.get("license", value)
    inner.pop("department_signature", None)
    body = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return request_hash(request.method, request.url.path, body)


def _answer(outcome: WriteOutcome) -> JSONResponse:
    status = 200 if not outcome.created else 201 if outcome.confirmed else 202
    return JSONResponse(outcome.license.model_dump(mode="json"), status_code=status)


@router.get("/signing", response_model=LicenseSigningFacts, responses={401: {}})
async def license_signing_facts(client: ClientDep, state: StateDep) -> LicenseSigningFacts:
    """What the calling department signs to issue a license: the chain id, the prefixes
    of the commitment and of the signature, and the name and issuer codes the registry
    records its licenses under (the metadata hash covers the name)."""
    try:
        chain_id = int(await run_blocking(state.chain.chain_id))
    except (ChainUnavailable, RpcCallFailed) as exc:
        raise ServiceUnavailable(
            f"the chain id is not known yet: {exc}", code="chain_id_unknown"
        ) from None
    return LicenseSigningFacts(
        chainId=chain_id,
        signaturePrefix=DEPARTMENT_SIGNATURE_PREFIX.decode("ascii"),
        commitmentPrefix=LICENSE_COMMITMENT_PREFIX.decode("ascii"),
        issuerName=client.name,
        uscc=client.uscc,
        issuerCodes=sorted(issuer_codes_of(client)),
    )


@router.get(
    "/by-department/{uscc}",
    response_model=DepartmentLicensesPublic,
    responses={401: {}, 403: {}, 422: {}},
)
async def list_department_licenses(
    uscc: str,
    client: ClientDep,
    state: StateDep,
    after: str = "",
    limit: int = 100,
) -> DepartmentLicensesPublic:
    """Every license department ``uscc`` signed, by identifier, a page at a time: what it
    vouched for (for auditors; needs the verify role)."""
    if AUDIT_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not list licenses")
    try:
        code = validate_uscc(uscc)
    except InvalidIdentifier as exc:
        raise InvalidInput(f"uscc: {exc}", code="invalid_uscc") from None
    if not 1 <= limit <= MAX_LICENSE_PAGE or len(after) > LICENSE_IDENTIFIER_MAX:
        raise InvalidInput(
            f"limit is 1 to {MAX_LICENSE_PAGE}, after an identifier", code="invalid_page"
        )
    return await run_blocking(department_licenses, state.db, code, after=after, limit=limit)


@router.post("", status_code=201, response_model=SignedLicensePublic, responses=_WRITE_RESPONSES)
async def issue_license(
    payload: SignedLicenseCreate,
    request: Request,
    client: ClientDep,
    service: ServiceDep,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Issue an e-license: the identifier's check character and the holder's USCC or
    identity number are verified (422 otherwise); the department's signature over the
    license's commitment is checked (422 otherwise; see GET /v1/licenses/signing); the chain
    gets the identifier's hash, a salted holder commitment and the salted metadata hash.
    201 once confirmed on chain, 202 while its receipt is pending, 200 for a replay."""
    _require(client, frozenset({LICENSES_ROLE}))
    key = check_idempotency_key(idempotency_key)
    outcome = await run_blocking(
        service.issue,
        client,
        payload,
        key,
        _hash_signed(request, payload),
        base_url_of(request, service),
    )
    return _answer(outcome)


@router.get(
    "/{identifier}",
    response_model=SignedLicensePublic,
    responses={401: {}, 403: {}, 404: {}},
)
async def get_license(
    identifier: IdentifierPath, request: Request, client: ClientDep, service: ServiceDep
) -> SignedLicensePublic:
    """The license, its status and history read from the chain now (verdict UNAVAILABLE
    when the chain cannot be reached — never "revoked"), and its links."""
    _require(client, READ_ROLES)
    return await run_blocking(service.view, client, identifier, base_url_of(request, service))


@router.post(
    "/{identifier}/change",
    status_code=201,
    response_model=SignedLicensePublic,
    responses=_WRITE_RESPONSES,
)
async def change_license(
    identifier: IdentifierPath,
    payload: SignedLicenseChange,
    request: Request,
    client: ClientDep,
    service: ServiceDep,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Replace the license by a new version (new identifier, same type and issuer codes),
    its commitment signed by the department with this license as predecessor; answers with
    the new version."""
    _require(client, frozenset({LICENSES_ROLE}))
    key = check_idempotency_key(idempotency_key)
    outcome = await run_blocking(
        service.change,
        client,
        identifier,
        payload.license,
        payload.reason,
        key,
        _hash_signed(request, payload),
        base_url_of(request, service),
    )
    return _answer(outcome)


def _hash_status_change(request: Request, payload: SignedLicenseStatusChange) -> str:
    """What tells a retry from another request under one key, for a signed status change:
    the action and its reason. A retry signs again (a new SM2 signature, and a later
    history position once the first attempt went through), and must still replay."""
    body = json.dumps({"reason": payload.reason}, sort_keys=True).encode()
    return request_hash(request.method, request.url.path, body)


def _add_transition_route(action: LicenseAction) -> None:
    async def transition(
        identifier: IdentifierPath,
        payload: SignedLicenseStatusChange,
        request: Request,
        client: ClientDep,
        service: ServiceDep,
        idempotency_key: IdempotencyHeader = None,
    ) -> JSONResponse:
        _require(client, frozenset({LICENSES_ROLE}))
        key = check_idempotency_key(idempotency_key)
        outcome = await run_blocking(
            service.transition,
            client,
            identifier,
            action,
            payload,
            key,
            _hash_status_change(request, payload),
            base_url_of(request, service),
        )
        return _answer(outcome)

    router.add_api_route(
        f"/{{identifier}}/{action.value}",
        transition,
        methods=["POST"],
        status_code=201,
        response_model=SignedLicensePublic,
        responses=_WRITE_RESPONSES,
        name=f"{action.value}_license",
        summary=f"{action.value.capitalize()} a license",
        description=(
            f"{action.value.capitalize()} the license with a reason code, signed by the "
            "issuing department over the change's commitment (license, action, reason, "
            "history position, chain id; see the request body). Only the issuing department "
            "may (403). 422 department_signature_required / bad_department_signature; 409 "
            "when its current status does not allow it, or stale_status_sequence when the "
            "signed history position is not the license's next one."
        ),
    )


for _action in (
    LicenseAction.SUSPEND,
    LicenseAction.RESUME,
    LicenseAction.REVOKE,
    LicenseAction.EXPIRE,
):
    _add_transition_route(_action)


@router.get(
    "/{identifier}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {}},
)
async def license_qr_png(
    identifier: IdentifierPath, request: Request, service: ServiceDep
) -> Response:
    """The static QR code (PNG) linking to the license's verify page. Public."""
    images = await run_blocking(service.qr, identifier, base_url_of(request, service))
    return Response(images.png, media_type="image/png", headers={"Cache-Control": QR_CACHE_CONTROL})


@router.get(
    "/{identifier}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, 404: {}},
)
async def license_qr_svg(
    identifier: IdentifierPath, request: Request, service: ServiceDep
) -> Response:
    """The static QR code (SVG). Public."""
    images = await run_blocking(service.qr, identifier, base_url_of(request, service))
    return Response(
        images.svg, media_type="image/svg+xml", headers={"Cache-Control": QR_CACHE_CONTROL}
    )


@router.post(
    "/{identifier}/token",
    response_model=TokenPublic,
    responses={401: {}, 403: {}, 404: {}},
)
async def license_token(
    identifier: IdentifierPath,
    payload: TokenRequest,
    request: Request,
    client: ClientDep,
    service: ServiceDep,
) -> JSONResponse:
    """A short-lived SM2-signed token for the license, its verify URL ``/v/{token}`` and a
    QR code of that URL (issuing department only)."""
    _require(client, frozenset({LICENSES_ROLE}))
    token = await run_blocking(
        service.token, client, identifier, payload.lifetime_seconds, base_url_of(request, service)
    )
    return JSONResponse(token.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get("/{identifier}/bundle", responses={401: {}, 403: {}, 404: {}, 503: {}})
async def license_bundle(
    identifier: IdentifierPath, client: ClientDep, service: ServiceDep
) -> dict[str, Any]:
    """The offline proof of the license's issuance (sdk.bundle.LicenseBundle JSON): the
    LicenseRegistry transaction, its receipt, inclusion proofs, the certified block header
    and the issuer key record. 503 until the block is certified."""
    _require(client, READ_ROLES)
    return await run_blocking(service.issuance_bundle, identifier)
