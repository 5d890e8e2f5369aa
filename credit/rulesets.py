"""Rule sets of publication periods (公示期限), held as versioned data files in
``credit/rules/*.toml``, never in code. Each has an id, a version and a content hash (SM3 of
the canonical JSON of its parsed content), so the rule set in force can be anchored and a
window computed from it audited later.

The national rule (国家发展改革委令第58号) and the earlier one (发改办财金〔2019〕527号) ship
with the package, and a local one (Shenzhen); :func:`load_rule_set` reads any other file of
the same shape.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from chain.bounded_toml import TomlLimitError, loads_toml_bounded
from chain.crypto import sm3
from chain.primitives import Hash32
from credit.errors import RuleSetError
from credit.records import PenaltyCategory
from sdk import canonical

__all__ = [
    "BUNDLED_RULE_SETS",
    "MAX_RULE_FILE_BYTES",
    "DomainMinimum",
    "Period",
    "RuleSet",
    "bundled_rule_set",
    "load_rule_set",
    "parse_rule_set",
]

MAX_RULE_FILE_BYTES = 64 * 1024
"""Largest rule set or catalogue file read."""

MAX_RULE_FILE_DEPTH = 8
"""Deepest nesting of arrays and tables in a rule file."""

MAX_PERIOD_MONTHS = 1200
"""Longest period a rule may state (100 years): anything longer is a typing error."""

RULE_SET_HASH_PREFIX = b"lianxin/credit/rule-set/v1\x00"
"""Domain separation of rule set hashes."""

BUNDLED_RULE_SETS = {
    "cn.ndrc.order-58": "cn-ndrc-order-58.toml",
    "cn.ndrc.2019-527": "cn-ndrc-2019-527.toml",
    "cn.gd.shenzhen.penalty": "cn-shenzhen-penalty.toml",
}
"""Rule sets shipped in ``credit/rules``: id → file name."""


@dataclass(frozen=True)
class Period:
    """A minimum and a maximum publication period, in calendar months."""

    min_months: int
    """Months before which repair cannot be applied for."""
    max_months: int
    """Months after which publication stops by itself."""


@dataclass(frozen=True)
class DomainMinimum:
    """A longer minimum for penalties in a domain, recognised by keywords in the violation
    type or legal basis."""

    keywords: tuple[str, ...]
    """Any of these in 违法行为类型 or 处罚依据 puts the penalty in the domain."""
    min_months: int
    """The domain's minimum period, in months."""


@dataclass(frozen=True)
class RuleSet:
    """A versioned rule set of publication periods."""

    id: str
    """Stable identifier (``cn.ndrc.order-58``)."""
    version: int
    """Version of this rule set's content (a new version for every change)."""
    title: str
    """The rule's title."""
    source: str
    """The document it follows (文号)."""
    in_force_from: datetime.date
    """When the rule took effect."""
    utc_offset: datetime.timezone
    """The time zone in which dates of decisions are counted (China Standard Time)."""
    ordinary: Period
    """Periods of penalties for ordinary failures (一般失信行为)."""
    serious: Period
    """Periods of penalties for serious failures (严重失信行为)."""
    serious_categories: frozenset[PenaltyCategory]
    """处罚类别 that make a penalty serious when the authority does not classify it."""
    not_published_categories: frozenset[PenaltyCategory]
    """A penalty whose categories all fall in this set is not published at all."""
    domain_minimums: tuple[DomainMinimum, ...]
    """Longer minimums in given domains."""
    licensing_days_after_validity: int
    """Days a licensing record stays shown after its validity ends."""
    content_hash: Hash32
    """SM3 of the canonical form of the parsed file: what is anchored."""


