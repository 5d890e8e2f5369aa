"""``/v1/data``: the data gateway. Departments read shared data only here, citing an
authorization; every read, allowed or refused, is decided and logged together (signed by
the registry, hash-chained per authorization, anchored). A refusal is 403 naming the first
rule that failed, and carries its receipt too. Replaying a signed request is refused by
the registry's nonce check (401): the nonce is spent in the transaction that logs the
read, so nothing is served or logged for a replay.

Also here: the identity provider opening a citizen's tracker session, and the citizen's
tracker page itself (``/tracker``)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chain.crypto import sm3
from chain.primitives import Hash32
from registry.auth import verify_signed_request
from registry.authorizations.access import Attempt, Decision
from registry.authorizations.check_trail import subject_checks
from registry.authorizations.gateway import (
    gateway_lifespan,
    get_gateway,
    request_facts,
    resource_hash,
)
from registry.authorizations.page import PAGE_SIZE, render_tracker_page
from registry.authorizations.paging import DEFAULT_LIMIT, AfterQuery, LimitQuery
from registry.authorizations.providers import ItemProvider, Located
from registry.authorizations.repair_trail import subject_repairs
from registry.authorizations.schemas import CheckList, DataAnswer, DataRead
from registry.authorizations.service import DATA_ROLE, IDENTITY_ROLE, SUBJECT_ROLE, revoke
from registry.authorizations.tracker import (
    access_by_record,
    open_citizen_session,
    session_subject,
    subject_accesses,
    subject_index_of_authorization,
    visible_authorizations,
)
from registry.deps import ClientDep, get_state
from registry.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge, error_body
from registry.threads import run_blocking

router = APIRouter(tags=["data gateway"], lifespan=gateway_lifespan)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""The page has no script, loads nothing, and is personal: never cached."""

CONTENT_SM3_HEADER = "X-Lianxin-Content-SM3"
"""The SM3 (hex) of a file read through the gateway, as anchored at ingest."""

RECEIPT_HEADER = "X-Lianxin-Receipt"
"""The signed receipt of a file read: base64url of its JSON."""

