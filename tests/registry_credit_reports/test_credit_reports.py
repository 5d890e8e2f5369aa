"""Credit reports served by the registry: what a report states at its instant, its PDF read
back (pdftotext) and rendered (pdftoppm), its PDF's SM3 waiting as a credit event for the
department's signature, and the genuine check — the exact PDF is genuine, a PDF changed by
one byte or re-rendered from altered content is not."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest
from credit_harness import CreditApp, penalties, penalty_file
from PIL import Image
from report_harness import (
    ENTERPRISE_NAME,
    ENTERPRISE_USCC,
    POPPLER,
    issue_report,
    pdf_text,
    pdf_to_png,
)

from chain.crypto import sm3
from credit.report import report_from_payload
from registry.credit.report_pdf import render_report_pdf
from sdk.trust_types import RegistryError

CLEAN_USCC = "911100007109295017"
"""A valid USCC (GB 32100) with no record in the tests' files."""


def _pdf(app: CreditApp, report_id: str) -> bytes:
    response = app.http.get(f"/v1/credit/reports/{report_id}/pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


def _check(app: CreditApp, pdf: bytes, report_id: str | None = None) -> dict[str, Any]:
    params = {} if report_id is None else {"report_id": report_id}
    response = app.http.post(
        "/v1/credit/reports/check",
        content=pdf,
        params=params,
        headers={"content-type": "application/pdf"},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
def penalised(app: CreditApp) -> dict[str, Any]:
    """A report of the enterprise with one penalty on display."""
    app.sdk.import_file(penalty_file(penalties(1)))
    return issue_report(app, subject=ENTERPRISE_USCC, purpose="政府采购投标")


def test_report_states_the_penalty_on_display_and_waits_for_the_department_signature(
    app: CreditApp, penalised: dict[str, Any]
) -> None:
    report = penalised["report"]
    assert report["subject"] == {"code": ENTERPRISE_USCC, "name": ENTERPRISE_NAME}
    assert [record["decision_number"] for record in report["records"]] == ["榕市监罚〔2023〕0号"]
    assert "行政处罚记录1条" in report["conclusion"]
    assert report["as_of"].endswith("+08:00")
    assert penalised["verify_url"].endswith(f"/credit/reports/{penalised['report_id']}")
    # The content reads back and its conclusion follows from its records.
    assert report_from_payload(report).records[0].fields["categories"] == "罚款"

    pending = {event["id"]: event for event in app.sdk.pending_events()}
    event = pending[penalised["event_id"]]
    assert event["kind"] == "credit_report"
    assert event["commitment"] == penalised["commitment"]

    pdf = _pdf(app, penalised["report_id"])
    assert sm3(pdf).hex() == penalised["pdf_sm3"]
    stored = app.http.get(f"/v1/credit/reports/{penalised['report_id']}").json()
    assert stored["report"] == report
    assert stored["anchoring"]["event_state"] == "awaiting_signature"
    assert stored["anchoring"]["bundle"] is None
    # Nothing of the record is anchored in this app (no chain): its proof is null, not absent.
    assert list(stored["record_proofs"]) == [report["records"][0]["record_id"]]


@pytest.mark.skipif(not POPPLER, reason="needs poppler-utils (pdftotext, pdftoppm)")
def test_report_pdf_reads_back_in_chinese_and_renders(
    app: CreditApp, penalised: dict[str, Any], tmp_path: Path
) -> None:
    pdf = _pdf(app, penalised["report_id"])
    text = pdf_text(pdf, tmp_path)
    for expected in (
        "专项信用报告（无违法违规记录版）",
        ENTERPRISE_NAME,
        ENTERPRISE_USCC,
        "榕市监罚〔2023〕0号",
        "行政处罚记录1条",
        "政府采购投标",
        penalised["report_id"],
        "扫码核验报告真伪",
    ):
        assert expected in text, expected
    png = pdf_to_png(pdf, tmp_path)
    with Image.open(png) as image:
        grey = image.convert("L")
        width, height = grey.size
        assert height > width  # A4 portrait
        histogram = grey.histogram()
        dark = sum(histogram[:128])
        # Text, tables and the QR code: a few percent of the page is ink.
        assert dark > width * height * 0.005


def test_only_the_exact_pdf_is_genuine(app: CreditApp, tmp_path: Path) -> None:
    issued = issue_report(app, subject=CLEAN_USCC, subject_name="北京某某科技有限公司")
    assert "未发现该主体" in issued["report"]["conclusion"]
    report_id = issued["report_id"]
    pdf = _pdf(app, report_id)

    genuine = _check(app, pdf, report_id)
    assert genuine["genuine"] is True
    assert genuine["report_id"] == report_id
    assert genuine["stated"] == issued["report"]
    assert _check(app, pdf)["genuine"] is True  # found by its SM3 alone

    one_byte = bytearray(pdf)
    middle = len(one_byte) // 2
    one_byte[middle] ^= 0x01
    changed = _check(app, bytes(one_byte), report_id)
    assert changed["genuine"] is False
    assert changed["report_id"] == report_id  # what the report really stated comes back
    assert changed["stated"]["conclusion"] == issued["report"]["conclusion"]
    assert _check(app, bytes(one_byte))["report_id"] is None

    # A forgery that looks right: the same id and QR code, an altered subject name.
    content = report_from_payload(issued["report"])
    forged = render_report_pdf(
        dataclasses.replace(content, subject_name="北京另一科技有限公司"), issued["verify_url"]
    )
    assert forged != pdf
    assert _check(app, forged, report_id)["genuine"] is False

    page = app.http.get(f"/credit/reports/{report_id}", params={"sm3": sm3(forged).hex()})
    assert page.status_code == 200
    assert "文件与报告不一致" in page.text
    assert "北京某某科技有限公司" in page.text
    assert "北京另一科技有限公司" not in page.text
    good = app.http.get(f"/credit/reports/{report_id}", params={"sm3": issued["pdf_sm3"]})
    assert "报告真实，未被修改" in good.text


def _refusal(app: CreditApp, **payload: Any) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        issue_report(app, **payload)
    assert caught.value.status_code == 422
    return caught.value


def test_report_requests_are_checked(app: CreditApp) -> None:
    wrong_check = _refusal(app, subject="91350100M000100Y44")
    assert wrong_check.code == "invalid_subject"
    assert "give its name" in _refusal(app, subject=CLEAN_USCC).message  # nothing on display
    future = (app.clock.now() + datetime.timedelta(days=1)).isoformat()
    assert _refusal(app, subject=CLEAN_USCC, subject_name="某公司", at=future).code == (
        "invalid_report"
    )
    assert app.http.get("/v1/credit/reports/no-such-report").status_code == 404
    assert app.http.get("/credit/reports/no-such-report").status_code == 404
