"""Credit record and archive package histories: the registry's account of each event,
every event proven against the explorer's own index of the chain (:mod:`explorer.trails`)
with its verdict shown beside it, and their evidence export."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from chain.genesis import Genesis
from explorer.app import render
from explorer.boundary import printable
from explorer.node_feed import NodeFeed, NodeUnavailable
from explorer.pages import USCC, names
from explorer.proofs import ProofRefused
from explorer.registry_feed import (
    RegistryAccess,
    RegistryFeed,
    RegistryNotFound,
    RegistryUnavailable,
)
from explorer.store import Store
from explorer.trail_evidence import TrailExportRefused, trail_export_zip
from explorer.trails import TrailEvent, archive_trail, credit_trail
from sdk.pdf_report import PdfReportError

logger = logging.getLogger(__name__)

router = APIRouter()

MAX_DECISION = 200
"""Longest 决定书文号 accepted (the registry's own bound)."""
MAX_ARCHIVAL_CODE = 500
"""Longest 档号 accepted (the registry's own bound)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadQuery(Exception):
    """A query parameter that is missing, too long or not text a key can hold."""


def _text(value: str | None, name: str, longest: int) -> str:
    text = (value or "").strip()
    if not text:
        raise BadQuery(f"{name} is missing")
    if len(text) > longest:
        raise BadQuery(f"{name} is longer than {longest} characters")
    if _CONTROL.search(text):
        raise BadQuery(f"{name} holds a control character")
    return text


def registry_access(request: Request) -> RegistryAccess | None:
    """The registry the settings name, or None (read once per application)."""
    state = request.app.state
    if not hasattr(state, "registry_access"):
        settings = state.settings
        try:
            state.registry_access = RegistryAccess.from_settings(
                settings.registry_url, settings.registry_client_id, settings.registry_key_file
            )
        except RegistryUnavailable as exc:
            logger.error("registry access not usable: %s", exc)
            state.registry_access = None
    access: RegistryAccess | None = state.registry_access
    return access


def _problem(request: Request, status: int, message: str) -> Response:
    if status == 400:
        logger.warning("refused %s %s: %s", request.method, printable(request.url.path), message)
    return render(request, "problem.html", status_code=status, status=status, message=message)


def _fetch(request: Request, kind: str, key: dict[str, str]) -> dict[str, Any] | Response:
    access = registry_access(request)
    if access is None:
        return _problem(request, 503, "registry_not_configured")
    feed = RegistryFeed(access)
    try:
        if kind == "credit":
            return feed.credit_history(key.get("authority"), key["decision"])
        return feed.archive_history(key["code"])
    except RegistryNotFound:
        return render(request, "not_found.html", status_code=404, what=" ".join(key.values()))
    except RegistryUnavailable as exc:
        logger.warning("registry read refused: %s", exc)
        return _problem(request, 502, "registry_unavailable")
    finally:
        feed.close()


def _summary(events: list[TrailEvent]) -> dict[str, int]:
    counts = {"proven": 0, "revoked": 0, "pending": 0, "failed": 0}
    for event in events:
        counts[event.proof.verdict] = counts.get(event.proof.verdict, 0) + 1
    return counts


def _department_names(request: Request, events: list[TrailEvent]) -> dict[str, str]:
    from explorer import queries as db

    found: dict[str, str] = {}
    usccs = {e.proof.department for e in events} | {e.proof.signer_uscc for e in events}
    store: Store = request.app.state.store
    with store.read() as c:
        for uscc in sorted(u for u in usccs if u):
            department = db.department(c, uscc)
            if department is not None:
                found[uscc] = str(department["name"])
    return found


def credit_key(decision: str | None, authority: str | None) -> dict[str, str]:
    """The checked key of a credit page; raises BadQuery."""
    key = {"decision": _text(decision, "decision", MAX_DECISION)}
    if authority:
        authority = authority.strip().upper()
        if not USCC.match(authority):
            raise BadQuery("authority is not a USCC")
        key["authority"] = authority
    return key


@router.get("/credit")
def credit_page(
    request: Request, decision: str | None = None, authority: str | None = None
) -> Response:
    """A credit record's lifecycle by 决定书文号 (and the authority's USCC), each event
    proven against the index."""
    try:
        key = credit_key(decision, authority)
    except BadQuery as exc:
        return _problem(request, 400, str(exc))
    answer = _fetch(request, "credit", key)
    if isinstance(answer, Response):
        return answer
    genesis: Genesis = request.app.state.genesis
    store: Store = request.app.state.store
    with store.read() as c:
        events = credit_trail(c, answer, chain_id=genesis.chain_id)
    return render(
        request,
        "credit.html",
        key=key,
        records=answer["records"],
        events=events,
        summary=_summary(events),
        departments=_department_names(request, events),
        names=names(request, set()),
        export=f"/evidence/credit?{urlencode(key)}",
    )


@router.get("/archive")
def archive_page(request: Request, code: str | None = None) -> Response:
    """An archive package's versions and custody events by 档号, each proven against the
    index."""
    try:
        key = {"code": _text(code, "code", MAX_ARCHIVAL_CODE)}
    except BadQuery as exc:
        return _problem(request, 400, str(exc))
    answer = _fetch(request, "archive", key)
    if isinstance(answer, Response):
        return answer
    genesis: Genesis = request.app.state.genesis
    store: Store = request.app.state.store
    with store.read() as c:
        events = archive_trail(c, answer, chain_id=genesis.chain_id)
    return render(
        request,
        "archive.html",
        key=key,
        versions=answer["versions"],
        events=[e for e in events if e.kind != "archive-version"],
        version_events=[e for e in events if e.kind == "archive-version"],
        summary=_summary(events),
        departments=_department_names(request, events),
        export=f"/evidence/archive?{urlencode(key)}",
    )


@router.get("/evidence/credit")
def credit_evidence(
    request: Request, decision: str | None = None, authority: str | None = None
) -> Response:
    """The evidence zip of a credit record's proven events."""
    try:
        key = credit_key(decision, authority)
    except BadQuery as exc:
        return _problem(request, 400, str(exc))
    return _evidence(request, "credit", key)


