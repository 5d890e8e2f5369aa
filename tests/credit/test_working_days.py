"""Working days on the State Council's calendar: weekends, statutory holidays and the days
moved into them are off, make-up Saturdays and Sundays (调休) are worked; deadlines in
working days start the day after receipt and end at midnight China Standard Time."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit.holiday_data import YEARS, YearArrangement
from credit.working_days import (
    MAX_WORKING_DAYS,
    WorkingDayCalendar,
    national_calendar,
    working_day_deadline,
)

EXAMPLES: dict[str, Any] = json.loads(
    Path(__file__).with_name("working_day_examples.json").read_text(encoding="utf-8")
)
CALENDAR = national_calendar()

days = st.dates(datetime.date(2023, 1, 1), datetime.date(2027, 12, 31))
counts = st.integers(1, 80)


def _day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


@pytest.mark.parametrize("day, working", sorted(EXAMPLES["working_days"].items()))
def test_known_days(day: str, working: bool) -> None:
    assert CALENDAR.is_working_day(_day(day)) is working


@pytest.mark.parametrize(
    "example", EXAMPLES["added"], ids=[example["why"] for example in EXAMPLES["added"]]
)
def test_adding_working_days_across_national_day_and_spring_festival(
    example: dict[str, Any],
) -> None:
    end = CALENDAR.add_working_days(_day(example["start"]), example["count"])
    assert end == _day(example["end"])


@pytest.mark.parametrize("example", EXAMPLES["deadlines"])
def test_a_deadline_ends_at_midnight_china_time_after_its_last_working_day(
    example: dict[str, Any],
) -> None:
    received = datetime.datetime.fromisoformat(example["received"])
    deadline = working_day_deadline(received, example["count"], CALENDAR)
    assert deadline == datetime.datetime.fromisoformat(example["deadline"])


@given(days, counts)
def test_adding_working_days_lands_on_a_working_day_after_exactly_that_many(
    start: datetime.date, count: int
) -> None:
    end = CALENDAR.add_working_days(start, count)
    assert end > start
    assert CALENDAR.is_working_day(end)
    between = (start + datetime.timedelta(days=offset) for offset in range(1, (end - start).days))
    assert sum(CALENDAR.is_working_day(day) for day in between) == count - 1


@given(days, days, counts, counts)
def test_adding_working_days_is_monotone(
    first: datetime.date, second: datetime.date, count: int, more: int
) -> None:
    early, late = sorted((first, second))
    assert CALENDAR.add_working_days(early, count) <= CALENDAR.add_working_days(late, count)
    fewer, most = sorted((count, more))
    assert CALENDAR.add_working_days(early, fewer) <= CALENDAR.add_working_days(early, most)
    if fewer < most:
        assert CALENDAR.add_working_days(early, fewer) < CALENDAR.add_working_days(early, most)


@given(days)
def test_every_make_up_day_is_a_weekend_day_worked_and_every_holiday_is_off(
    day: datetime.date,
) -> None:
    data = YEARS[day.year]
    worked = {_day(text) for text in data.make_up_working_days}
    if day in worked:
        assert day.weekday() >= 5 and CALENDAR.is_working_day(day)
    elif day.weekday() >= 5:
        assert not CALENDAR.is_working_day(day)


def test_years_held_and_the_provisional_one() -> None:
    assert [year for year in range(2022, 2029) if CALENDAR.covers(year)] == [
        2023,
        2024,
        2025,
        2026,
    ]
    assert YEARS[2027].provisional and YEARS[2027].make_up_working_days == ()
    # Outside the data, Monday to Friday only.
    assert CALENDAR.is_working_day(datetime.date(2028, 1, 3))
    assert not CALENDAR.is_working_day(datetime.date(2028, 1, 1))


@pytest.mark.parametrize("count", [0, -1, MAX_WORKING_DAYS + 1])
def test_a_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="count working days"):
        CALENDAR.add_working_days(datetime.date(2025, 1, 2), count)


def test_a_naive_time_of_receipt_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        working_day_deadline(datetime.datetime(2025, 1, 2, 9), 5, CALENDAR)


@pytest.mark.parametrize(
    "arrangement, problem",
    [
        (YearArrangement("x", ("2025-10-11",), ("2025-10-11",)), "both rests and works"),
        (YearArrangement("x", (), ("2025-10-09",)), "weekday a make-up day"),
        (YearArrangement("x", ("2024-12-31..2025-01-01",), ()), "another year"),
        (YearArrangement("x", ("2025-01-03..2025-01-01",), ()), "backwards"),
    ],
)
def test_contradictory_data_is_refused(arrangement: YearArrangement, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        WorkingDayCalendar({2025: arrangement})
