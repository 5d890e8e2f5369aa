"""The explorer's web application: FastAPI, server-rendered Jinja2 pages, assets served from
the package (nothing from outside: intranets have no internet), Chinese first with an English
toggle, every answer logged with who asked.

Reading needs an auditor session (see :mod:`explorer.auth`); the overview, block and
validator pages are public when ``public_subset`` is set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from explorer.auth import SESSION_COOKIE, Authenticator, configured_keys
from explorer.boundary import Refused, check_request, printable
from explorer.i18n import language, license_status, translator
from explorer.settings import ExplorerSettings
from explorer.store import Store

logger = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
PUBLIC_ALWAYS = ("/static/", "/login", "/auth/", "/lang/", "/healthz")
"""Paths anyone may reach: assets, the login itself, the language switch."""
PUBLIC_SUBSET = ("/blocks", "/block/", "/validators", "/proposal/")
"""Paths the ``public_subset`` setting opens (with the overview ``/``)."""


def short(value: object, keep: int = 10) -> str:
    """A long hex string shortened for tables (the full value stays in links and titles)."""
    text = "" if value is None else str(value)
    return text if len(text) <= keep + 6 else f"{text[:keep]}…{text[-4:]}"


def when(timestamp_ms: int) -> str:
    """A block time as UTC text."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(timestamp_ms) / 1000)) + " UTC"


def is_public(path: str, settings: ExplorerSettings) -> bool:
    """Whether ``path`` is served without an auditor session."""
    if path.startswith(PUBLIC_ALWAYS):
        return True
    return settings.public_subset and (path == "/" or path.startswith(PUBLIC_SUBSET))


def create_app(settings: ExplorerSettings) -> FastAPI:
    """The application on ``settings``; the database is opened at startup, not at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.open(settings.index_url())
        genesis = settings.genesis()
        app.state.store = store
        app.state.genesis = genesis
        app.state.auth = Authenticator(
            genesis=genesis,
            configured_keys=configured_keys(settings.auditor_keys, settings.auditor_key_files),
            secret=settings.session_secret,
            session_seconds=settings.session_seconds,
        )
        from explorer.reverify_jobs import JobRunner

        app.state.jobs = JobRunner(store, settings)
        try:
            yield
        finally:
            app.state.jobs.close()
            store.close()

    app = FastAPI(title="lianxin explorer", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
    templates.env.globals.update(short=short, when=when, license_status=license_status)
    app.state.templates = templates

    @app.middleware("http")
    async def access(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        auth: Authenticator = request.app.state.auth
        auditor = auth.session_address(request.cookies.get(SESSION_COOKIE))
        request.state.auditor = auditor
        request.state.lang = language(request.cookies.get("lang"))
        path = request.url.path
        try:
            check_request(request)
            refused = None
        except Refused as exc:
            refused = exc
            logger.warning(
                "refused %s %s: %s",
                request.method[:8],
                printable(path[:200]),
                exc.reason,
            )
        if refused is not None:
            response: Response = JSONResponse({"error": refused.reason}, status_code=refused.status)
        elif auditor is None and not is_public(path, settings):
            target = path + ("?" + request.url.query if request.url.query else "")
            response = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        else:
            response = await call_next(request)
        if not path.startswith("/static/"):
            store: Store = request.app.state.store
            store.log_access(
                at_ms=int(time.time() * 1000),
                auditor=auditor,
                client=request.client.host if request.client else "",
                method=request.method,
                path=printable(
                    str(request.url.path) + ("?" + request.url.query if request.url.query else "")
                ),
                status=response.status_code,
            )
        return response

    from explorer import (
        pages,
        pages_access,
        pages_domain,
        pages_evidence,
        pages_governance,
        pages_trails,
        pages_verify,
    )

    app.include_router(pages.router)
    app.include_router(pages_domain.router)
    app.include_router(pages_access.router)
    app.include_router(pages_verify.router)
    app.include_router(pages_evidence.router)
    app.include_router(pages_trails.router)
    app.include_router(pages_governance.router)
    return app


MAX_FORM_BYTES = 8 * 1024
"""Largest form body accepted (login and job forms are a few hundred bytes)."""


class FormRefused(Exception):
    """A form body that is too large or not URL-encoded text."""


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form body (the last value of a repeated field), read only
    up to MAX_FORM_BYTES."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused("form too large")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FormRefused("form is not URL-encoded") from exc
    return {key: value for key, value in parse_qsl(text, keep_blank_values=True)}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page in the request's language, with the auditor and the helpers every page uses."""
    templates: Jinja2Templates = request.app.state.templates
    lang = request.state.lang
    return templates.TemplateResponse(
        request,
        template,
        {
            "t": translator(lang),
            "lang": lang,
            "auditor": request.state.auditor,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