@router.get("/evidence/archive")
def archive_evidence(request: Request, code: str | None = None) -> Response:
    """The evidence zip of an archive package's proven versions and events."""
    try:
        key = {"code": _text(code, "code", MAX_ARCHIVAL_CODE)}
    except BadQuery as exc:
        return _problem(request, 400, str(exc))
    return _evidence(request, "archive", key)


def _evidence(request: Request, kind: str, key: dict[str, str]) -> Response:
    answer = _fetch(request, kind, key)
    if isinstance(answer, Response):
        return answer
    genesis: Genesis = request.app.state.genesis
    store: Store = request.app.state.store
    feed = NodeFeed(request.app.state.settings.node_url)
    try:
        with store.read() as c:
            trail = (credit_trail if kind == "credit" else archive_trail)(
                c, answer, chain_id=genesis.chain_id
            )
            data = trail_export_zip(
                c,
                feed,
                chain_id=genesis.chain_id,
                kind=kind,
                key=key,
                answer=answer,
                trail=trail,
                auditor=request.state.auditor,
                now=datetime.now(UTC),
            )
    except TrailExportRefused as exc:
        return _problem(request, 409, str(exc))
    except (ProofRefused, NodeUnavailable, PdfReportError) as exc:
        return Response(f"evidence unavailable: {exc}", status_code=503, media_type="text/plain")
    finally:
        feed.close()
    name = f"lianxin-evidence-{kind}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def registry_search_target(request: Request, text: str) -> str | None:
    """The credit or archive page a search text names at the registry (a 决定书文号 first,
    then a 档号), or None; a registry that is not configured or does not answer finds
    nothing."""
    access = registry_access(request)
    if access is None or _CONTROL.search(text):
        return None
    feed = RegistryFeed(access)
    try:
        for kind, query in (("credit", {"decision": text}), ("archive", {"code": text})):
            try:
                if kind == "credit":
                    feed.credit_history(None, text)
                else:
                    feed.archive_history(text)
            except RegistryNotFound:
                continue
            return f"/{kind}?{urlencode(query)}"
    except RegistryUnavailable as exc:
        logger.warning("registry search refused: %s", exc)
    finally:
        feed.close()
    return None
