"""The archival description carried in bag-info.txt (著录项, after DA/T 46 and DA/T 22):
全宗号, 档号, 题名, 责任者, 形成时间, 保管期限, 密级, 件数. Parsing checks presence and range
and refuses classified material; nothing is stored before it passes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from archives.errors import ClassifiedMaterial, DescriptionInvalid

REQUIRED_FIELDS = ("全宗号", "档号", "题名", "责任者", "形成时间", "保管期限", "密级", "件数")
"""The description fields every package must carry."""

RETENTION_PERIODS = ("永久", "30年", "10年")
"""保管期限 values (DA/T 22-2015)."""

NON_CLASSIFIED = ("公开", "非密", "内部", "无")
"""密级 values this system accepts."""

CLASSIFIED = ("秘密", "机密", "绝密")
"""State-secret levels: refused (a classified system must hold them)."""

MAX_FIELD_CHARS = 500
"""Longest accepted description value."""

MAX_ITEMS = 100_000
"""Largest 件数."""

EARLIEST_YEAR = 1000
"""Earliest 形成时间 accepted (older records are dated differently)."""

_FONDS = re.compile(r"^[0-9A-Za-z]{1,16}$")
_DATE = re.compile(r"^(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?$")


@dataclass(frozen=True)
class DatePeriod:
    """A 形成时间 as a closed interval of days: ``2023`` is the whole year, ``2023-05`` the
    month, ``2023-05-04`` the day, ``2023-01-01/2023-06-30`` a range."""

    first: date
    """The first day."""
    last: date
    """The last day."""
    text: str
    """As written."""

    def contains(self, other: DatePeriod) -> bool:
        """Whether ``other`` lies wholly inside this period."""
        return self.first <= other.first and other.last <= self.last


def _one_date(text: str, *, end: bool) -> tuple[date, date]:
    match = _DATE.match(text)
    if match is None:
        raise DescriptionInvalid(f"形成时间 {text!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = match.groups()
    try:
        if day is not None:
            moment = date(int(year), int(month), int(day))
            return moment, moment
        if month is not None:
            first = date(int(year), int(month), 1)
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return first, date.fromordinal(following.toordinal() - 1)
        return date(int(year), 1, 1), date(int(year), 12, 31)
    except ValueError:
        raise DescriptionInvalid(f"形成时间 {text!r} is not a calendar date") from None


def parse_period(text: str) -> DatePeriod:
    """A 形成时间 value as a :class:`DatePeriod`; raises DescriptionInvalid."""
    text = text.strip()
    if "/" in text:
        start, _, stop = text.partition("/")
        first, _ = _one_date(start.strip(), end=False)
        _, last = _one_date(stop.strip(), end=True)
    else:
        first, last = _one_date(text, end=False)
    if first > last:
        raise DescriptionInvalid(f"形成时间 {text!r} ends before it starts")
    if first.year < EARLIEST_YEAR:
        raise DescriptionInvalid(f"形成时间 {text!r} is before {EARLIEST_YEAR}")
    return DatePeriod(first=first, last=last, text=text)


@dataclass(frozen=True)
class ArchivalDescription:
    """The description of one package."""

    fonds: str
    """全宗号."""
    archival_code: str
    """档号."""
    title: str
    """题名."""
    creator: str
    """责任者."""
    formed: DatePeriod
    """形成时间."""
    retention: str
    """保管期限: 永久, 30年 or 10年."""
    classification: str
    """密级 (always one of NON_CLASSIFIED)."""
    item_count: int
    """件数."""

    def to_json(self) -> dict[str, str | int]:
        """The description with its Chinese field names, as stored and exported."""
        return {
            "全宗号": self.fonds,
            "档号": self.archival_code,
            "题名": self.title,
            "责任者": self.creator,
            "形成时间": self.formed.text,
            "保管期限": self.retention,
            "密级": self.classification,
            "件数": self.item_count,
        }


def _single(info: dict[str, str | list[str]], name: str) -> str:
    value = info.get(name)
    if value is None:
        raise DescriptionInvalid(f"bag-info.txt has no {name}")
    if isinstance(value, list):
        raise DescriptionInvalid(f"bag-info.txt gives {name} {len(value)} times")
    value = value.strip()
    if not value:
        raise DescriptionInvalid(f"{name} is empty")
    if len(value) > MAX_FIELD_CHARS or not value.isprintable():
        raise DescriptionInvalid(f"{name} is over {MAX_FIELD_CHARS} characters or unprintable")
    return value


def check_classification(info: dict[str, str | list[str]]) -> str:
    """The package's 密级 if this system may hold it; raises ClassifiedMaterial for a
    state-secret level, DescriptionInvalid for a missing or unknown one."""
    level = _single(info, "密级")
    if any(secret in level for secret in CLASSIFIED):
        raise ClassifiedMaterial(
            f"密级 {level}: this system accepts only non-classified material; "
            "transfer classified records through a classified system"
        )
    if level not in NON_CLASSIFIED:
        raise DescriptionInvalid(f"密级 {level!r} is none of {', '.join(NON_CLASSIFIED)}")
    return level


def parse_description(info: dict[str, str | list[str]]) -> ArchivalDescription:
    """The archival description in bag-info tags; raises ClassifiedMaterial first if the
    package is classified, then DescriptionInvalid for the first missing or out-of-range
    field."""
    classification = check_classification(info)
    fonds = _single(info, "全宗号")
    if not _FONDS.match(fonds):
        raise DescriptionInvalid(f"全宗号 {fonds!r} is not 1 to 16 letters or digits")
    retention = _single(info, "保管期限")
    if retention not in RETENTION_PERIODS:
        raise DescriptionInvalid(
            f"保管期限 {retention!r} is none of {', '.join(RETENTION_PERIODS)}"
        )
    count_text = _single(info, "件数")
    if not count_text.isdigit() or not 1 <= int(count_text) <= MAX_ITEMS:
        raise DescriptionInvalid(f"件数 {count_text!r} is not a whole number 1 to {MAX_ITEMS}")
    return ArchivalDescription(
        fonds=fonds,
        archival_code=_single(info, "档号"),
        title=_single(info, "题名"),
        creator=_single(info, "责任者"),
        formed=parse_period(_single(info, "形成时间")),
        retention=retention,
        classification=classification,
        item_count=int(count_text),
    )


__all__ = [
    "CLASSIFIED",
    "NON_CLASSIFIED",
    "REQUIRED_FIELDS",
    "RETENTION_PERIODS",
    "ArchivalDescription",
    "DatePeriod",
    "check_classification",
    "parse_description",
    "parse_period",
]
