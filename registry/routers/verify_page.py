"""``/v/{key}``: the citizen's verify page, where a license's QR code leads. ``key`` is the
license identifier (static code) or a dynamic token. Public, server-rendered, Chinese by
default (``?lang=en`` for English)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from registry.deps import StateDep
from registry.license_service import PageLookup
from registry.licenses import PageStatus, VerifyPageView, choose_language, render_verify_page
from registry.routers.licenses import get_license_service
from registry.threads import run_blocking

router = APIRouter(prefix="/v", tags=["verify page"])

MAX_KEY = 256
"""Longest key looked up (a token is at most 162 characters, an identifier about 100)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""The page has no script and loads nothing; say so to the browser."""

FOUND_CACHE = "public, max-age=30"
"""A status may change at any time; 30 s bounds how long a revocation can go unseen."""
NOT_FOUND_CACHE = "public, max-age=60"
"""An unknown identifier may become known when it is issued."""
NO_STORE = "no-store"
"""Token pages (personal, short-lived) and answers made without the chain."""

_HTTP_STATUS = {
    PageStatus.NOT_FOUND: 404,
    PageStatus.UNAVAILABLE: 503,
}


@router.get("/{key}", response_class=HTMLResponse, responses={404: {}, 410: {}, 503: {}})
async def verify_page(
    key: Annotated[str, Path(min_length=1, max_length=MAX_KEY)],
    request: Request,
    state: StateDep,
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """The verify page: valid / suspended / revoked (with reason) / expired / changed /
    not found / unavailable, with issuer, license name, dates and the anchoring block."""
    service = get_license_service(state, request)
    view, lookup = await run_blocking(service.page_view, key)
    if lookup is PageLookup.EXPIRED_TOKEN:
        # Authentic but old: say so, and that a new code is needed — not "not found".
        view = VerifyPageView(PageStatus.CODE_EXPIRED, view.checked_at)
    html = render_verify_page(view, choose_language(lang))
    status_code = _HTTP_STATUS.get(view.status, 200)
    if lookup is PageLookup.EXPIRED_TOKEN:
        status_code = 410
    headers = dict(SECURITY_HEADERS)
    if view.status is PageStatus.UNAVAILABLE:
        headers["Cache-Control"] = NO_STORE
        headers["Retry-After"] = "30"
    elif lookup is not PageLookup.IDENTIFIER:
        headers["Cache-Control"] = NO_STORE
    elif view.status is PageStatus.NOT_FOUND:
        headers["Cache-Control"] = NOT_FOUND_CACHE
    else:
        headers["Cache-Control"] = FOUND_CACHE
    return HTMLResponse(html, status_code=status_code, headers=headers)
