"""Validation of one row of a 双公示 table into a record, or into the report entries that say
what is wrong: identifiers with their check characters (via :mod:`sdk.identifiers`),
required fields by subject category, dates that parse and are in order, enumerations,
amounts in 万元."""

from __future__ import annotations

import datetime
import enum
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from credit.columns import LAYOUT_COLUMNS, Layout
from credit.normalize import LONG_TERM, ValueProblem, clean_text, parse_amount, parse_date
from credit.normalize import to_half_width as _half
from credit.records import (
    LicenseCategory,
    LicenseStatus,
    LicensingRecord,
    PenaltyCategory,
    PenaltyRecord,
)
from credit.subjects import RESIDENT_ID_TYPES, Subject, SubjectCategory, mask_identifier
from sdk.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

__all__ = [
    "MAX_CELL_CHARACTERS",
    "Issue",
    "IssueReason",
    "validate_row",
]

MAX_CELL_CHARACTERS = 4_000
"""Longest cell accepted (违法事实 can be long; anything longer is a paste error)."""

_CATEGORY_SEPARATORS = re.compile(r"[;；,，、]")
"""Separators between several 处罚类别 in one cell."""

_STATUS_WORDS = {"有效": LicenseStatus.VALID, "无效": LicenseStatus.INVALID}
"""当前状态 written in words rather than codes."""

_CODE_CHARACTERS = re.compile(r"[0-9A-Z]+")
"""Characters of the older registration codes (工商注册号, 组织机构代码…), once upper-cased
and without hyphens."""


class IssueReason(enum.StrEnum):
    """Why a cell (or a row, or the file's header) was refused."""

    MISSING = "missing"
    """A required value is empty."""
    MISSING_COLUMN = "missing_column"
    """A required column is not in the file at all."""
    UNKNOWN_COLUMN = "unknown_column"
    """A header the template does not have (the column is ignored)."""
    DUPLICATE_COLUMN = "duplicate_column"
    """A second column for the same field (ignored)."""
    BAD_USCC = "bad_uscc"
    """Not a valid unified social credit code (length, characters or check character)."""
    BAD_RESIDENT_ID = "bad_resident_id"
    """Not a valid citizen identity number."""
    BAD_CODE = "bad_code"
    """An older registration code with characters it cannot have."""
    BAD_DATE = "bad_date"
    """Not a date."""
    DATE_ORDER = "date_order"
    """Dates in the wrong order (decision after the end of publication or validity…)."""
    BAD_ENUM = "bad_enum"
    """Not one of the template's values."""
    BAD_AMOUNT = "bad_amount"
    """Not an amount in 万元."""
    NOT_ALLOWED = "not_allowed"
    """A value the subject category must not have (a USCC for a natural person…)."""
    TOO_LONG = "too_long"
    """Longer than :data:`MAX_CELL_CHARACTERS`."""
    CONTROL_CHARACTER = "control_character"
    """A control character (NUL and the like; tabs and line breaks aside): no 双公示 field
    holds one, and PostgreSQL cannot store a NUL as text."""
    DUPLICATE_KEY = "duplicate_key"
    """A second row with the natural key of an earlier row of the same file."""
    SKIPPED_ROW = "skipped_row"
    """A row above the header (a title, a note) that was skipped."""


@dataclass(frozen=True)
class Issue:
    """One entry of a validation report."""

    row: int
    """1-based row of the file (the header is row 1 when it is the first line); 0 for the
    header's own problems reported before any row."""
    column: str
    """The column's header as written in the file, or the template header if missing."""
    value: str | None
    """The offending value as text (a natural person's identity number masked), or None."""
    reason: IssueReason
    """Why."""
    detail: str
    """A sentence for people."""


_TEMPLATE_HEADERS = {
    layout: {column.key: column.header for column in columns}
    for layout, columns in LAYOUT_COLUMNS.items()
}
"""Column key → template header, per layout (for reports on absent columns)."""

_USCC_CACHE_SIZE = 4096
"""Validated USCCs remembered: authorities and data sources repeat on every row."""


