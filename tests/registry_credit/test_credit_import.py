"""Import of 双公示 files through the API (and the SDK): all or nothing with the report,
valid rows with the rejected rows' report anchored, re-import changes nothing, a changed
row is a correction that keeps its history."""

from __future__ import annotations

import pytest
from credit_harness import CreditApp, penalties, penalty_file

from sdk.credit_client import CreditImportRejected

ENTERPRISE = "91350100M000100Y43"


def test_a_file_with_one_bad_row_imports_nothing_and_reports_row_column_value_reason(
    app: CreditApp,
) -> None:
    rows = penalties(5)
    rows[2]["code_1"] = "91350100M000100Y44"  # wrong check character
    with pytest.raises(CreditImportRejected) as refused:
        app.sdk.import_file(penalty_file(rows))
    report = refused.value.report
    assert report["rows_rejected"] == 1 and report["issues_total"] == 1
    (issue,) = report["issues"]
    assert issue["row"] == 4  # header on row 1, the third data row
    assert issue["column"] == "行政相对人代码_1"
    assert issue["value"] == "91350100M000100Y44"
    assert issue["reason"] == "bad_uscc"
    assert app.records() == 0 and app.events() == 0


def test_valid_rows_mode_imports_the_rest_and_anchors_the_report_of_rejected_rows(
    app: CreditApp,
) -> None:
    rows = penalties(4)
    rows[1]["decision_date"] = "2023-02-30"
    summary = app.sdk.import_file(penalty_file(rows), mode="valid_rows")
    assert (summary.published, summary.report["rows_rejected"]) == (3, 1)
    assert summary.report["issues"][0]["reason"] == "bad_date"
    assert summary.report_hash is not None
    kinds = [event["kind"] for event in app.sdk.pending_events()]
    assert kinds.count("publish") == 3 and kinds.count("import_report") == 1
    assert kinds.count("rule_set") == 1


def test_reimport_changes_nothing_and_a_changed_row_is_a_correction_with_history(
    app: CreditApp,
) -> None:
    data = penalty_file(penalties(3))
    first = app.sdk.import_file(data)
    events = app.events()
    again = app.sdk.import_file(data)
    assert (first.published, again.published, again.unchanged) == (3, 0, 3)
    assert app.events() == events and app.records() == 3

    changed = penalties(3)
    changed[1]["fine_wan"] = "5"
    corrected = app.sdk.import_file(penalty_file(changed))
    assert (corrected.corrected, corrected.unchanged) == (1, 2)
    assert app.records() == 3

    profile = app.sdk.authority_profile(ENTERPRISE)
    (record,) = [r for r in profile["records"] if r["current"]["version"] == 2]
    assert [v["fields"]["fine_wan"] for v in record["versions"]] == ["2", "5"]
    assert [e["kind"] for e in record["events"]] == ["publish", "correct"]
    assert record["events"][1]["changed_fields"] == ["fine_wan"]
    # Fields that did not change keep their commitment across versions.
    before, after = (v["field_hashes"] for v in record["versions"])
    assert before["decision_number"] == after["decision_number"]
    assert before["fine_wan"] != after["fine_wan"]


def test_a_department_cannot_import_another_authoritys_decisions(app: CreditApp) -> None:
    rows = penalties(2, authority_uscc="91350100M000100Y43", data_source_uscc=ENTERPRISE)
    with pytest.raises(Exception) as refused:
        app.sdk.import_file(penalty_file(rows))
    assert getattr(refused.value, "code", None) == "not_the_authority"
    assert app.records() == 0
