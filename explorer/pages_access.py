"""Login by SM2 key challenge: the page, the JSON flow for scripts, the ticket exchange, and
logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from explorer.app import FormRefused, form_fields, render
from explorer.auth import SESSION_COOKIE, Authenticator, LoginRefused
from explorer.store import Store

router = APIRouter()

MAX_FIELD = 400
"""Longest public key, signature or nonce accepted (hex)."""


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else "/"


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def _with_session(request: Request, response: Response, address: str) -> Response:
    response.set_cookie(
        SESSION_COOKIE,
        _auth(request).session_cookie(address),
        max_age=_auth(request).session_seconds,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    """The challenge to sign and the form to answer it."""
    challenge = _auth(request).new_challenge()
    return render(request, "login.html", challenge=challenge, next=_safe_next(next), error=None)


async def _login(request: Request) -> tuple[str, dict[str, str]]:
    """The auditor of a posted login form; raises LoginRefused."""
    try:
        fields = await form_fields(request)
    except FormRefused as exc:
        raise LoginRefused(str(exc)) from exc
    values = [fields.get(name, "")[:MAX_FIELD] for name in ("nonce", "public_key", "signature")]
    store: Store = request.app.state.store
    with store.read() as c:
        address = _auth(request).login(
            c, nonce=values[0], public_key_hex=values[1], signature_hex=values[2]
        )
    return address, fields


@router.post("/login")
async def login_form(request: Request) -> Response:
    """Check the signed challenge; on success a session and the page asked for."""
    try:
        address, fields = await _login(request)
        next = fields.get("next", "/")
    except LoginRefused as exc:
        next = "/"
        challenge = _auth(request).new_challenge()
        return render(
            request,
            "login.html",
            status_code=403,
            challenge=challenge,
            next=_safe_next(next),
            error=str(exc),
        )
    return _with_session(request, RedirectResponse(_safe_next(next), status_code=303), address)


@router.post("/auth/challenge")
def challenge_json(request: Request) -> dict[str, object]:
    """A challenge for a script: its nonce and the exact text to sign."""
    challenge = _auth(request).new_challenge()
    return {"nonce": challenge.nonce, "text": challenge.text, "expires": int(challenge.expires)}


@router.post("/auth/login")
async def login_json(request: Request) -> Response:
    """Check a signed challenge for a script: the auditor's address, a session cookie, and a
    one-time ticket to hand the session to a browser (``/auth/enter?ticket=…``)."""
    try:
        address, _ = await _login(request)
    except LoginRefused as exc:
        return JSONResponse({"error": str(exc)}, status_code=403)
    body = {"auditor": address, "ticket": _auth(request).ticket(address)}
    return _with_session(request, JSONResponse(body), address)


@router.get("/auth/enter")
def enter(request: Request, ticket: str = "", next: str = "/") -> Response:
    """Exchange a one-time ticket for a session and go to ``next``."""
    address = _auth(request).redeem(ticket[:MAX_FIELD])
    if address is None:
        return RedirectResponse(f"/login?next={_safe_next(next)}", status_code=303)
    return _with_session(request, RedirectResponse(_safe_next(next), status_code=303), address)


@router.post("/auth/logout")
def logout() -> Response:
    """End the session."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
