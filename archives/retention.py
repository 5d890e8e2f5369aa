"""When a package may be destroyed: its 保管期限 (DA/T 22-2015: 永久, 30年, 10年) runs from
the first day of the year after the last year of its 形成时间 (档案保管期限自文件形成之
次年1月1日起算). A package kept 永久 is never destroyed; one whose period has not run out
is refused. The rule is checked before anything of a disposal happens."""

from __future__ import annotations

from datetime import date

from archives.description import RETENTION_PERIODS, DatePeriod
from archives.errors import ArchiveError, DescriptionInvalid

PERMANENT = "永久"
"""The 保管期限 of a package never destroyed."""


class RetentionNotExpired(ArchiveError):
    """A disposal asked before the package's retention period has run out."""

    code = "retention_not_expired"


class PermanentRetention(ArchiveError):
    """A disposal asked of a package kept 永久 (never destroyed)."""

    code = "retention_permanent"


def retention_years(retention: str) -> int | None:
    """The years of a 保管期限 (None for 永久); raises DescriptionInvalid for an unknown
    one."""
    if retention not in RETENTION_PERIODS:
        known = ", ".join(RETENTION_PERIODS)
        raise DescriptionInvalid(f"保管期限 {retention!r} is none of {known}")
    if retention == PERMANENT:
        return None
    return int(retention.removesuffix("年"))


def disposable_from(retention: str, formed: DatePeriod) -> date | None:
    """The first day a package of ``retention`` formed over ``formed`` may be destroyed:
    January 1 after its period of whole years, counted from the January 1 after the last
    year of ``formed``; None if it is kept 永久."""
    years = retention_years(retention)
    if years is None:
        return None
    return date(formed.last.year + 1 + years, 1, 1)


def check_disposable(retention: str, formed: DatePeriod, today: date) -> date:
    """The day the package became disposable (on or before ``today``); raises
    PermanentRetention or RetentionNotExpired otherwise."""
    start = disposable_from(retention, formed)
    if start is None:
        raise PermanentRetention("a package kept 永久 is never destroyed")
    if today < start:
        raise RetentionNotExpired(
            f"保管期限 {retention} of 形成时间 {formed.text} runs until {start.isoformat()} "
            f"(exclusive): it may not be destroyed before"
        )
    return start


__all__ = [
    "PERMANENT",
    "PermanentRetention",
    "RetentionNotExpired",
    "check_disposable",
    "disposable_from",
    "retention_years",
]
