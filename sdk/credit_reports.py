"""The credit report calls of :mod:`sdk.credit_client`: issue a report (信用报告) and fetch
its PDF (checked against the SM3 the registry issued), and check PDF bytes against the
issued reports (``POST /v1/credit/reports/check``), each as a :class:`sdk.trust_core.Call`
or request that the sync and async clients both send."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from chain.crypto import sm3
from sdk.json_shapes import json_object, json_text
from sdk.trust_core import Answer, Call, Exchange, RegistryRequest, json_request
from sdk.trust_types import RegistryError, RegistryUnavailable

__all__ = [
    "REPORTS_PATH",
    "IssuedReport",
    "ReportCheck",
    "ReportMismatch",
    "body_of",
    "issue_call",
    "issued",
    "pdf_request",
    "report_payload",
    "verify_report_call",
]


class ReportMismatch(RegistryError):
    """The registry's answer does not match the PDF bytes at hand (the PDF served is not
    the one whose SM3 was issued, or a check answered for other bytes)."""

    def __init__(self, message: str) -> None:
        super().__init__(502, "report_mismatch", message)


@dataclass(frozen=True)
class IssuedReport:
    """A credit report (信用报告) issued by the registry."""

    report_id: str
    """Its id (its QR code leads to ``verify_url``)."""
    pdf: bytes
    """The PDF, as issued (its SM3 checked against ``pdf_sm3``)."""
    pdf_sm3: str
    """SM3 of the PDF (hex): what is anchored once the department signs ``event_id``."""
    event_id: str
    """The credit event that anchors the PDF's SM3, waiting for the department's signature
    (:meth:`CreditClient.sign_pending`)."""
    verify_url: str
    """The genuine-check page."""
    content: dict[str, Any]
    """What the report states (subject, instant, records on display, lists)."""


@dataclass(frozen=True)
class ReportCheck:
    """Whether PDF bytes are an issued report, unchanged."""

    genuine: bool
    """The bytes are exactly an issued report's PDF (the one named, when one was)."""
    pdf_sm3: str
    """SM3 of the bytes checked (hex), computed here and by the registry alike."""
    report_id: str | None
    """The report the bytes are, or the one they were checked against."""
    stated: dict[str, Any] | None
    """What that report stated, as issued."""
    anchoring: str | None
    """Where its anchoring is (None: waiting for the signature, then accepted, sealed,
    anchored)."""


REPORTS_PATH = "/v1/credit/reports"
"""The credit report API."""


def report_payload(
    subject: str,
    subject_name: str,
    at: datetime.datetime | None,
    purpose: str,
    kind: str,
) -> dict[str, Any]:
    if at is not None and at.tzinfo is None:
        raise ValueError("the instant of a report must carry its time zone")
    payload: dict[str, Any] = {
        "subject": subject,
        "subject_name": subject_name,
        "purpose": purpose,
        "kind": kind,
    }
    if at is not None:
        payload["at"] = at.isoformat()
    return payload


def _issued_answer(value: Any) -> dict[str, Any]:
    answer = json_object(value)
    for member in ("report_id", "pdf_sm3", "event_id", "verify_url"):
        json_text(answer[member])
    json_object(answer["report"])
    return answer


def issue_call(payload: dict[str, Any]) -> Call[dict[str, Any]]:
    """``POST /v1/credit/reports``: the issued report's id, SM3, event and what it states."""
    return Call(json_request("POST", REPORTS_PATH, payload), _issued_answer)


def pdf_request(report_id: str) -> RegistryRequest:
    return RegistryRequest("GET", f"{REPORTS_PATH}/{quote(report_id)}/pdf", b"", {})


def issued(answer: Mapping[str, Any], pdf: bytes) -> IssuedReport:
    if sm3(pdf).hex() != answer["pdf_sm3"]:
        raise ReportMismatch(
            f"the PDF served for report {answer['report_id']} is not the one issued"
        )
    return IssuedReport(
        report_id=str(answer["report_id"]),
        pdf=pdf,
        pdf_sm3=str(answer["pdf_sm3"]),
        event_id=str(answer["event_id"]),
        verify_url=str(answer["verify_url"]),
        content=dict(answer["report"]),
    )


_CHECK_OPTIONAL = ("report_id", "stated", "anchoring")


def verify_report_call(pdf: bytes, report_id: str | None) -> Call[ReportCheck]:
    path = f"{REPORTS_PATH}/check"
    if report_id is not None:
        path += "?" + urlencode({"report_id": report_id})
    request = RegistryRequest("POST", path, pdf, {"Content-Type": "application/pdf"})
    digest = sm3(pdf).hex()

    def parse(value: Any) -> ReportCheck:
        value = json_object(value)
        if value["pdf_sm3"] != digest:
            raise ReportMismatch("the registry checked other bytes than the PDF sent")
        if not isinstance(value["genuine"], bool):
            raise TypeError("genuine is not true or false")
        report_id, stated, anchoring = (value.get(name) for name in _CHECK_OPTIONAL)
        return ReportCheck(
            genuine=value["genuine"],
            pdf_sm3=digest,
            report_id=None if report_id is None else json_text(report_id),
            stated=None if stated is None else json_object(stated),
            anchoring=None if anchoring is None else json_text(anchoring),
        )

    return Call(request, parse)


def body_of(exchange: Exchange[Any], last: Answer | None) -> bytes:
    """The raw body of a call's successful answer (not JSON); raises as the call would."""
    if last is not None and last.status_code < 400:
        return last.body
    exchange.result()
    raise RegistryUnavailable(503, "unavailable", "no answer")
