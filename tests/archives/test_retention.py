"""Retention periods (保管期限) run from January 1 after the last year of 形成时间; a 永久
package never becomes disposable."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archives.description import parse_period
from archives.errors import DescriptionInvalid
from archives.retention import (
    PermanentRetention,
    RetentionNotExpired,
    check_disposable,
    disposable_from,
)


def test_the_period_starts_the_year_after_forming() -> None:
    assert disposable_from("10年", parse_period("2013-05-04")) == date(2024, 1, 1)
    assert disposable_from("30年", parse_period("1990/1993-06")) == date(2024, 1, 1)
    assert disposable_from("永久", parse_period("1950")) is None
    with pytest.raises(DescriptionInvalid):
        disposable_from("5年", parse_period("2000"))


def test_the_last_day_of_the_period_is_refused_and_the_next_allowed() -> None:
    formed = parse_period("2013")
    with pytest.raises(RetentionNotExpired):
        check_disposable("10年", formed, date(2023, 12, 31))
    assert check_disposable("10年", formed, date(2024, 1, 1)) == date(2024, 1, 1)


@given(
    year=st.integers(min_value=1000, max_value=2900),
    today=st.dates(min_value=date(1000, 1, 1), max_value=date(9000, 12, 31)),
)
def test_a_permanent_package_is_never_disposable(year: int, today: date) -> None:
    with pytest.raises(PermanentRetention):
        check_disposable("永久", parse_period(str(year)), today)


@given(
    retention=st.sampled_from(["10年", "30年"]),
    year=st.integers(min_value=1000, max_value=2900),
    today=st.dates(min_value=date(1000, 1, 1), max_value=date(9000, 12, 31)),
)
def test_disposable_exactly_from_the_end_of_the_period(
    retention: str, year: int, today: date
) -> None:
    years = int(retention.removesuffix("年"))
    end = date(year + 1 + years, 1, 1)
    if today >= end:
        assert check_disposable(retention, parse_period(str(year)), today) == end
    else:
        with pytest.raises(RetentionNotExpired):
            check_disposable(retention, parse_period(str(year)), today)
