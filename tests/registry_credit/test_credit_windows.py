"""Publication windows and repair served, on a fixed clock: a record leaves public display
exactly at its window's end (its history stays for authorised readers); repair applications
before the minimum are refused, ones undecided after five working days are flagged overdue,
and an approval takes the record off display at once, every step visible to the subject."""

from __future__ import annotations

import datetime

import pytest
from credit_harness import CreditApp, black_list_entry, penalties, penalty_file

from sdk.trust_types import RegistryError

ENTERPRISE = "91350100M000100Y43"
CST = datetime.timezone(datetime.timedelta(hours=8))
WINDOW_END = datetime.datetime(2024, 5, 1, tzinfo=CST)
"""Decided 2023-05-01, an ordinary penalty (罚款) under order 58: shown for 12 months."""
MINIMUM_END = datetime.datetime(2023, 8, 1, tzinfo=CST)
"""...and repairable after 3."""
INSTANT = datetime.timedelta(microseconds=1)


def _shown(app: CreditApp, at: datetime.datetime) -> list[str]:
    profile = app.sdk.public_profile(ENTERPRISE, at)
    return [record["id"] for record in profile["records"]]


def test_a_record_leaves_public_display_exactly_at_its_windows_end(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    (record_id,) = _shown(app, WINDOW_END - INSTANT)
    assert _shown(app, WINDOW_END) == []
    assert app.sdk.search("贸易")[0]["records_on_display"] == 1
    app.clock.set(WINDOW_END)
    assert app.sdk.search("贸易") == []
    profile = app.sdk.authority_profile(ENTERPRISE, WINDOW_END)
    (record,) = profile["records"]
    assert record["current"]["id"] == record_id and record["displayed"] is False
    assert [event["kind"] for event in record["events"]] == ["publish"]


def test_repair_before_the_minimum_is_refused_and_approval_removes_the_record_at_once(
    app: CreditApp,
) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    (record_id,) = _shown(app, app.clock.now())
    with pytest.raises(RegistryError) as early:
        app.sdk.apply_repair(record_id, ENTERPRISE, "罚款已缴清", obligations_fulfilled=True)
    assert early.value.code == "repair_before_minimum"

    app.clock.set(MINIMUM_END)
    with pytest.raises(RegistryError) as unmet:
        app.sdk.apply_repair(record_id, ENTERPRISE, "申请", obligations_fulfilled=False)
    assert unmet.value.code == "repair_obligations_unmet"
    with pytest.raises(RegistryError) as stranger:
        app.sdk.apply_repair(record_id, "11100000000013338W", "x", obligations_fulfilled=True)
    assert stranger.value.status_code == 404
    application = app.sdk.apply_repair(
        record_id, ENTERPRISE, "罚款已缴清，缴款书号 0001", obligations_fulfilled=True
    )
    assert application["state"] == "pending" and application["overdue"] is False
    assert app.sdk.overdue_repairs() == []

    app.clock.set(MINIMUM_END + datetime.timedelta(days=8))
    (overdue,) = app.sdk.overdue_repairs()
    assert overdue["id"] == application["id"] and overdue["overdue"] is True
    assert _shown(app, app.clock.now()) == [record_id]

    decided = app.sdk.decide_repair(application["id"], approve=True, reason="已履行，同意修复")
    assert decided["state"] == "approved"
    assert _shown(app, app.clock.now()) == []
    assert _shown(app, app.clock.now() - INSTANT) == [record_id]

    seen = app.sdk.authority_profile(ENTERPRISE)
    (record,) = seen["records"]
    assert [event["kind"] for event in record["events"]] == ["publish", "repair", "stop_publishing"]
    (repair,) = seen["repairs"]
    assert (repair["state"], repair["decision_reason"]) == ("approved", "已履行，同意修复")
    assert app.sdk.overdue_repairs() == []


def test_the_repair_deadline_counts_working_days_across_national_day(app: CreditApp) -> None:
    """Received on Thursday 2023-09-28: 09-29 to 10-06 are off (国办发明电〔2022〕16号), the
    make-up weekend 10-07/10-08 is worked, so the fifth working day is 10-11 and the
    application is overdue from midnight after it (seven calendar days would say 10-05)."""
    app.sdk.import_file(penalty_file(penalties(1)))
    (record_id,) = _shown(app, app.clock.now())
    app.clock.set(datetime.datetime(2023, 9, 28, 10, 0, tzinfo=CST))
    application = app.sdk.apply_repair(
        record_id, ENTERPRISE, "罚款已缴清", obligations_fulfilled=True
    )
    deadline = datetime.datetime(2023, 10, 12, tzinfo=CST)
    assert datetime.datetime.fromisoformat(application["deadline"]) == deadline
    app.clock.set(deadline - INSTANT)
    assert app.sdk.overdue_repairs() == []
    app.clock.set(deadline)
    (overdue,) = app.sdk.overdue_repairs()
    assert overdue["id"] == application["id"] and overdue["overdue"] is True


def test_a_withdrawn_decision_stops_display_and_cannot_be_withdrawn_twice(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(2)))
    first, second = sorted(_shown(app, app.clock.now()))
    app.sdk.withdraw(first, "复议撤销")
    assert _shown(app, app.clock.now()) == [second]
    with pytest.raises(RegistryError) as twice:
        app.sdk.withdraw(first, "复议撤销")
    assert twice.value.code == "already_withdrawn"


def test_check_follows_the_list_and_every_call_is_in_the_subjects_profile(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    app.sdk.publish_list_entry(black_list_entry(1))
    before = app.sdk.check(ENTERPRISE, "government_procurement", datetime.date(2023, 5, 31))
    during = app.sdk.check(ENTERPRISE, "government_procurement", datetime.date(2023, 6, 1))
    assert (before.decision, during.decision) == ("allowed", "restricted")
    (reason,) = during.reasons
    assert len(reason["basis_record_ids"]) == 1 and during.proofs == {
        reason["entry_record_id"]: None,
        reason["basis_record_ids"][0]: None,
    }  # nothing is anchored without a chain
    (record,) = [
        r for r in app.sdk.public_profile(ENTERPRISE)["records"] if r["kind"] == "list_entry"
    ]
    app.sdk.exit_list(record["id"], datetime.date(2023, 7, 1), "信用修复")
    after = app.sdk.check(ENTERPRISE, "government_procurement", datetime.date(2023, 7, 1))
    assert after.decision == "allowed"
    checks = app.sdk.authority_profile(ENTERPRISE)["checks"]
    assert [c["decision"] for c in checks] == ["allowed", "restricted", "allowed"]
