"""Calls of the credit report API made with a department's SDK client (its signed request
core), and the PDF tools the report tests read PDFs with."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from credit_harness import CreditApp

from sdk.trust_core import Call, json_request

ENTERPRISE_USCC = "91350100M000100Y43"
"""The enterprise of credit_tables.penalty_row."""

ENTERPRISE_NAME = "福州某某贸易有限公司"

POPPLER = shutil.which("pdftotext") is not None and shutil.which("pdftoppm") is not None


def issue_report(app: CreditApp, **payload: Any) -> dict[str, Any]:
    """POST /v1/credit/reports as the app's department; the answer's JSON."""
    call: Call[Any] = Call(json_request("POST", "/v1/credit/reports", payload), lambda v: v)
    answer: dict[str, Any] = app.sdk._run(call)
    return answer


def pdf_text(pdf: bytes, folder: Path) -> str:
    """The PDF's text as pdftotext reads it, white space removed (pdftotext drops the
    spaces between CJK and Latin text and breaks lines where the layout does)."""
    path = folder / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    return "".join(text.split())


def pdf_to_png(pdf: bytes, folder: Path) -> Path:
    """The PDF's first page rendered to PNG by pdftoppm (110 dpi)."""
    path = folder / "report.pdf"
    path.write_bytes(pdf)
    stem = folder / "report-page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "110", "-singlefile", str(path), str(stem)], check=True
    )
    return stem.with_suffix(".png")
