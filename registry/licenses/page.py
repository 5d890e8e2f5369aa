"""The citizen's verify page: what a phone shows after scanning a license's QR code.

:func:`render_verify_page` turns a :class:`VerifyPageView` (everything the page shows,
already looked up) into one self-contained HTML document: Chinese by default, English on
request, no JavaScript, no external fonts, images or style sheets, well under 50 KB.
Jinja2 escapes every value (autoescape on); the successor link is also checked to be a
same-site path or an https URL, so no ``javascript:`` link can be planted.
"""

from __future__ import annotations

import datetime
import enum
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from contracts.trust import LicenseStatus
from registry.licenses.errors import InvalidPageView, UnsupportedLanguage
from registry.licenses.reasons import LANGUAGES, reason_text

__all__ = [
    "DEFAULT_LANGUAGE",
    "DISPLAY_TIMEZONE",
    "TEMPLATES_DIR",
    "PageSigner",
    "PageStatus",
    "VerifyPageView",
    "choose_language",
    "page_status",
    "render_verify_page",
]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
"""registry/templates: the page template and its style sheet (inlined when rendering)."""

DEFAULT_LANGUAGE = LANGUAGES[0]
"""Chinese."""

DISPLAY_TIMEZONE = datetime.timezone(datetime.timedelta(hours=8), "UTC+8")
"""Times are shown in China Standard Time, labelled as such."""


class PageStatus(enum.StrEnum):
    """The answer the page gives, as a citizen reads it."""

    VALID = "valid"
    """Issued and in force (有效)."""
    SUSPENDED = "suspended"
    """Suspended (暂停)."""
    REVOKED = "revoked"
    """Revoked (已撤销)."""
    EXPIRED = "expired"
    """Past its validity (已过期)."""
    CHANGED = "changed"
    """Replaced by a newer version (已变更)."""
    NOT_FOUND = "not_found"
    """No license has the identifier (未找到)."""
    UNAVAILABLE = "unavailable"
    """The ledger could not be asked; says nothing about the license (暂时无法核验)."""
    CODE_EXPIRED = "code_expired"
    """A dynamic QR code past its expiry: authentic, but too old to say anything now; the
    holder is to show a new one (二维码已过期). Names no license."""
    SIGNATURE_INVALID = "signature_invalid"
    """The license's department signature does not verify against the department's key
    on chain at the issuing block: nothing about it is vouched for (签名无效). Names no
    issuer."""


_FROM_LICENSE_STATUS = {
    LicenseStatus.NONE: PageStatus.NOT_FOUND,
    LicenseStatus.ISSUED: PageStatus.VALID,
    LicenseStatus.CHANGED: PageStatus.CHANGED,
    LicenseStatus.SUSPENDED: PageStatus.SUSPENDED,
    LicenseStatus.REVOKED: PageStatus.REVOKED,
    LicenseStatus.EXPIRED: PageStatus.EXPIRED,
}


def page_status(status: LicenseStatus) -> PageStatus:
    """The page status for a ``LicenseRegistry.statusOf`` answer."""
    return _FROM_LICENSE_STATUS[LicenseStatus(status)]


_KNOWN_LICENSE = frozenset(PageStatus) - {
    PageStatus.NOT_FOUND,
    PageStatus.UNAVAILABLE,
    PageStatus.CODE_EXPIRED,
    PageStatus.SIGNATURE_INVALID,
}
"""Statuses that describe a license found on chain, so the page must name it."""


@dataclass(frozen=True)
class PageSigner:
    """The department whose signature over the license verified on chain."""

    name: str
    """Its name in IssuerRegistry at the issuing block."""
    uscc: str
    """Its unified social credit code."""


