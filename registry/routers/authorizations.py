"""``/v1/authorizations``: data-sharing authorizations. A department asks for one; the
subject consents (an enterprise with its own key, a citizen through the identity
provider); the subject or a department party to it revokes it; its parties read it with
every anchored event and the accesses made under it. ``/v1/tracker`` is the enterprise's
side of the data tracker (its authorizations and who accessed its data). Every listing
answers in pages: ``limit`` entries at most and a ``next`` cursor to pass as ``after``
(:mod:`registry.authorizations.paging`)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, Request

from registry.authorizations.check_trail import subject_checks
from registry.authorizations.gateway import get_gateway
from registry.authorizations.models import AuthorizationRow
from registry.authorizations.paging import DEFAULT_LIMIT, AfterQuery, LimitQuery, Page
from registry.authorizations.repair_trail import subject_repairs
from registry.authorizations.schemas import (
    AccessList,
    AuthorizationCreate,
    AuthorizationList,
    AuthorizationPublic,
    CheckList,
    ConsentGive,
    RepairList,
)
from registry.authorizations.service import (
    DATA_ROLE,
    SUBJECT_ROLE,
    Sharing,
    authorization_view,
    authorizations_page,
    give_consent,
    may_see,
    request_authorization,
    revoke,
)
from registry.authorizations.tracker import (
    stream_accesses,
    subject_accesses,
    visible_authorizations,
)
from registry.deps import ClientDep
from registry.errors import Forbidden, NotFound
from registry.models import Client
from registry.threads import run_blocking

router = APIRouter(tags=["authorizations"])

T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed by a registered client"},
    403: {"description": "this client may not do this"},
}
_PAGED = {**_ERRORS, 422: {"description": "a cursor not of this listing, or a bad limit"}}


@router.post(
    "/v1/authorizations",
    status_code=201,
    response_model=AuthorizationPublic,
    responses={**_ERRORS, 422: {"description": "terms not valid"}},
)
async def ask(payload: AuthorizationCreate, client: ClientDep, request: Request) -> Any:
    """Ask for an authorization (the client's department must be its controller or
    recipient). Granted at once, with its grant anchored, when the legal basis needs no
    consent (statutory duty, investigation: the basis must be cited); otherwise
    ``requested`` until the subject consents."""
    sharing = get_gateway(request).sharing
    return await run_blocking(request_authorization, sharing, client, payload)


def _visible(request: Request, client: Client, authorization_id: str) -> None:
    sharing = get_gateway(request).sharing
    with sharing.db.read_session() as session:
        row = session.get(AuthorizationRow, authorization_id)
        if row is None or not may_see(sharing, row, client):
            raise NotFound(f"no authorization {authorization_id}", code="authorization_not_found")


@router.post(
    "/v1/authorizations/{authorization_id}/amend",
    status_code=201,
    response_model=AuthorizationPublic,
    responses={**_ERRORS, 404: {}, 422: {"description": "terms not valid, or not in force"}},
)
async def amend(
    authorization_id: str, payload: AuthorizationCreate, client: ClientDep, request: Request
) -> Any:
    """Ask for new terms replacing an authorization in force (same subject). Once granted
    (the subject's consent, as for a new one; at once for a basis needing none) the old one
    ends with an anchored ``amend`` event and the new one's grant is anchored."""
    sharing = get_gateway(request).sharing
    return await run_blocking(
        lambda: request_authorization(sharing, client, payload, amends=authorization_id)
    )


@router.get(
    "/v1/authorizations/{authorization_id}",
    response_model=AuthorizationPublic,
    responses={**_ERRORS, 404: {}},
)
async def get_authorization(authorization_id: str, client: ClientDep, request: Request) -> Any:
    """An authorization with its terms, consent evidence and anchored events (with proof
    bundles once anchored), for its parties."""
    await run_blocking(_visible, request, client, authorization_id)
    return await run_blocking(authorization_view, get_gateway(request).sharing, authorization_id)


@router.post(
    "/v1/authorizations/{authorization_id}/consent",
    response_model=AuthorizationPublic,
    responses={**_ERRORS, 404: {}, 422: {"description": "the signature does not verify"}},
)
async def consent(
    authorization_id: str, payload: ConsentGive, client: ClientDep, request: Request
) -> Any:
    """The subject's consent, signed with the calling client's own key: the enterprise
    (role ``subject``) over ``consent_sign_bytes``, or the identity provider (role
    ``identity``) over ``approval_sign_bytes`` for a citizen. The grant is anchored."""
    sharing = get_gateway(request).sharing
    return await run_blocking(give_consent, sharing, client, authorization_id, payload.signature)


def _revoke(request: Request, client: Client, authorization_id: str) -> AuthorizationPublic:
    sharing = get_gateway(request).sharing
    with sharing.db.read_session() as session:
        row = session.get(AuthorizationRow, authorization_id)
        if row is None or not may_see(sharing, row, client):
            raise NotFound(f"no authorization {authorization_id}", code="authorization_not_found")
        subject_index = row.subject_index
    is_subject = (
        SUBJECT_ROLE in client.roles
        and sharing.signer.subject_index("enterprise", client.uscc) == subject_index
    )
    return revoke(
        sharing,
        authorization_id,
        actor=client.id,
        subject_index=subject_index if is_subject else None,
    )


@router.post(
    "/v1/authorizations/{authorization_id}/revoke",
    response_model=AuthorizationPublic,
    responses={**_ERRORS, 404: {}},
)
async def revoke_authorization(authorization_id: str, client: ClientDep, request: Request) -> Any:
    """Revoke from this second on (the very next access is refused); the revocation is
    anchored. The subject and the departments party to it may revoke."""
    return await run_blocking(_revoke, request, client, authorization_id)


@router.get(
    "/v1/authorizations/{authorization_id}/accesses",
    response_model=AccessList,
    responses={**_PAGED, 404: {}},
)
async def authorization_accesses(
    authorization_id: str,
    client: ClientDep,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    after: AfterQuery = None,
) -> Any:
    """One page of the accesses made citing this authorization, allowed or refused, in
    hash-chain order, each with its signed receipt and proof bundle once anchored (parties
    only; investigations before their disclosure date are hidden from the subject)."""
    await run_blocking(_visible, request, client, authorization_id)
    sharing = get_gateway(request).sharing
    if DATA_ROLE not in client.roles:
        view = await run_blocking(authorization_view, sharing, authorization_id)
        if (view.terms.get("discloseAfter") or 0) > sharing.now():
            raise NotFound(f"no authorization {authorization_id}", code="authorization_not_found")
    page = await run_blocking(
        lambda: stream_accesses(sharing, authorization_id, limit=limit, after=after)
    )
    return AccessList(accesses=page.items, next=page.next)


@router.get("/v1/authorizations", response_model=AuthorizationList, responses=_PAGED)
async def list_authorizations(
    client: ClientDep,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    after: AfterQuery = None,
) -> Any:
    """One page of the department's authorizations (as controller or recipient), newest
    first."""
    if DATA_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} is no data-sharing department")
    sharing = get_gateway(request).sharing
    page = await run_blocking(
        lambda: authorizations_page(sharing, department=client.uscc, limit=limit, after=after)
    )
    return AuthorizationList(authorizations=page.items, next=page.next)


