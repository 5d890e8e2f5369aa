"""The citizen's data tracker page: server-rendered, no script, nothing loaded from
outside, laid out for a phone (the house style of the verify page). Each list is shown a
page at a time, with a link to the following page carrying its cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2

from registry.authorizations.paging import Page
from registry.authorizations.schemas import AuthorizationPublic

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
"""The registry's templates."""

PAGE_SIZE = 20
"""Entries of each list on one page."""

OUTCOMES = {
    "allowed": "已提供",
    "caller_not_recipient": "已拒绝：调用方不是被授权部门",
    "subject_mismatch": "已拒绝：数据主体不符",
    "item_out_of_scope": "已拒绝：超出授权数据范围",
    "purpose_mismatch": "已拒绝：用途不符",
    "outside_validity_window": "已拒绝：不在授权有效期内",
    "authorization_revoked": "已拒绝：授权已撤回",
    "no_uses_left": "已拒绝：授权次数已用完",
    "unknown_authorization": "已拒绝：授权不存在",
}
"""What each outcome reads as on the page."""

STATUSES = {
    "requested": "待同意",
    "granted": "生效中",
    "revoked": "已撤回",
    "amended": "已变更",
    "expired": "已过期",
}
BASES = {
    "consent": "本人同意",
    "statutory_duty": "法定职责",
    "contract": "合同约定",
    "investigation": "调查",
}


def _time(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["time"] = _time
    return environment


DECISIONS = {"allowed": "允许", "restricted": "限制", "favoured": "激励"}
"""What each answer of a credit check reads as on the page."""

REPAIR_STATES = {"pending": "待决定", "approved": "已同意修复", "rejected": "未同意修复"}
"""What each state of a repair application reads as on the page."""

CURSORS = ("authorizations_after", "accesses_after", "checks_after", "repairs_after")
"""The page's lists' cursors, in the order its links carry them."""


def tracker_link(session: str, **cursors: str | None) -> str:
    """The page's address for ``session`` at the given cursors (of :data:`CURSORS`)."""
    query = {"s": session}
    for name in CURSORS:
        value = cursors.get(name)
        if value is not None:
            query[name] = value
    return "/tracker?" + urlencode(query)


def render_tracker_page(
    *,
    session: str,
    authorizations: Page[AuthorizationPublic],
    accesses: Page[dict[str, Any]],
    checks: Page[dict[str, Any]] | None = None,
    repairs: Page[dict[str, Any]] | None = None,
    authorizations_after: str | None = None,
    accesses_after: str | None = None,
    checks_after: str | None = None,
    repairs_after: str | None = None,
    notice: str | None = None,
) -> str:
    """The page of one subject's session: a page of its authorizations (revocable while
    granted, an expiry shown with the time it was recorded), a page of the accesses to
    its data, a page of the credit checks made of it, each with whether its proof is
    anchored, and a page of the credit repair applications it filed itself with their
    state; links lead to the following page of each list and back to the newest."""
    checks = checks or Page([], None)
    repairs = repairs or Page([], None)
    here = {
        "authorizations_after": authorizations_after,
        "accesses_after": accesses_after,
        "checks_after": checks_after,
        "repairs_after": repairs_after,
    }

    def more(name: str, cursor: str | None) -> str | None:
        return None if cursor is None else tracker_link(session, **{**here, name: cursor})

    newest = None if all(value is None for value in here.values()) else tracker_link(session)
    return (
        _environment()
        .get_template("tracker.html")
        .render(
            session=session,
            authorizations=authorizations.items,
            accesses=accesses.items,
            checks=checks.items,
            repairs=repairs.items,
            more_authorizations=more("authorizations_after", authorizations.next),
            more_accesses=more("accesses_after", accesses.next),
            more_checks=more("checks_after", checks.next),
            more_repairs=more("repairs_after", repairs.next),
            newest=newest,
            outcomes=OUTCOMES,
            statuses=STATUSES,
            bases=BASES,
            decisions=DECISIONS,
            repair_states=REPAIR_STATES,
            notice=notice,
        )
    )


__all__ = [
    "DECISIONS",
    "OUTCOMES",
    "PAGE_SIZE",
    "REPAIR_STATES",
    "render_tracker_page",
    "tracker_link",
]