MAX_FORM_BYTES = 4_096
"""Largest revocation form accepted from the page."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed by a registered client, or a replayed request"},
    403: {"description": "refused: the error code names the first rule that failed"},
}


@dataclass(frozen=True)
class _Read:
    """One read decided and logged."""

    payload: DataRead
    provider: ItemProvider
    item: str
    """The item it was decided and logged under."""
    decision: Decision
    located: Located | None
    """The resource as read to decide (None: its provider reads it again to serve it)."""


async def _decide(request: Request) -> _Read:
    """Authenticate, parse, decide and log one read (see :func:`read`).

    Taken as the request is rather than through FastAPI's parameter and dependency
    machinery (as ``/v1/verify`` does): the signature is checked, the body parsed with the
    same model (same 422, nothing stored), and the nonce is spent in the access writer's
    transaction together with the entry that logs the read (one write per group, not two)."""
    state = await get_state(request)
    body = await request.body()
    # Hashed once: the signature is checked over it and the log keeps it.
    body_sm3 = sm3(body).hex()
    signed = await verify_signed_request(request, state.clients, state.settings, body_sm3=body_sm3)
    try:
        payload = DataRead.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    client = signed.client
    gateway = get_gateway(request)
    provider = gateway.provider_for(payload.item)
    if DATA_ROLE not in client.roles or provider is None:
        # Refused by the route itself: the nonce is spent all the same (replaying gets 401).
        await state.intake.spend_nonce(signed.nonce)
        if DATA_ROLE not in client.roles:
            raise Forbidden(f"client {client.id} may not read shared data")
        raise InvalidInput(f"no data is served for item {payload.item!r}", code="item_not_served")
    locate_once = getattr(provider, "locate", None)
    locate: Callable[[], tuple[Hash32 | None, Located | None]] | None = None
    if locate_once is not None:
        # Read in the access writer's group, once for every read of the same resource
        # under the same authorization there, and served from what was read.
        def located_once() -> tuple[Hash32 | None, Located | None]:
            located: Located | None = locate_once(payload.resource)
            subject = None if located is None else located.subject
            return gateway.commitment_of(payload.authorization_id, subject), located

        locate, commitment, item = located_once, None, payload.item
    else:

        def find() -> tuple[Hash32 | None, str]:
            found = gateway.resource_commitment(
                provider, payload.authorization_id, payload.resource
            )
            return found, gateway.item_of(provider, payload.item, payload.resource)

        commitment, item = await run_blocking(find)
    decision = await gateway.writer.decide(
        Attempt(
            authorization_id=payload.authorization_id,
            caller_client=client.id,
            caller_uscc=client.uscc,
            subject_commitment=commitment,
            item=item,
            purpose=payload.purpose,
            resource_hash=resource_hash(payload.resource),
            request=request_facts(request, body_sm3),
            nonce=signed.nonce,
            locate=locate,
            locate_key=f"{provider.root}\x00{payload.resource}",
        )
    )
    return _Read(payload, provider, item, decision, decision.located)


def _refusal(decision: Decision) -> JSONResponse:
    return JSONResponse(
        error_body(
            decision.outcome,
            f"refused: {decision.outcome}",
            {"receipt": decision.receipt.to_sdk_json()},
        ),
        status_code=403,
    )


_BODY = {
    "required": True,
    "content": {"application/json": {"schema": DataRead.model_json_schema()}},
}


@router.post(
    "/v1/data/read",
    response_model=DataAnswer,
    responses={**_ERRORS, 422: {"description": "malformed, or no provider serves the item"}},
    openapi_extra={"requestBody": _BODY},
)
async def read(request: Request) -> Any:
    """Read one item of one resource (a license identifier, say) under an authorization.
    The gateway checks, in order: the caller is the recipient; the subject matches; the
    item is in scope; the purpose matches; the window is live; not revoked; uses remain.
    Allowed: 200 with the data and the signed receipt. Refused: 403 with the rule as the
    error code and the receipt in the details. Where the resource belongs to a narrower
    item than the one asked for (an archive package's class), the read is decided and
    logged under that item."""
    done = await _decide(request)
    if not done.decision.allowed:
        return _refusal(done.decision)
    if done.located is not None:
        data = done.located.read(done.item)
    else:
        data = await run_blocking(done.provider.read, done.payload.resource, done.item)
    answer = DataAnswer(data=data, receipt=done.decision.receipt.to_sdk_json())
    # Built here: serialized as it is, not validated a second time.
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post(
    "/v1/data/file",
    responses={
        **_ERRORS,
        200: {"content": {"application/octet-stream": {}}, "description": "the file"},
        404: {"description": "no such file"},
        422: {"description": "malformed, or the item's data has no files"},
    },
    openapi_extra={"requestBody": _BODY},
)
async def read_file(request: Request) -> Any:
    """Read one file of an archive package (``resource``: ``<package id>/<path>``) under
    an authorization, decided and logged as :func:`read` is. Allowed: the content,
    streamed in chunks, with the file's SM3 (``X-Lianxin-Content-SM3``) and the signed
    receipt (``X-Lianxin-Receipt``: base64url of its JSON). Refused: 403 as for
    :func:`read`."""
    done = await _decide(request)
    payload, decision = done.payload, done.decision
    if not decision.allowed:
        return _refusal(decision)
    open_file = getattr(done.provider, "open_file", None)
    if open_file is None:
        raise InvalidInput(f"item {payload.item!r} has no files", code="item_not_served")
    location, file = await run_blocking(open_file, payload.resource)
    receipt = json.dumps(decision.receipt.to_sdk_json(), separators=(",", ":")).encode()
    return FileResponse(
        location,
        media_type="application/octet-stream",
        headers={
            CONTENT_SM3_HEADER: file.sm3,
            RECEIPT_HEADER: base64.urlsafe_b64encode(receipt).decode(),
            "Cache-Control": "no-store",
        },
        stat_result=await run_blocking(os.stat, location),
    )


@router.get("/v1/data/registry-key")
async def registry_key(request: Request) -> dict[str, Any]:
    """The registry's public key that signs access log entries and authorization events,
    and the chain they are anchored on (no authentication needed)."""
    sharing = get_gateway(request).sharing
    return {
        "registryKey": (await run_blocking(lambda: sharing.signer.public_key)).hex(),
        "chainId": await run_blocking(sharing.signer.chain_id),
    }


@router.get("/v1/data/accesses/{record_id}", responses={**_ERRORS, 404: {}})
async def access_receipt(record_id: str, client: ClientDep, request: Request) -> Any:
    """One access with its receipt and, once anchored, its proof bundle: for the calling
    department, and for the enterprise the data is about."""
    sharing = get_gateway(request).sharing
    row, access = await run_blocking(access_by_record, sharing, record_id)
    allowed = client.uscc == row.caller_uscc and DATA_ROLE in client.roles
    if not allowed and SUBJECT_ROLE in client.roles and row.authorization_id is not None:
        index = await run_blocking(subject_index_of_authorization, sharing, row.authorization_id)
        own = sharing.signer.subject_index("enterprise", client.uscc)
        hidden = (row.disclose_after or 0) > sharing.now()
        allowed = index == own and not hidden
    if not allowed:
        raise NotFound(f"no access {record_id}", code="access_not_found")
    return access


class SessionOpen(BaseModel):
    """The identity provider opens a tracker session for a citizen it authenticated."""

    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(min_length=18, max_length=18, description="resident ID")


@router.post("/v1/tracker/sessions", status_code=201, responses={**_ERRORS, 422: {}})
async def open_session(payload: SessionOpen, client: ClientDep, request: Request) -> Any:
    """A short-lived tracker session for a citizen the calling identity provider (role
    ``identity``) authenticated: the link to send the citizen's phone to."""
    if IDENTITY_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} is no identity provider")
    sharing = get_gateway(request).sharing
    token, expires = await run_blocking(open_citizen_session, sharing, payload.subject_id)
    return {"session": token, "path": f"/tracker?s={quote(token)}", "expires": expires}