def _enterprise_index(request: Request, client: Client) -> str:
    if SUBJECT_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} does not act as a data subject")
    return get_gateway(request).sharing.signer.subject_index("enterprise", client.uscc)


class SubjectListing(Protocol[T]):
    """A tracker listing of one subject's entries (:mod:`registry.authorizations.tracker`)."""

    def __call__(
        self, sharing: Sharing, subject_index: str, *, limit: int, after: str | None
    ) -> Page[T]: ...


async def _own_page(
    request: Request,
    client: Client,
    listing: SubjectListing[T],
    limit: int,
    after: str | None,
) -> Page[T]:
    """One page of ``listing`` for the calling enterprise (role ``subject``)."""
    index = _enterprise_index(request, client)
    sharing = get_gateway(request).sharing
    return await run_blocking(lambda: listing(sharing, index, limit=limit, after=after))


@router.get("/v1/tracker/authorizations", response_model=AuthorizationList, responses=_PAGED)
async def tracker_authorizations(
    client: ClientDep,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    after: AfterQuery = None,
) -> Any:
    """One page of the enterprise's own authorizations (role ``subject``), newest first."""
    page = await _own_page(request, client, visible_authorizations, limit, after)
    return AuthorizationList(authorizations=page.items, next=page.next)


@router.get("/v1/tracker/checks", response_model=CheckList, responses=_PAGED)
async def tracker_checks(
    client: ClientDep,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    after: AfterQuery = None,
) -> Any:
    """Who checked the enterprise's credit (role ``subject``): one page of the credit
    checks made of it, newest first — checker, activity, date, answer — each with its
    signed receipt and proof bundle once anchored."""
    page = await _own_page(request, client, subject_checks, limit, after)
    return CheckList(checks=page.items, next=page.next)


@router.get("/v1/tracker/repairs", response_model=RepairList, responses=_PAGED)
async def tracker_repairs(
    client: ClientDep,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    after: AfterQuery = None,
) -> Any:
    """The credit repair applications the enterprise filed itself (role ``subject``), newest
    first, each with its state and the authority's decision."""
    page = await _own_page(request, client, subject_repairs, limit, after)
    return RepairList(repairs=page.items, next=page.next)


@router.get("/v1/tracker/accesses", response_model=AccessList, responses=_PAGED)
async def tracker_accesses(
    client: ClientDep,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    after: AfterQuery = None,
) -> Any:
    """Who accessed the enterprise's data (role ``subject``): one page of the accesses,
    allowed or refused, newest first, each with its receipt and proof."""
    page = await _own_page(request, client, subject_accesses, limit, after)
    return AccessList(accesses=page.items, next=page.next)