@dataclass(frozen=True)
class VerifyPageView:
    """Everything the verify page shows. Text is shown as given (escaped); dates and times
    are formatted per language, times in UTC+8."""

    status: PageStatus
    """The answer."""
    checked_at: datetime.datetime
    """When the status was read (timezone-aware)."""
    license_name: str | None = None
    """证照名称; required unless NOT_FOUND or UNAVAILABLE."""
    identifier: str | None = None
    """The e-license identifier looked up (shown for every status, if known)."""
    issuer_name: str | None = None
    """Issuing authority's name; required unless NOT_FOUND or UNAVAILABLE."""
    issuer_code: str | None = None
    """Issuing authority's USCC or administrative division code."""
    issue_date: datetime.date | None = None
    """颁证日期."""
    valid_from: datetime.date | None = None
    """Start of validity."""
    valid_until: datetime.date | None = None
    """End of validity (inclusive); None with a ``valid_from`` means no end (长期)."""
    reason: int | None = None
    """Reason code (``contracts.trust.Reason``) of the last status change, if any."""
    status_changed_at: datetime.datetime | None = None
    """When the license entered its current status (other than issuance)."""
    anchored_block: int | None = None
    """Number of the block that anchored the issuance."""
    anchored_at: datetime.datetime | None = None
    """Time of that block."""
    successor_url: str | None = None
    """For CHANGED: link to the new version's verify page, a path on this site
    (``/…``) or an https URL."""
    signed_by: PageSigner | None = None
    """The department whose signature over the license verified against its key on chain
    at the issuing block; None for a license issued before departments signed."""
    status_changed_by: PageSigner | None = None
    """For SUSPENDED, REVOKED or EXPIRED: the department whose signature over that change
    verified on chain at the change's block."""
    status_signature_failed: bool = False
    """The signature of the last status change does not verify (the status stands: it is
    what the chain says; who made it cannot be confirmed)."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "status", PageStatus(self.status))
        except ValueError:
            raise InvalidPageView(f"unknown status {self.status!r}") from None
        if self.status in _KNOWN_LICENSE and not (self.license_name and self.issuer_name):
            raise InvalidPageView(f"a {self.status.value} page must name the license and issuer")
        for name in ("checked_at", "status_changed_at", "anchored_at"):
            moment = getattr(self, name)
            if moment is not None and (
                not isinstance(moment, datetime.datetime) or moment.utcoffset() is None
            ):
                raise InvalidPageView(f"{name} must be a timezone-aware datetime")
        if self.anchored_block is not None and (
            not isinstance(self.anchored_block, int) or self.anchored_block < 0
        ):
            raise InvalidPageView("anchored_block must be a block number")
        if self.successor_url is not None:
            _check_link(self.successor_url)
        if self.status is PageStatus.SIGNATURE_INVALID and (
            self.signed_by is not None or self.issuer_name is not None
        ):
            raise InvalidPageView("a page whose signature fails names no issuer")


def _check_link(url: str) -> None:
    """Accept a path on this site or an https URL; refuse ``javascript:``, ``data:``,
    protocol-relative ``//host`` links and anything with white space or controls."""
    if any(character.isspace() or unicodedata.category(character) == "Cc" for character in url):
        raise InvalidPageView("successor_url must not contain white space or controls")
    same_site = url.startswith("/") and not url.startswith("//") and "\\" not in url
    if not (same_site or url.startswith("https://")):
        raise InvalidPageView("successor_url must be a path on this site or an https URL")


