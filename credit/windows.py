"""Publication windows (公示期限) of records under a rule set, whether a record is publicly
shown at an instant, when credit repair (信用修复) may be applied for, and what an approved
repair does.

A penalty's window starts at midnight (in the rule set's time zone) of the decision date;
repair may be applied for from the end of the minimum period; public display stops by
itself at the end of the maximum period, or at once when a repair is approved or the
decision is withdrawn. Ends are exclusive: at the exact instant of the end the record is no
longer shown. The window says which rule set (id, version, content hash) it came from, so
the computation can be checked later; the record, its proof and its history stay for
authorised readers after display stops.
"""

from __future__ import annotations

import calendar
import datetime
import enum
from dataclasses import dataclass, replace

from chain.primitives import Hash32
from credit.errors import CreditError
from credit.records import LicensingRecord, PenaltyRecord
from credit.rulesets import Period, RuleSet

__all__ = [
    "RepairRefused",
    "Severity",
    "Window",
    "add_months",
    "approve_repair",
    "classify",
    "is_displayed",
    "licensing_window",
    "penalty_window",
    "repair_available_from",
    "require_repair_eligible",
    "stop_display",
]


class Severity(enum.StrEnum):
    """How a penalty is classified for its publication period."""

    NOT_PUBLISHED = "not_published"
    """Not published at all (e.g. a mere warning under order 58)."""
    ORDINARY = "ordinary"
    """一般失信行为."""
    SERIOUS = "serious"
    """严重失信行为."""


class RepairRefused(CreditError):
    """A repair application that cannot be accepted now. ``reason`` is one of
    ``not_published``, ``before_minimum``, ``obligations_unmet``, ``already_stopped``,
    ``no_minimum`` (a licensing record)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Window:
    """When a record is publicly shown, and under which rule set."""

    start: datetime.datetime
    """First instant of display (timezone-aware)."""
    minimum_end: datetime.datetime | None
    """From this instant repair may be applied for; None when repair does not apply."""
    maximum_end: datetime.datetime | None
    """First instant after display (exclusive end); None for no end (a long-term license)."""
    severity: Severity | None
    """The penalty's classification; None for a licensing record."""
    rule_set_id: str
    """The rule set it was computed under."""
    rule_set_version: int
    """Its version."""
    rule_set_hash: Hash32
    """Its content hash (what is anchored)."""
    stopped_at: datetime.datetime | None = None
    """When display stopped early (approved repair, withdrawal); None if it did not."""

    @property
    def published(self) -> bool:
        """Whether the record is published at all."""
        return self.severity is not Severity.NOT_PUBLISHED

    @property
    def display_end(self) -> datetime.datetime | None:
        """The first instant the record is no longer shown, early stop included."""
        ends = [end for end in (self.maximum_end, self.stopped_at) if end is not None]
        return min(ends) if ends else None


def add_months(day: datetime.date, months: int) -> datetime.date:
    """``day`` plus ``months`` calendar months; a day past the end of the target month
    becomes its last day (2023-08-31 + 6 months = 2024-02-29)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime.date(year, month + 1, min(day.day, last))


def _midnight(day: datetime.date, rules: RuleSet) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(0), tzinfo=rules.utc_offset)


def classify(record: PenaltyRecord, rules: RuleSet, *, finding: Severity | None = None) -> Severity:
    """The severity of ``record`` under ``rules``: the deciding authority's ``finding`` if
    given; else not published if every category is in the rule set's not-published set;
    serious if any category is a serious one; ordinary otherwise."""
    if finding is not None:
        return finding
    categories = set(record.categories)
    if rules.not_published_categories and categories <= rules.not_published_categories:
        return Severity.NOT_PUBLISHED
    if categories & rules.serious_categories:
        return Severity.SERIOUS
    return Severity.ORDINARY


def _period(record: PenaltyRecord, rules: RuleSet, severity: Severity) -> Period:
    period = rules.serious if severity is Severity.SERIOUS else rules.ordinary
    text = record.violation_type + record.legal_basis
    for domain in rules.domain_minimums:
        if any(word in text for word in domain.keywords):
            minimum = max(period.min_months, domain.min_months)
            period = Period(minimum, max(minimum, period.max_months))
    return period


def penalty_window(
    record: PenaltyRecord, rules: RuleSet, *, finding: Severity | None = None
) -> Window:
    """The publication window of a penalty under ``rules`` (see :func:`classify` for
    ``finding``). A penalty that is not published gets an empty window (start = ends)."""
    severity = classify(record, rules, finding=finding)
    start = _midnight(record.decision_date, rules)
    if severity is Severity.NOT_PUBLISHED:
        return Window(start, None, start, severity, rules.id, rules.version, rules.content_hash)
    period = _period(record, rules, severity)
    minimum = _midnight(add_months(record.decision_date, period.min_months), rules)
    maximum = _midnight(add_months(record.decision_date, period.max_months), rules)
    return Window(start, minimum, maximum, severity, rules.id, rules.version, rules.content_hash)


def licensing_window(record: LicensingRecord, rules: RuleSet) -> Window:
    """The display window of a licensing decision: from the decision until the end of its
    validity plus the rule set's extra days; no end for a long-term license. An invalid
    (当前状态 2) license keeps its window: the status is shown with it."""
    start = _midnight(record.decision_date, rules)
    end: datetime.datetime | None = None
    if not record.long_term:
        last = record.valid_to + datetime.timedelta(days=1 + rules.licensing_days_after_validity)
        end = _midnight(last, rules)
    return Window(start, None, end, None, rules.id, rules.version, rules.content_hash)


def is_displayed(window: Window, now: datetime.datetime) -> bool:
    """Whether the record is on public display at ``now`` (timezone-aware): from its start,
    before its maximum end and before any early stop."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    end = window.display_end
    return window.start <= now and (end is None or now < end)


def repair_available_from(window: Window) -> datetime.datetime | None:
    """The first instant repair may be applied for (the end of the minimum period), or
    None when repair does not apply (not published, a licensing record)."""
    return window.minimum_end if window.published else None


def require_repair_eligible(
    window: Window, now: datetime.datetime, *, obligations_fulfilled: bool
) -> None:
    """Return if a repair application may be accepted at ``now``; raise
    :class:`RepairRefused` with the reason otherwise."""
    if not window.published:
        raise RepairRefused("not_published", "the record is not published")
    if window.minimum_end is None:
        raise RepairRefused("no_minimum", "repair does not apply to this record")
    if not is_displayed(window, now):
        raise RepairRefused("already_stopped", "the record is no longer on display")
    if now < window.minimum_end:
        raise RepairRefused(
            "before_minimum",
            f"repair may be applied for from {window.minimum_end.isoformat()}",
        )
    if not obligations_fulfilled:
        raise RepairRefused("obligations_unmet", "the penalty's obligations are not fulfilled")


def stop_display(window: Window, at: datetime.datetime) -> Window:
    """The window once display stops at ``at`` (a withdrawal, a decision to stop
    publishing): an earlier stop is kept."""
    if at.tzinfo is None:
        raise ValueError("the stop time must be timezone-aware")
    if window.stopped_at is not None and window.stopped_at <= at:
        return window
    return replace(window, stopped_at=at)


def approve_repair(
    window: Window, approved_at: datetime.datetime, *, obligations_fulfilled: bool
) -> Window:
    """The effect of approving a repair at ``approved_at``: display stops at that instant
    (the record, its proof and history stay). Raises :class:`RepairRefused` if the
    application could not be accepted then."""
    require_repair_eligible(window, approved_at, obligations_fulfilled=obligations_fulfilled)
    return stop_display(window, approved_at)
