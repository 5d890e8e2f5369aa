"""Credit reports and the public credit pages.

API (``/v1/credit/reports``): a credit department issues a report of a subject at an instant
(its PDF's SM3 then waits, as a credit event, for the department's signature with its other
events: ``GET /v1/credit/events/pending``); anyone holding a report fetches its JSON with
the offline-verifiable bundles and its PDF, and checks a PDF's bytes.

Pages (``/credit``): the public search (信用公示) and a subject's public profile, and a
report's genuine-check page, where the report's QR code leads. Server-rendered, Chinese by
default and English with ``?lang=en`` (a link on each page switches), nothing loaded from
outside.

Time comes from ``app.state.credit_clock`` when set (tests), else the system clock."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from credit.report import ReportKind, report_payload
from credit.subjects import mask_identifier
from registry.credit.credit_version import WaitlessVersionReader, credit_version
from registry.credit.page_cache import PageCache, Rendered
from registry.credit.page_text import Language
from registry.credit.pages import (
    TEMPLATES_DIR,
    render_report_page,
    render_search_page,
    search_page_to_keep,
    show_at,
    subject_page_to_keep,
)
from registry.credit.public_reads import (
    profile_changes_after,
    public_profile,
    search_public_until,
)
from registry.credit.reports import (
    GenuineCheck,
    check_pdf,
    issue_report,
    report_json,
    report_pdf,
    report_state,
)
from registry.credit.store import CREDIT_OFFICE_ROLE, CREDIT_ROLE
from registry.deps import ClientDep, StateDep
from registry.errors import Forbidden, InvalidInput
from registry.routers.credit_common import credit_keys, credit_now
from registry.threads import run_blocking
from sdk.identifiers import InvalidIdentifier, validate_uscc

router = APIRouter(tags=["credit reports and pages"])

ISSUE_ROLES = (CREDIT_ROLE, CREDIT_OFFICE_ROLE)
"""Roles that issue credit reports."""

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""The pages load their one script from here and nothing from anywhere else."""

PUBLIC_CACHE = "public, max-age=30"
"""Display changes as windows end and repairs are approved: 30 s bounds the lag."""

SM3_HEX = r"^[0-9a-fA-F]{64}$"

LangQuery = Annotated[Language, Query(description="page language: zh (default) or en")]
"""The ``lang`` parameter of the pages."""


def _switch_url(request: Request, lang: Language) -> str:
    """The same page in the other language: this page's query with ``lang`` toggled."""
    query = [(name, value) for name, value in request.query_params.multi_items() if name != "lang"]
    if lang == "zh":
        query.append(("lang", "en"))
    return "?" + urlencode(query)


def _base_url(request: Request, state: StateDep) -> str:
    return state.settings.public_base_url or str(request.base_url)


class ReportCreate(BaseModel):
    """A report to issue."""

    subject: str = Field(min_length=15, max_length=18)
    """The subject's USCC, or a natural person's resident ID number."""
    subject_name: str = Field(default="", max_length=200)
    """Its name, shown when it has no record on display (otherwise its records' name)."""
    at: datetime.datetime | None = None
    """The instant the report speaks of (default: now)."""
    purpose: str = Field(default="", max_length=200)
    kind: ReportKind = ReportKind.SPECIAL


class ReportIssued(BaseModel):
    """A report issued: sign ``commitment`` (event ``event_id``) to have its PDF anchored."""

    report_id: str
    pdf_sm3: str
    content_hash: str
    event_id: str
    commitment: str
    verify_url: str
    report: dict[str, Any]


class PdfCheck(BaseModel):
    """Whether PDF bytes are an issued report, unchanged."""

    pdf_sm3: str
    genuine: bool
    report_id: str | None
    """The report the bytes are (genuine), or the one they were checked against."""
    stated: dict[str, Any] | None
    """What that report stated (its content as issued)."""
    anchoring: str | None


