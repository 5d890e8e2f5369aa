"""Working days (工作日) on the State Council's calendar: Monday to Friday, less the
statutory holidays and the days moved into them, plus the weekend days worked instead
(调休上班), as :mod:`credit.holiday_data` holds them year by year.

Deadlines that rules give in working days are counted here: the day something is received
does not count (the day after is the first), and a deadline runs to the end of its last
working day in China Standard Time. A year the data does not hold counts Monday to Friday
only (:meth:`WorkingDayCalendar.covers` tells which years are held)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from functools import lru_cache

from credit.holiday_data import YEARS, YearArrangement

__all__ = [
    "CHINA_STANDARD_TIME",
    "MAX_WORKING_DAYS",
    "REPAIR_DECISION_WORKING_DAYS",
    "WorkingDayCalendar",
    "national_calendar",
    "working_day_deadline",
]

CHINA_STANDARD_TIME = datetime.timezone(datetime.timedelta(hours=8), "CST")
"""The zone working days are counted in."""

REPAIR_DECISION_WORKING_DAYS = 5
"""Working days the authority has to decide a repair application after receiving it.
The number this project used before (as seven calendar days); the text of order 58 was not
found to check it against."""

MAX_WORKING_DAYS = 3_650
"""Most working days one call counts (ten years and more: a bound, not a rule)."""

_DAY = datetime.timedelta(days=1)


def _days(text: str) -> Iterator[datetime.date]:
    first, _, last = text.partition("..")
    day = datetime.date.fromisoformat(first)
    end = datetime.date.fromisoformat(last) if last else day
    if end < day:
        raise ValueError(f"range {text!r} runs backwards")
    while day <= end:
        yield day
        day += _DAY


class WorkingDayCalendar:
    """Which days are working days, from yearly arrangements."""

    def __init__(self, years: Mapping[int, YearArrangement]) -> None:
        """A calendar of ``years``; raises ValueError when a year's data contradicts
        itself (a day both off and worked, a worked day on a weekday, a day of another
        year)."""
        self._off: set[datetime.date] = set()
        self._worked: set[datetime.date] = set()
        self._years = frozenset(years)
        self._provisional = frozenset(year for year, data in years.items() if data.provisional)
        for year, data in years.items():
            off = {day for text in data.days_off for day in _days(text)}
            worked = {day for text in data.make_up_working_days for day in _days(text)}
            if any(day.year != year for day in off | worked):
                raise ValueError(f"the arrangement of {year} names a day of another year")
            if off & worked:
                raise ValueError(f"the arrangement of {year} both rests and works a day")
            if any(day.weekday() < 5 for day in worked):
                raise ValueError(f"the arrangement of {year} makes a weekday a make-up day")
            self._off |= off
            self._worked |= worked

    def covers(self, year: int) -> bool:
        """Whether ``year``'s published arrangement is held (not provisional)."""
        return year in self._years and year not in self._provisional

    def is_working_day(self, day: datetime.date) -> bool:
        """Whether ``day`` is a working day."""
        if day in self._worked:
            return True
        return day.weekday() < 5 and day not in self._off

    def add_working_days(self, start: datetime.date, count: int) -> datetime.date:
        """The ``count``-th working day after ``start`` (``start`` itself not counted),
        ``count`` from 1 to :data:`MAX_WORKING_DAYS`; raises ValueError otherwise."""
        if not 1 <= count <= MAX_WORKING_DAYS:
            raise ValueError(f"count working days from 1 to {MAX_WORKING_DAYS}")
        day = start
        left = count
        while left:
            day += _DAY
            if self.is_working_day(day):
                left -= 1
        return day


@lru_cache(maxsize=1)
def national_calendar() -> WorkingDayCalendar:
    """The calendar of :data:`credit.holiday_data.YEARS`."""
    return WorkingDayCalendar(YEARS)


def working_day_deadline(
    received_at: datetime.datetime, count: int, calendar: WorkingDayCalendar
) -> datetime.datetime:
    """The instant a deadline of ``count`` working days runs out for something received
    at ``received_at`` (timezone-aware): midnight (China Standard Time) at the end of the
    ``count``-th working day after the day of receipt."""
    if received_at.tzinfo is None:
        raise ValueError("the time of receipt must be timezone-aware")
    received_on = received_at.astimezone(CHINA_STANDARD_TIME).date()
    last = calendar.add_working_days(received_on, count)
    return datetime.datetime.combine(last + _DAY, datetime.time(), CHINA_STANDARD_TIME)
