"""Publication windows from versioned rule sets, display at an instant with a fixed clock,
and credit repair."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest
from credit_tables import SUBJECT
from hypothesis import given, settings
from hypothesis import strategies as st

import credit
from credit.errors import RuleSetError
from credit.records import (
    LicenseCategory,
    LicenseStatus,
    LicensingRecord,
    PenaltyCategory,
    PenaltyRecord,
)
from credit.rulesets import (
    BUNDLED_RULE_SETS,
    RuleSet,
    bundled_rule_set,
    load_rule_set,
    parse_rule_set,
)
from credit.windows import (
    RepairRefused,
    Severity,
    add_months,
    approve_repair,
    is_displayed,
    licensing_window,
    penalty_window,
    repair_available_from,
    stop_display,
)

ORDER_58_FILE = Path(credit.__file__).parent.joinpath("rules", "cn-ndrc-order-58.toml")

CST = datetime.timezone(datetime.timedelta(hours=8))
ONE_SECOND = datetime.timedelta(seconds=1)
ORDER_58 = bundled_rule_set("cn.ndrc.order-58")
RULES_527 = bundled_rule_set("cn.ndrc.2019-527")
SHENZHEN = bundled_rule_set("cn.gd.shenzhen.penalty")


def _penalty(
    categories: tuple[PenaltyCategory, ...] = (PenaltyCategory.FINE,),
    decided: datetime.date = datetime.date(2023, 5, 1),
    violation_type: str = "虚假宣传",
) -> PenaltyRecord:
    return PenaltyRecord(
        subject=SUBJECT,
        decision_number="罚1",
        violation_type=violation_type,
        violation_facts="事实",
        legal_basis="依据",
        categories=categories,
        content="罚款",
        fine_wan=None,
        confiscated_wan=None,
        license_affected=None,
        decision_date=decided,
        penalty_valid_until=None,
        publication_deadline=None,
        authority="市场监管局",
        authority_uscc="11100000000013338W",
        data_source="市场监管局",
        data_source_uscc="11220000013544541J",
        note=None,
    )


def test_bundled_rule_sets_have_their_periods_ids_versions_and_hashes() -> None:
    assert (ORDER_58.ordinary.min_months, ORDER_58.ordinary.max_months) == (3, 12)
    assert (ORDER_58.serious.min_months, ORDER_58.serious.max_months) == (12, 36)
    assert (RULES_527.serious.min_months, RULES_527.serious.max_months) == (6, 36)
    assert (SHENZHEN.ordinary.min_months, SHENZHEN.ordinary.max_months) == (3, 36)
    hashes = {bundled_rule_set(name).content_hash for name in BUNDLED_RULE_SETS}
    assert len(hashes) == len(BUNDLED_RULE_SETS)
    assert all(bundled_rule_set(name).version == 1 for name in BUNDLED_RULE_SETS)


def test_rule_set_hash_covers_content_not_formatting(tmp_path: Path) -> None:
    source = ORDER_58_FILE.read_text("utf-8")
    reformatted = "# another comment\n" + source.replace(" = ", "=")
    assert parse_rule_set(reformatted).content_hash == ORDER_58.content_hash
    changed = source.replace("max_months = 36", "max_months = 24")
    assert parse_rule_set(changed).content_hash != ORDER_58.content_hash
    path = tmp_path / "local.toml"
    path.write_text(changed, "utf-8")
    assert load_rule_set(path).serious.max_months == 24


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (("min_months = 12", "min_months = 40"), "bad_period"),
        (('"警告", "通报批评"', '"警告", "拘役"'), "bad_category"),
        (("version = 1", 'version = "1"'), "bad_field"),
        (("[licensing]", "[licensing"), "not_toml"),
    ],
)
def test_a_malformed_rule_set_is_a_typed_error(edit: tuple[str, str], reason: str) -> None:
    source = ORDER_58_FILE.read_text("utf-8")
    with pytest.raises(RuleSetError) as refused:
        parse_rule_set(source.replace(*edit, 1))
    assert refused.value.reason == reason


def test_order_58_windows_ordinary_serious_and_unpublished() -> None:
    ordinary = penalty_window(_penalty(), ORDER_58)
    assert ordinary.severity is Severity.ORDINARY
    assert ordinary.start == datetime.datetime(2023, 5, 1, tzinfo=CST)
    assert ordinary.minimum_end == datetime.datetime(2023, 8, 1, tzinfo=CST)
    assert ordinary.maximum_end == datetime.datetime(2024, 5, 1, tzinfo=CST)
    serious = penalty_window(
        _penalty((PenaltyCategory.FINE, PenaltyCategory.REVOKE_LICENSE)), ORDER_58
    )
    assert serious.severity is Severity.SERIOUS
    assert serious.maximum_end == datetime.datetime(2026, 5, 1, tzinfo=CST)
    found_serious = penalty_window(_penalty(), ORDER_58, finding=Severity.SERIOUS)
    assert found_serious.minimum_end == datetime.datetime(2024, 5, 1, tzinfo=CST)
    warning = penalty_window(_penalty((PenaltyCategory.WARNING,)), ORDER_58)
    assert not warning.published
    assert not is_displayed(warning, warning.start)
    assert repair_available_from(warning) is None
    # The same warning is published under the 2019 rule.
    assert penalty_window(_penalty((PenaltyCategory.WARNING,)), RULES_527).published
    assert (ordinary.rule_set_id, ordinary.rule_set_hash) == (ORDER_58.id, ORDER_58.content_hash)


def test_shenzhen_longer_minimum_in_safety_domains() -> None:
    ordinary = penalty_window(_penalty(), SHENZHEN)
    assert ordinary.minimum_end == datetime.datetime(2023, 8, 1, tzinfo=CST)
    assert ordinary.maximum_end == datetime.datetime(2026, 5, 1, tzinfo=CST)
    safety = penalty_window(_penalty(violation_type="违反安全生产规定"), SHENZHEN)
    assert safety.minimum_end == datetime.datetime(2024, 5, 1, tzinfo=CST)


def test_display_ends_at_the_exact_second_of_the_windows_end() -> None:
    window = penalty_window(_penalty(), ORDER_58)
    assert window.maximum_end is not None
    assert not is_displayed(window, window.start - ONE_SECOND)
    assert is_displayed(window, window.start)
    assert is_displayed(window, window.maximum_end - ONE_SECOND)
    assert not is_displayed(window, window.maximum_end)
    # The same instant in UTC.
    assert not is_displayed(window, window.maximum_end.astimezone(datetime.UTC))
    assert is_displayed(window, (window.maximum_end - ONE_SECOND).astimezone(datetime.UTC))


def test_repair_is_refused_before_the_minimum_and_stops_display_at_once() -> None:
    window = penalty_window(_penalty(), ORDER_58)
    assert window.minimum_end is not None
    with pytest.raises(RepairRefused) as early:
        approve_repair(window, window.minimum_end - ONE_SECOND, obligations_fulfilled=True)
    assert early.value.reason == "before_minimum"
    with pytest.raises(RepairRefused) as unmet:
        approve_repair(window, window.minimum_end, obligations_fulfilled=False)
    assert unmet.value.reason == "obligations_unmet"
    approved_at = window.minimum_end + datetime.timedelta(days=10)
    repaired = approve_repair(window, approved_at, obligations_fulfilled=True)
    assert is_displayed(repaired, approved_at - ONE_SECOND)
    assert not is_displayed(repaired, approved_at)
    # The window still says what it was: the record and its history are kept.
    assert dataclasses.replace(repaired, stopped_at=None) == window
    with pytest.raises(RepairRefused) as again:
        approve_repair(repaired, approved_at + ONE_SECOND, obligations_fulfilled=True)
    assert again.value.reason == "already_stopped"
    assert stop_display(repaired, approved_at + ONE_SECOND).stopped_at == approved_at


def test_licensing_window_runs_to_the_end_of_validity_and_long_term_has_no_end() -> None:
    record = LicensingRecord(
        subject=SUBJECT,
        document_name="许可决定书",
        decision_number="许1",
        category=LicenseCategory.ORDINARY,
        certificate_name=None,
        license_number=None,
        content="内容",
        decision_date=datetime.date(2023, 5, 1),
        valid_from=datetime.date(2023, 5, 1),
        valid_to=datetime.date(2028, 4, 30),
        authority="局",
        authority_uscc="11100000000013338W",
        status=LicenseStatus.VALID,
        data_source="局",
        data_source_uscc="11220000013544541J",
        note=None,
    )
    window = licensing_window(record, ORDER_58)
    assert window.maximum_end == datetime.datetime(2028, 5, 1, tzinfo=CST)
    assert repair_available_from(window) is None
    long_term = licensing_window(
        dataclasses.replace(record, valid_to=datetime.date(2099, 12, 31)), ORDER_58
    )
    assert long_term.maximum_end is None
    assert is_displayed(long_term, datetime.datetime(2090, 1, 1, tzinfo=CST))


days = st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2090, 12, 31))
rule_sets = st.sampled_from([ORDER_58, RULES_527, SHENZHEN])
category_sets = st.lists(
    st.sampled_from(list(PenaltyCategory)), min_size=1, max_size=4, unique=True
)


@settings(deadline=None)
@given(
    decided=days,
    rules=rule_sets,
    categories=category_sets,
    finding=st.none() | st.sampled_from(list(Severity)),
)
def test_window_bounds_hold_for_every_penalty(
    decided: datetime.date,
    rules: RuleSet,
    categories: list[PenaltyCategory],
    finding: Severity | None,
) -> None:
    window = penalty_window(_penalty(tuple(categories), decided), rules, finding=finding)
    assert window.maximum_end is not None
    assert window.start.date() == decided
    if not window.published:
        assert window.maximum_end == window.start
        return
    assert window.minimum_end is not None
    assert window.start <= window.minimum_end <= window.maximum_end
    period = rules.serious if window.severity is Severity.SERIOUS else rules.ordinary
    assert window.maximum_end.date() == add_months(decided, period.max_months)
    assert window.minimum_end.date() >= add_months(decided, period.min_months)


@settings(deadline=None)
@given(earlier=days, later=days, rules=rule_sets, categories=category_sets)
def test_windows_are_monotonic_in_the_decision_date(
    earlier: datetime.date, later: datetime.date, rules: RuleSet, categories: list[PenaltyCategory]
) -> None:
    earlier, later = min(earlier, later), max(earlier, later)
    first = penalty_window(_penalty(tuple(categories), earlier), rules)
    second = penalty_window(_penalty(tuple(categories), later), rules)
    assert first.start <= second.start
    assert first.maximum_end is not None and second.maximum_end is not None
    assert first.maximum_end <= second.maximum_end
    if first.minimum_end is not None and second.minimum_end is not None:
        assert first.minimum_end <= second.minimum_end


@settings(deadline=None)
@given(day=days, months=st.integers(0, 1200), more=st.integers(0, 1200))
def test_add_months_is_monotonic_and_lands_in_the_right_month(
    day: datetime.date, months: int, more: int
) -> None:
    shifted = add_months(day, months)
    assert (shifted.year * 12 + shifted.month) - (day.year * 12 + day.month) == months
    assert shifted.day <= day.day
    assert add_months(day, months) <= add_months(day, months + more)


@settings(deadline=None)
@given(decided=days, offset_seconds=st.integers(-(10**8), 10**9))
def test_display_is_exactly_the_half_open_window(
    decided: datetime.date, offset_seconds: int
) -> None:
    window = penalty_window(_penalty(decided=decided), ORDER_58)
    assert window.maximum_end is not None
    now = window.start + datetime.timedelta(seconds=offset_seconds)
    assert is_displayed(window, now) == (window.start <= now < window.maximum_end)