@router.post(
    "/v1/credit/reports",
    response_model=ReportIssued,
    status_code=201,
    responses={
        401: {"description": "not signed by a registered client"},
        403: {"description": "the client may not issue reports"},
    },
)
async def create_report(
    payload: ReportCreate, request: Request, client: ClientDep, state: StateDep
) -> ReportIssued:
    """Issue a credit report (信用报告) of a subject at an instant: records on public
    display then, masked; the PDF is rendered and stored, and its SM3 waits for the
    department's signature as a credit event before it is anchored."""
    if not set(ISSUE_ROLES) & set(client.roles):
        raise Forbidden(f"client {client.id} may not issue credit reports", code="forbidden_role")
    keys = await credit_keys(request, state)
    now = credit_now(request)
    at = payload.at or now
    if at.tzinfo is None:
        raise InvalidInput("at must carry its zone")
    if at > now:
        raise InvalidInput("a report cannot speak of the future", code="invalid_report")
    issued = await run_blocking(
        lambda: issue_report(
            state.db,
            keys,
            client,
            subject=payload.subject,
            subject_name=payload.subject_name,
            as_of=at,
            issued_at=now,
            purpose=payload.purpose,
            base_url=_base_url(request, state),
            kind=payload.kind,
        )
    )
    return ReportIssued(**vars(issued))


@router.get("/v1/credit/reports/{report_id}", responses={404: {}})
async def get_report(report_id: str, state: StateDep) -> Any:
    """The report's content with what verifies it offline: the proof bundle of its PDF's
    anchoring (once anchored) and each listed record's latest anchored event with its
    bundle."""
    return await run_blocking(report_json, state.db, state.chain, state.caches, report_id)


@router.get(
    "/v1/credit/reports/{report_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 404: {}},
)
async def get_report_pdf(report_id: str, state: StateDep) -> Response:
    """The report's PDF, as issued."""
    pdf = await run_blocking(report_pdf, state.db, report_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="credit-report-{report_id}.pdf"'},
    )


def _check_out(check: GenuineCheck) -> PdfCheck:
    state = check.state
    return PdfCheck(
        pdf_sm3=check.pdf_sm3,
        genuine=check.genuine,
        report_id=None if state is None else state.report.report_id,
        stated=None if state is None else report_payload(state.report),
        anchoring=None if state is None else state.anchoring,
    )


@router.post(
    "/v1/credit/reports/check",
    response_model=PdfCheck,
    responses={404: {}, 413: {}},
    openapi_extra={
        # The raw bytes of the file, whatever Content-Type names them (application/pdf from
        # the page's script); declared as octet-stream, the one binary type OpenAPI tools
        # all write.
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "required": True,
        },
    },
)
async def check_report_pdf(
    request: Request,
    state: StateDep,
    report_id: Annotated[str | None, Query(max_length=36)] = None,
) -> PdfCheck:
    """Whether the PDF in the body (raw bytes) is an issued report, unchanged — with
    ``report_id``, whether it is that report."""
    pdf = await request.body()
    check = await run_blocking(lambda: check_pdf(state.db, pdf, report_id=report_id))
    return _check_out(check)


def _page(html: str, status_code: int = 200, cache: str = PUBLIC_CACHE) -> HTMLResponse:
    return HTMLResponse(
        html, status_code=status_code, headers={**PAGE_HEADERS, "Cache-Control": cache}
    )


@router.get("/credit/", response_class=HTMLResponse, include_in_schema=False)
async def search_page(
    request: Request,
    state: StateDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    lang: LangQuery = "zh",
) -> HTMLResponse:
    """信用公示: search subjects with records on display by name or USCC."""
    now = credit_now(request)
    text = (q or "").strip()
    switch_url = _switch_url(request, lang)
    if not text:
        return _page(render_search_page(text, None, now, lang=lang, switch_url=switch_url))

    def read() -> tuple[Rendered, datetime.datetime | None]:
        hits, until = search_public_until(state.db, text, now)
        html = search_page_to_keep(text, hits, lang=lang, switch_url=switch_url)
        return Rendered(html, 200), until

    page = await _kept_page(request, state, ("search", text, lang, switch_url), now, read)
    return _page(show_at(page.html, now, lang), page.status)


async def _kept_page(
    request: Request,
    state: StateDep,
    name: tuple[str, ...],
    at: datetime.datetime,
    read: Callable[[], tuple[Rendered, datetime.datetime | None]],
) -> Rendered:
    """The page ``name`` at ``at``: served from the event loop when kept under the credit
    version read there without waiting (:class:`WaitlessVersionReader`), else through
    :func:`_kept` on the thread pool. A kept page then costs no hop to a thread and back;
    most pages served are kept ones."""
    cache = _page_cache(request, state)
    if cache is not None:
        # Made at the application's startup, its connections closed at its shutdown.
        reader: WaitlessVersionReader = request.app.state.credit_version_reader
        version = reader.read()
        if version is not None:
            kept = cache.kept(name, version, at, "")
            if kept is not None:
                return kept
    return await run_blocking(_kept, request, state, name, at, read)