@functools.lru_cache(maxsize=_USCC_CACHE_SIZE)
def _valid_uscc(value: str) -> str:
    """The canonical form of a USCC as written in a cell (full-width allowed); raises
    InvalidIdentifier. Only successes are cached."""
    return validate_uscc(_half(value))


_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.Enum)

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters a text cell may not hold (tab, LF and CR may: line breaks in 处罚内容)."""


class _Row:
    """Collects the parsed values and the issues of one row."""

    def __init__(
        self, layout: Layout, row: int, values: Mapping[str, object], headers: Mapping[str, str]
    ) -> None:
        self.row = row
        self.values = values
        self.headers = headers
        self.issues: list[Issue] = []
        self.template = _TEMPLATE_HEADERS[layout]
        self.masked_keys: set[str] = set()
        self.cleaned = {key: clean_text(value) for key, value in values.items()}

    def given(self, key: str) -> bool:
        return self.cleaned.get(key) is not None

    def column(self, key: str) -> str:
        return self.headers.get(key) or self.template[key]

    def report(self, key: str, reason: IssueReason, detail: str, value: object = None) -> None:
        raw = self.values.get(key) if value is None else value
        text = None if clean_text(raw) is None else str(raw)
        if text is not None and key in self.masked_keys:
            text = mask_identifier(text)
        self.issues.append(Issue(self.row, self.column(key), text, reason, detail))

    def text(self, key: str, *, required: bool) -> str | None:
        value = self.cleaned.get(key)
        if value is None:
            if required:
                reason = IssueReason.MISSING if key in self.headers else IssueReason.MISSING_COLUMN
                self.report(key, reason, "a value is required")
            return None
        if len(value) > MAX_CELL_CHARACTERS:
            self.report(key, IssueReason.TOO_LONG, f"longer than {MAX_CELL_CHARACTERS} characters")
            return None
        if _CONTROL.search(value):
            shown = _CONTROL.sub(lambda found: f"\\x{ord(found[0]):02x}", value)
            self.report(key, IssueReason.CONTROL_CHARACTER, "holds a control character", shown)
            return None
        return value

    def parsed(
        self, key: str, parse: Callable[[object], _T], reason: IssueReason, *, required: bool
    ) -> _T | None:
        raw = self.values.get(key)
        if self.cleaned.get(key) is None:
            self.text(key, required=required)
            return None
        try:
            return parse(raw)
        except ValueProblem as problem:
            self.report(key, reason, problem.detail)
            return None

    def uscc(self, key: str, *, required: bool) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return _valid_uscc(value)
        except InvalidIdentifier as error:
            self.report(key, IssueReason.BAD_USCC, error.detail)
            return None

    def resident_id(self, key: str) -> str | None:
        self.masked_keys.add(key)
        value = self.text(key, required=True)
        if value is None:
            return None
        try:
            return validate_resident_id(_half(value))
        except InvalidIdentifier as error:
            self.report(key, IssueReason.BAD_RESIDENT_ID, error.detail)
            return None

    def code(self, key: str) -> str | None:
        value = self.text(key, required=False)
        if value is None:
            return None
        canonical = _half(value).upper().replace("-", "")
        if not _CODE_CHARACTERS.fullmatch(canonical):
            self.report(key, IssueReason.BAD_CODE, "only digits and letters are allowed")
            return None
        return canonical

    def enum(
        self, key: str, kind: type[_E], *, aliases: Mapping[str, _E] | None = None
    ) -> _E | None:
        value = self.text(key, required=True)
        if value is None:
            return None
        text = _half(value).replace(" ", "")
        if aliases and text in aliases:
            return aliases[text]
        try:
            return kind(text)
        except ValueError:
            allowed = "/".join(member.value for member in kind)
            self.report(key, IssueReason.BAD_ENUM, f"not one of {allowed}")
            return None

    def ordered(
        self,
        key_before: str,
        before: datetime.date | None,
        key_after: str,
        after: datetime.date | None,
    ) -> None:
        if before is not None and after is not None and before > after:
            self.report(
                key_after,
                IssueReason.DATE_ORDER,
                f"{after.isoformat()} is before {self.column(key_before)} {before.isoformat()}",
            )


def _date(value: object) -> datetime.date:
    return parse_date(value)


def _amount(value: object) -> Decimal:
    return parse_amount(value)


def _subject(row: _Row) -> Subject | None:
    category = row.enum("category", SubjectCategory)
    name = row.text("name", required=True)
    codes = {key: row.code(key) for key in ("code_2", "code_3", "code_4", "code_5", "code_6")}
    natural = category is SubjectCategory.NATURAL_PERSON
    uscc = None if natural else row.uscc("code_1", required=False)
    representative = row.text("legal_representative", required=False)
    representative_id_type = row.text("legal_representative_id_type", required=False)
    representative_id: str | None = None
    if representative_id_type and _half(representative_id_type) in RESIDENT_ID_TYPES:
        representative_id = row.resident_id("legal_representative_id")
    else:
        row.masked_keys.add("legal_representative_id")
        representative_id = row.text("legal_representative_id", required=False)
    id_type = row.text("id_type", required=natural)
    id_number: str | None = None
    if natural:
        row.masked_keys.add("id_number")
        if id_type and _half(id_type) in RESIDENT_ID_TYPES:
            id_number = row.resident_id("id_number")
        else:
            id_number = row.text("id_number", required=True)
        for key in ("code_1", "code_2", "code_3", "code_4", "code_5", "code_6"):
            if row.given(key):
                row.report(key, IssueReason.NOT_ALLOWED, "a natural person has no such code")
    elif category is not None:
        given_uscc = row.given("code_1")
        if uscc is None and not given_uscc and not any(codes.values()):
            row.report("code_1", IssueReason.MISSING, "a USCC (or an older code) is required")
        if category is SubjectCategory.ORGANISATION and representative is None:
            row.text("legal_representative", required=True)
        for key in ("id_type", "id_number"):
            if row.given(key):
                row.masked_keys.add(key)
                row.report(key, IssueReason.NOT_ALLOWED, "only a natural person has 证件号码")
    if category is None or name is None:
        return None
    return Subject(
        category=category,
        name=name,
        uscc=uscc,
        registration_number=codes["code_2"],
        organisation_code=codes["code_3"],
        tax_number=codes["code_4"],
        institution_number=codes["code_5"],
        social_organisation_number=codes["code_6"],
        legal_representative=None if natural else representative,
        legal_representative_id_type=None if natural else representative_id_type,
        legal_representative_id=None if natural else representative_id,
        id_type=id_type if natural else None,
        id_number=id_number,
    )


def _penalty_categories(row: _Row) -> tuple[PenaltyCategory, ...] | None:
    value = row.text("categories", required=True)
    if value is None:
        return None
    found: list[PenaltyCategory] = []
    for part in _CATEGORY_SEPARATORS.split(_half(value)):
        word = part.strip()
        if not word:
            continue
        try:
            category = PenaltyCategory(word)
        except ValueError:
            allowed = "/".join(member.value for member in PenaltyCategory)
            row.report("categories", IssueReason.BAD_ENUM, f"{word!r} is not one of {allowed}")
            return None
        if category not in found:
            found.append(category)
    if not found:
        row.report("categories", IssueReason.MISSING, "a value is required")
        return None
    return tuple(found)


def _penalty(row: _Row) -> PenaltyRecord | None:
    subject = _subject(row)
    required = {
        key: row.text(key, required=True)
        for key in (
            "decision_number",
            "violation_type",
            "violation_facts",
            "legal_basis",
            "content",
            "authority",
            "data_source",
        )
    }
    categories = _penalty_categories(row)
    needs_fine = categories is not None and PenaltyCategory.FINE in categories
    needs_confiscation = categories is not None and bool(
        {PenaltyCategory.CONFISCATE_GAINS, PenaltyCategory.CONFISCATE_PROPERTY} & set(categories)
    )
    needs_license = categories is not None and bool(
        {PenaltyCategory.SUSPEND_LICENSE, PenaltyCategory.REVOKE_LICENSE} & set(categories)
    )
    fine = row.parsed("fine_wan", _amount, IssueReason.BAD_AMOUNT, required=needs_fine)
    confiscated = row.parsed(
        "confiscated_wan", _amount, IssueReason.BAD_AMOUNT, required=needs_confiscation
    )
    license_affected = row.text("license_affected", required=needs_license)
    decision_date = row.parsed("decision_date", _date, IssueReason.BAD_DATE, required=True)
    valid_until = row.parsed("penalty_valid_until", _date, IssueReason.BAD_DATE, required=False)
    deadline = row.parsed("publication_deadline", _date, IssueReason.BAD_DATE, required=False)
    row.ordered("decision_date", decision_date, "penalty_valid_until", valid_until)
    row.ordered("decision_date", decision_date, "publication_deadline", deadline)
    authority_uscc = row.uscc("authority_uscc", required=True)
    source_uscc = row.uscc("data_source_uscc", required=True)
    note = row.text("note", required=False)
    if row.issues:
        return None
    assert subject is not None and categories is not None and decision_date is not None
    assert authority_uscc is not None and source_uscc is not None
    text = {key: value or "" for key, value in required.items()}
    return PenaltyRecord(
        subject=subject,
        decision_number=_half(text["decision_number"]),
        violation_type=text["violation_type"],
        violation_facts=text["violation_facts"],
        legal_basis=text["legal_basis"],
        categories=categories,
        content=text["content"],
        fine_wan=fine,
        confiscated_wan=confiscated,
        license_affected=license_affected,
        decision_date=decision_date,
        penalty_valid_until=valid_until,
        publication_deadline=deadline,
        authority=text["authority"],
        authority_uscc=authority_uscc,
        data_source=text["data_source"],
        data_source_uscc=source_uscc,
        note=note,
    )


def _licensing(row: _Row) -> LicensingRecord | None:
    subject = _subject(row)
    required = {
        key: row.text(key, required=True)
        for key in ("document_name", "decision_number", "content", "authority", "data_source")
    }
    category = row.enum("license_category", LicenseCategory)
    certificate_name = row.text("certificate_name", required=False)
    license_number = row.text("license_number", required=False)
    decision_date = row.parsed("decision_date", _date, IssueReason.BAD_DATE, required=True)
    valid_from = row.parsed("valid_from", _date, IssueReason.BAD_DATE, required=True)
    valid_to = row.parsed("valid_to", _date, IssueReason.BAD_DATE, required=True)
    row.ordered("valid_from", valid_from, "valid_to", valid_to)
    row.ordered("decision_date", decision_date, "valid_to", valid_to)
    if valid_to is not None and valid_to > LONG_TERM:
        row.report("valid_to", IssueReason.BAD_DATE, "after 2099-12-31 (long-term)")
    authority_uscc = row.uscc("authority_uscc", required=True)
    status = row.enum("status", LicenseStatus, aliases=_STATUS_WORDS)
    source_uscc = row.uscc("data_source_uscc", required=True)
    note = row.text("note", required=False)
    if row.issues:
        return None
    assert subject is not None and category is not None and status is not None
    assert decision_date is not None and valid_from is not None and valid_to is not None
    assert authority_uscc is not None and source_uscc is not None
    text = {key: value or "" for key, value in required.items()}
    return LicensingRecord(
        subject=subject,
        document_name=text["document_name"],
        decision_number=_half(text["decision_number"]),
        category=category,
        certificate_name=certificate_name,
        license_number=license_number,
        content=text["content"],
        decision_date=decision_date,
        valid_from=valid_from,
        valid_to=valid_to,
        authority=text["authority"],
        authority_uscc=authority_uscc,
        status=status,
        data_source=text["data_source"],
        data_source_uscc=source_uscc,
        note=note,
    )


def validate_row(
    layout: Layout, row: int, values: Mapping[str, object], headers: Mapping[str, str]
) -> tuple[PenaltyRecord | LicensingRecord | None, list[Issue]]:
    """Validate the cells of one row (column key → raw value) against ``layout``. Returns the
    record and no issues, or ``None`` and every issue found in the row (not only the
    first). ``headers`` maps column keys to the headers as the file writes them."""
    state = _Row(layout, row, values, headers)
    record: PenaltyRecord | LicensingRecord | None
    record = _penalty(state) if layout is Layout.PENALTY else _licensing(state)
    return record, state.issues