_TEXTS: Mapping[str, Mapping[str, Any]] = {
    "zh": {
        "html_lang": "zh-CN",
        "other_lang": "en",
        "other_lang_name": "English",
        "title": "电子证照核验",
        "colon": "：",
        "status": {
            PageStatus.VALID: "有效",
            PageStatus.SUSPENDED: "暂停",
            PageStatus.REVOKED: "已撤销",
            PageStatus.EXPIRED: "已过期",
            PageStatus.CHANGED: "已变更",
            PageStatus.NOT_FOUND: "未找到",
            PageStatus.UNAVAILABLE: "暂时无法核验",
            PageStatus.CODE_EXPIRED: "二维码已过期",
            PageStatus.SIGNATURE_INVALID: "签名无效",
        },
        "summary": {
            PageStatus.VALID: "该电子证照真实有效。",
            PageStatus.SUSPENDED: "该电子证照已被暂停使用，暂停期间不具效力。",
            PageStatus.REVOKED: "该电子证照已被撤销，不再有效。",
            PageStatus.EXPIRED: "该电子证照已超过有效期。",
            PageStatus.CHANGED: "该电子证照已变更，请以新版本为准。",
            PageStatus.NOT_FOUND: "未找到该电子证照，请核对二维码或证照标识。",
            PageStatus.UNAVAILABLE: "暂时无法查询区块链记录，请稍后重试。这并不表示证照无效。",
            PageStatus.CODE_EXPIRED: "此二维码已过期，请向持证人索取新的二维码。",
            PageStatus.SIGNATURE_INVALID: (
                "该电子证照的发证部门签名未通过核验，无法确认由谁签发，请勿采信。"
            ),
        },
        "signed_by": "由 {name} ({uscc}) 签发，签名有效",
        "changed_by": {
            PageStatus.SUSPENDED: "由 {name} ({uscc}) 暂停，签名有效",
            PageStatus.REVOKED: "由 {name} ({uscc}) 撤销，签名有效",
            PageStatus.EXPIRED: "由 {name} ({uscc}) 确认过期，签名有效",
        },
        "change_signature_failed": "该状态变更的部门签名未通过核验，无法确认由谁作出。",
        "unsigned": "签发时发证部门尚未签名，仅有链上登记。",
        "reason": "原因",
        "successor": "查看新版本",
        "license_name": "证照名称",
        "identifier": "证照标识",
        "issuer": "发证机构",
        "issuer_code": "发证机构代码",
        "issue_date": "颁证日期",
        "validity": "有效期",
        "no_end": "长期",
        "until": "至",
        "status_changed_at": "状态变更时间",
        "anchored_block": "上链区块",
        "anchored_at": "上链时间",
        "checked_at": "核验时间",
        "footer": "核验结果依据链信区块链上的记录。",
    },
    "en": {
        "html_lang": "en",
        "other_lang": "zh",
        "other_lang_name": "中文",
        "title": "E-license verification",
        "colon": ": ",
        "status": {
            PageStatus.VALID: "Valid",
            PageStatus.SUSPENDED: "Suspended",
            PageStatus.REVOKED: "Revoked",
            PageStatus.EXPIRED: "Expired",
            PageStatus.CHANGED: "Changed",
            PageStatus.NOT_FOUND: "Not found",
            PageStatus.UNAVAILABLE: "Cannot verify now",
            PageStatus.CODE_EXPIRED: "Code expired",
            PageStatus.SIGNATURE_INVALID: "Signature invalid",
        },
        "summary": {
            PageStatus.VALID: "This e-license is authentic and in force.",
            PageStatus.SUSPENDED: "This e-license is suspended and has no effect for now.",
            PageStatus.REVOKED: "This e-license has been revoked and is no longer valid.",
            PageStatus.EXPIRED: "This e-license is past its term of validity.",
            PageStatus.CHANGED: "This e-license was replaced; the new version applies.",
            PageStatus.NOT_FOUND: (
                "No e-license with this identifier was found. Check the QR code or identifier."
            ),
            PageStatus.UNAVAILABLE: (
                "The ledger cannot be reached right now; try again later. "
                "This does not mean the license is invalid."
            ),
            PageStatus.CODE_EXPIRED: "This code has expired; ask the holder for a new one.",
            PageStatus.SIGNATURE_INVALID: (
                "The issuing department's signature on this e-license does not verify: who "
                "issued it cannot be confirmed. Do not rely on it."
            ),
        },
        "signed_by": "Issued by {name} ({uscc}); signature valid",
        "changed_by": {
            PageStatus.SUSPENDED: "Suspended by {name} ({uscc}); signature valid",
            PageStatus.REVOKED: "Revoked by {name} ({uscc}); signature valid",
            PageStatus.EXPIRED: "Marked expired by {name} ({uscc}); signature valid",
        },
        "change_signature_failed": (
            "The department's signature on this status change does not verify: who made it "
            "cannot be confirmed."
        ),
        "unsigned": "Issued before departments signed: recorded on chain only.",
        "reason": "Reason",
        "successor": "View the new version",
        "license_name": "License",
        "identifier": "Identifier",
        "issuer": "Issued by",
        "issuer_code": "Issuer code",
        "issue_date": "Issued on",
        "validity": "Valid",
        "no_end": "no end date",
        "until": "to",
        "status_changed_at": "Status changed",
        "anchored_block": "Anchored in block",
        "anchored_at": "Anchored at",
        "checked_at": "Checked at",
        "footer": "This result is based on records anchored on the lianxin ledger.",
    },
}

_STATUS_CLASS = {status: status.value.replace("_", "-") for status in PageStatus}