def _page_cache(request: Request, state: StateDep) -> PageCache | None:
    """The process's kept pages; None on PostgreSQL, where none are kept (see :func:`_kept`)."""
    if not state.db.is_sqlite:
        return None
    cache: PageCache | None = getattr(request.app.state, "credit_page_cache", None)
    if cache is None:
        cache = request.app.state.credit_page_cache = PageCache()
    return cache


def _kept(
    request: Request,
    state: StateDep,
    name: tuple[str, ...],
    at: datetime.datetime,
    read: Callable[[], tuple[Rendered, datetime.datetime | None]],
) -> Rendered:
    """The page ``name`` at ``at`` from the process's page cache, or ``read()``: a page
    whose time is left to :func:`show_at`, so it shows no other time than the one filled in
    (the cache's ``shown_time`` is the same for all). Pages are kept on SQLite only, where
    one writer at a time holds the database from its first statement to its commit, so
    credit events are committed in the order of their numbers; on PostgreSQL a transaction
    holding a lower number may commit after a higher one, and the version would miss its
    change."""
    cache = _page_cache(request, state)
    if cache is None:
        return read()[0]
    return cache.page(name, credit_version(state.db), at, "", read)


@router.get("/credit", include_in_schema=False)
async def search_page_root() -> RedirectResponse:
    """The search page lives at ``/credit/`` (its relative links need the slash)."""
    return RedirectResponse("credit/", status_code=308)


@router.get("/credit/subjects/{code}", response_class=HTMLResponse, include_in_schema=False)
async def subject_page(
    code: str, request: Request, state: StateDep, lang: LangQuery = "zh"
) -> HTMLResponse:
    """A subject's public profile: records on display now, masked. Looked up by the code
    shown (an organisation's USCC), never by a person's number."""
    if len(code) > 64:
        raise InvalidInput("code too long")
    now = credit_now(request)
    switch_url = _switch_url(request, lang)

    def read() -> tuple[Rendered, datetime.datetime | None]:
        profile = public_profile(state.db, code, now)
        html = subject_page_to_keep(profile, _shown_code(code), lang=lang, switch_url=switch_url)
        changes = profile_changes_after(state.db, code, now)
        return Rendered(html, 200 if profile.records else 404), changes

    page = await _kept_page(request, state, ("subject", code, lang, switch_url), now, read)
    return _page(show_at(page.html, now, lang), page.status)


def _shown_code(code: str) -> str:
    """The code as the page may echo it: a USCC as given, anything else (a person's number
    typed in) masked."""
    text = code.strip().upper()
    try:
        return validate_uscc(text)
    except InvalidIdentifier:
        return mask_identifier(text)


@router.get("/credit/reports/{report_id}", response_class=HTMLResponse, include_in_schema=False)
async def report_page(
    report_id: str,
    request: Request,
    state: StateDep,
    sm3: Annotated[str | None, Query(pattern=SM3_HEX)] = None,
    lang: LangQuery = "zh",
) -> HTMLResponse:
    """The genuine-check page of a report: what it stated as of its date, its anchoring,
    and with ``sm3`` (a file's SM3, as the upload helper or the holder computed it) whether
    that file is this report unchanged."""
    if len(report_id) > 36:
        raise InvalidInput("report id too long")
    report = await run_blocking(report_state, state.db, report_id)
    check = None
    if sm3 is not None:
        digest = sm3.lower()
        check = GenuineCheck(pdf_sm3=digest, genuine=digest == report.pdf_sm3, state=report)
    html = render_report_page(
        report, check, credit_now(request), lang=lang, switch_url=_switch_url(request, lang)
    )
    return _page(html, cache="no-store")


_SCRIPT = (Path(TEMPLATES_DIR) / "credit_report_check.js").read_text(encoding="utf-8")


@router.get("/credit/assets/report-check.js", include_in_schema=False)
async def report_check_script() -> Response:
    """The report page's upload helper."""
    return Response(
        _SCRIPT,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