def _require(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise RuleSetError("bad_field", f"{where}{key} must be a {kind.__name__}")
    return value


def _months(table: dict[str, Any], key: str, where: str) -> int:
    months = _require(table, key, int, where)
    if not 0 <= months <= MAX_PERIOD_MONTHS:
        raise RuleSetError("bad_field", f"{where}{key} must be 0–{MAX_PERIOD_MONTHS} months")
    return int(months)


def _period(table: dict[str, Any], where: str) -> Period:
    period = Period(_months(table, "min_months", where), _months(table, "max_months", where))
    if period.min_months > period.max_months:
        raise RuleSetError("bad_period", f"{where}min_months is more than max_months")
    return period


def _categories(table: dict[str, Any], key: str) -> frozenset[PenaltyCategory]:
    names = _require(table, key, list, "classification.")
    try:
        return frozenset(PenaltyCategory(name) for name in names)
    except ValueError as error:
        raise RuleSetError("bad_category", f"classification.{key}: {error}") from error


def rule_set_hash(content: dict[str, Any]) -> Hash32:
    """SM3 of the domain prefix and the RFC 8785 canonical JSON of a parsed rule file."""
    return sm3(RULE_SET_HASH_PREFIX + canonical.canonical_json(content))


def parse_rule_set(text: str) -> RuleSet:
    """A rule set from the text of its TOML file. Raises :class:`RuleSetError` (with the
    reason) for a file too large or deep, not TOML, or not of the expected shape."""
    try:
        content = loads_toml_bounded(
            text, max_bytes=MAX_RULE_FILE_BYTES, max_depth=MAX_RULE_FILE_DEPTH
        )
    except TomlLimitError as error:
        raise RuleSetError(error.reason, str(error)) from error
    penalty = _require(content, "penalty", dict, "")
    classification = _require(content, "classification", dict, "")
    licensing = _require(content, "licensing", dict, "")
    try:
        in_force = datetime.date.fromisoformat(_require(content, "in_force_from", str, ""))
    except ValueError as error:
        raise RuleSetError("bad_field", "in_force_from must be YYYY-MM-DD") from error
    offset = _require(content, "utc_offset_hours", int, "")
    if not -12 <= offset <= 14:
        raise RuleSetError("bad_field", "utc_offset_hours must be -12–14")
    domains = []
    for entry in _require(classification, "domain_minimums", list, "classification."):
        if not isinstance(entry, dict):
            raise RuleSetError("bad_field", "classification.domain_minimums holds tables")
        keywords = _require(entry, "keywords", list, "domain_minimums.")
        if not keywords or not all(isinstance(word, str) and word for word in keywords):
            raise RuleSetError("bad_field", "domain_minimums.keywords must be words")
        domains.append(DomainMinimum(tuple(keywords), _months(entry, "min_months", "")))
    version = _require(content, "version", int, "")
    if version < 1:
        raise RuleSetError("bad_field", "version must be 1 or more")
    days = _require(licensing, "days_after_validity", int, "licensing.")
    if not 0 <= days <= MAX_PERIOD_MONTHS * 31:
        raise RuleSetError("bad_field", "licensing.days_after_validity is out of range")
    return RuleSet(
        id=_require(content, "id", str, ""),
        version=version,
        title=_require(content, "title", str, ""),
        source=_require(content, "source", str, ""),
        in_force_from=in_force,
        utc_offset=datetime.timezone(datetime.timedelta(hours=offset)),
        ordinary=_period(_require(penalty, "ordinary", dict, "penalty."), "penalty.ordinary."),
        serious=_period(_require(penalty, "serious", dict, "penalty."), "penalty.serious."),
        serious_categories=_categories(classification, "serious_categories"),
        not_published_categories=_categories(classification, "not_published_categories"),
        domain_minimums=tuple(domains),
        licensing_days_after_validity=days,
        content_hash=rule_set_hash(content),
    )


def load_rule_set(path: Path) -> RuleSet:
    """The rule set in the TOML file at ``path`` (read at most
    :data:`MAX_RULE_FILE_BYTES` + 1 bytes)."""
    with path.open("rb") as file:
        data = file.read(MAX_RULE_FILE_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RuleSetError("not_utf8", f"{path} is not UTF-8") from error
    return parse_rule_set(text)


def bundled_rule_set(rule_set_id: str) -> RuleSet:
    """One of :data:`BUNDLED_RULE_SETS` by id. Raises :class:`RuleSetError`
    (``unknown``) for another id."""
    name = BUNDLED_RULE_SETS.get(rule_set_id)
    if name is None:
        raise RuleSetError("unknown", f"no bundled rule set {rule_set_id!r}")
    return parse_rule_set(resources.files("credit.rules").joinpath(name).read_text("utf-8"))