_ICON_PATHS = {
    PageStatus.VALID: "M7 12.5l3.2 3.2L17 9",
    PageStatus.SUSPENDED: "M10 8v8M14 8v8",
    PageStatus.REVOKED: "M8 8l8 8M16 8l-8 8",
    PageStatus.EXPIRED: "M12 7v5l3 2",
    PageStatus.CHANGED: "M7 12h10M13 8l4 4-4 4",
    PageStatus.NOT_FOUND: "M9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6v.6M12 17h.01",
    PageStatus.UNAVAILABLE: "M12 7v6M12 16.5h.01",
    PageStatus.CODE_EXPIRED: "M12 7v5l3 2",
    PageStatus.SIGNATURE_INVALID: "M8 8l8 8M16 8l-8 8",
}


def _icon(status: PageStatus) -> Markup:
    """A 24 × 24 outline icon in the status colour (decorative: the text says it too).
    Built from constants only, so it is marked safe for the template."""
    return Markup(
        '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" '
        'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
        f'<circle cx="12" cy="12" r="10"/><path d="{_ICON_PATHS[status]}"/></svg>'
    )


def _format_date(value: datetime.date, lang: str) -> str:
    if lang == "zh":
        return f"{value.year}年{value.month}月{value.day}日"
    return value.isoformat()


def _format_time(value: datetime.datetime) -> str:
    return value.astimezone(DISPLAY_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S") + " (UTC+8)"


def _rows(view: VerifyPageView, lang: str) -> list[tuple[str, str]]:
    """(label, text) pairs of the details list, in display order, omitting what is unknown."""
    texts = _TEXTS[lang]
    rows: list[tuple[str, str]] = []

    def add(key: str, value: str | None) -> None:
        if value:
            rows.append((texts[key], value))

    add("license_name", view.license_name)
    add("issuer", view.issuer_name)
    add("issuer_code", view.issuer_code)
    add("identifier", view.identifier)
    if view.issue_date is not None:
        add("issue_date", _format_date(view.issue_date, lang))
    if view.valid_from is not None:
        until = (
            texts["no_end"] if view.valid_until is None else _format_date(view.valid_until, lang)
        )
        add("validity", f"{_format_date(view.valid_from, lang)} {texts['until']} {until}")
    if view.status_changed_at is not None:
        add("status_changed_at", _format_time(view.status_changed_at))
    if view.anchored_block is not None:
        add("anchored_block", f"#{view.anchored_block}")
    if view.anchored_at is not None:
        add("anchored_at", _format_time(view.anchored_at))
    return rows


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def choose_language(requested: str | None) -> str:
    """The page language for a ``?lang=`` value: "en" if asked for, Chinese for anything
    else (a citizen's page never fails over a query parameter)."""
    if requested is not None and requested.strip().lower() in {"en", "en-us", "en-gb"}:
        return "en"
    return DEFAULT_LANGUAGE


def render_verify_page(view: VerifyPageView, lang: str = DEFAULT_LANGUAGE) -> str:
    """The verify page for ``view`` in ``lang`` ("zh" or "en") as one HTML document with
    its style sheet inlined. Raises UnsupportedLanguage for any other language (use
    :func:`choose_language` to map a query parameter)."""
    if lang not in LANGUAGES:
        raise UnsupportedLanguage(f"the verify page is not written in {lang!r}")
    reason = None if view.reason is None else reason_text(view.reason, lang)
    texts = _TEXTS[lang]
    signature = None
    if view.signed_by is not None:
        signature = texts["signed_by"].format(name=view.signed_by.name, uscc=view.signed_by.uscc)
    elif view.status in _KNOWN_LICENSE:
        signature = texts["unsigned"]
    change_signature = None
    changed_by = view.status_changed_by
    if changed_by is not None and view.status in texts["changed_by"]:
        change_signature = texts["changed_by"][view.status].format(
            name=changed_by.name, uscc=changed_by.uscc
        )
    elif view.status_signature_failed:
        change_signature = texts["change_signature_failed"]
    return (
        _environment()
        .get_template("verify.html")
        .render(
            t=_TEXTS[lang],
            view=view,
            status=view.status,
            status_class=_STATUS_CLASS[view.status],
            icon=_icon(view.status),
            reason=reason,
            signature=signature,
            change_signature=change_signature,
            rows=_rows(view, lang),
            checked_at=_format_time(view.checked_at),
        )
    )
