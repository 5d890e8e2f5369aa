"""The archival description: required fields, ranges, and classified material refused."""

from __future__ import annotations

from datetime import date

import pytest
from archive_samples import description
from hypothesis import given
from hypothesis import strategies as st

from archives.description import CLASSIFIED, parse_description, parse_period
from archives.errors import ClassifiedMaterial, DescriptionInvalid


def test_the_sample_description_parses() -> None:
    parsed = parse_description(dict(description()))
    assert parsed.item_count == 4 and parsed.retention == "永久"
    assert parsed.formed.first == date(2023, 1, 1) and parsed.formed.last == date(2023, 12, 31)
    assert parsed.to_json()["档号"] == "J001-WS·2023-Y-BGS-0001"


@pytest.mark.parametrize("level", [*CLASSIFIED, "机密★10年"])
def test_classified_material_is_refused_clearly(level: str) -> None:
    with pytest.raises(ClassifiedMaterial, match="non-classified"):
        parse_description(dict(description(密级=level)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("保管期限", "长期"),
        ("件数", "0"),
        ("件数", "三"),
        ("形成时间", "2023-02-30"),
        ("形成时间", "2024/2023"),
        ("全宗号", "J 001"),
        ("密级", "不知道"),
        ("题名", ""),
    ],
)
def test_out_of_range_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(DescriptionInvalid):
        parse_description(dict(description(**{field: value})))


def test_a_repeated_field_is_refused() -> None:
    info: dict[str, str | list[str]] = dict(description())
    info["档号"] = ["A-1", "A-2"]
    with pytest.raises(DescriptionInvalid, match="2 times"):
        parse_description(info)


def test_periods() -> None:
    month = parse_period("2024-02")
    assert (month.first, month.last) == (date(2024, 2, 1), date(2024, 2, 29))
    span = parse_period("2023-01-01/2023-06")
    assert span.contains(parse_period("2023-06-30")) and not span.contains(parse_period("2023"))


@given(st.text(max_size=40))
def test_any_period_text_parses_or_is_refused_typed(text: str) -> None:
    try:
        period = parse_period(text)
    except DescriptionInvalid:
        return
    assert period.first <= period.last