def _page(
    request: Request,
    session: str,
    notice: str | None = None,
    authorizations_after: str | None = None,
    accesses_after: str | None = None,
    checks_after: str | None = None,
    repairs_after: str | None = None,
) -> HTMLResponse:
    sharing = get_gateway(request).sharing
    subject = session_subject(sharing, session)
    html = render_tracker_page(
        session=session,
        authorizations=visible_authorizations(
            sharing, subject, limit=PAGE_SIZE, after=authorizations_after
        ),
        accesses=subject_accesses(sharing, subject, limit=PAGE_SIZE, after=accesses_after),
        checks=subject_checks(sharing, subject, limit=PAGE_SIZE, after=checks_after),
        repairs=subject_repairs(sharing, subject, limit=PAGE_SIZE, after=repairs_after),
        authorizations_after=authorizations_after,
        accesses_after=accesses_after,
        checks_after=checks_after,
        repairs_after=repairs_after,
        notice=notice,
    )
    return HTMLResponse(html, headers=SECURITY_HEADERS)


_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_PAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"content": _ERROR_BODY, "description": "no live session (sign in again)"},
    404: {"content": _ERROR_BODY, "description": "no such authorization of this subject"},
}


@router.get(
    "/tracker",
    # A session that does not open is answered 403 with the error body; only the page is
    # documented, as for the verify page's HTML answers.
    responses={200: {"content": {"text/html": {}}, "description": "the page"}},
)
async def tracker_page(
    request: Request,
    s: Annotated[str, Query(min_length=1, max_length=1_000)],
    done: Annotated[str | None, Query(max_length=16)] = None,
    authorizations_after: AfterQuery = None,
    accesses_after: AfterQuery = None,
    checks_after: AfterQuery = None,
    repairs_after: AfterQuery = None,
) -> HTMLResponse:
    """The citizen's data tracker (数据使用记录): their authorizations, revocable, who
    accessed their data, when, why and under which authorization, who checked their
    credit, and the credit repairs they filed; each list in pages
    (``authorizations_after``, ``accesses_after``, ``checks_after``, ``repairs_after``:
    the cursors its links carry)."""
    notice = "授权已撤回，之后的访问将被拒绝。" if done == "revoked" else None
    return await run_blocking(
        _page,
        request,
        s,
        notice,
        authorizations_after,
        accesses_after,
        checks_after,
        repairs_after,
    )


@router.get("/tracker/checks", response_model=CheckList, responses=_PAGE_ERRORS)
async def tracker_session_checks(
    request: Request,
    s: Annotated[str, Query(min_length=1, max_length=1_000)],
    limit: LimitQuery = DEFAULT_LIMIT,
    after: AfterQuery = None,
) -> Any:
    """The credit checks made of the session's citizen, newest first, each with its
    signed receipt and proof bundle once anchored (what the page shows, for a citizen's
    app to verify offline)."""

    def run() -> Any:
        sharing = get_gateway(request).sharing
        subject = session_subject(sharing, s)
        return subject_checks(sharing, subject, limit=limit, after=after)

    page = await run_blocking(run)
    return CheckList(checks=page.items, next=page.next)


def _revoke_from_page(request: Request, session: str, authorization_id: str) -> None:
    sharing = get_gateway(request).sharing
    subject = session_subject(sharing, session)
    revoke(sharing, authorization_id, actor="citizen", subject_index=subject)


@router.post(
    "/tracker/revoke",
    status_code=303,
    responses={303: {"description": "revoked: back to the page"}, **_PAGE_ERRORS},
)
async def tracker_revoke(request: Request) -> RedirectResponse:
    """Revoke one of the session's authorizations from the page; back to the page."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PayloadTooLarge("form too large")
    try:
        form = parse_qs(body.decode("ascii", errors="replace"), max_num_fields=4)
    except ValueError:
        form = {}
    session = (form.get("s") or [""])[0]
    authorization_id = (form.get("authorization_id") or [""])[0]
    if not session or len(authorization_id) != 36:
        raise NotFound("no such authorization", code="authorization_not_found")
    await run_blocking(_revoke_from_page, request, session, authorization_id)
    return RedirectResponse(f"/tracker?s={quote(session)}&done=revoked", status_code=303)
