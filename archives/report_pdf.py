"""The 四性检测 report as a Chinese PDF, through the project's one PDF module
(:mod:`sdk.pdf_report`). The document is built from the report alone and dated with its
``checked_at``, so the same report always renders to the same bytes: their SM3 is recorded
(and anchored) with the ingestion, and a copy rendered later can be checked against it."""

from __future__ import annotations

from typing import Any

from archives.four_properties import PROPERTIES, FourPropertyReport, Verdict
from sdk.pdf_report import Document, Heading, KeyValueTable, Paragraph, Table, render_pdf

VERDICT_NAMES = {Verdict.PASS: "通过", Verdict.FAIL: "不通过", Verdict.NOT_CHECKED: "未检测"}
"""Verdicts as the report prints them."""

STAGE_NAMES = {"ingest": "归档（接收）", "preservation": "长期保存", "transfer": "移交"}
"""Stages as the report prints them."""

MAX_EVIDENCE_LINES = 8
"""Evidence lines printed per item (the JSON report has them all)."""


def report_document(report: FourPropertyReport, description: dict[str, Any]) -> Document:
    """The report as a PDF document: the description, the overall verdict, then one table
    per property with each item's verdict and evidence."""
    blocks: list[Any] = [
        KeyValueTable(
            [
                ("档号", str(description.get("档号", report.package))),
                ("题名", str(description.get("题名", ""))),
                ("全宗号", str(description.get("全宗号", ""))),
                ("检测环节", STAGE_NAMES.get(report.stage.value, report.stage.value)),
                ("检测时间", report.checked_at.isoformat()),
                ("检测依据", "DA/T 70-2018《文件归档要求》四性检测"),
                ("总体结论", VERDICT_NAMES[report.verdict]),
            ]
        )
    ]
    for code, name in PROPERTIES.items():
        items = [item for item in report.items if item.property == code]
        if not items:
            continue
        blocks.append(Heading(name))
        rows = []
        for item in items:
            evidence = list(item.evidence[:MAX_EVIDENCE_LINES])
            if len(item.evidence) > MAX_EVIDENCE_LINES:
                evidence.append(f"……另有 {len(item.evidence) - MAX_EVIDENCE_LINES} 条")
            rows.append([item.name, VERDICT_NAMES[item.verdict], "\n".join(evidence)])
        blocks.append(Table(["检测项", "结论", "依据"], rows, widths=[3, 1.5, 8]))
    blocks.append(
        Paragraph(
            "“未检测”表示该项无法检测（如无电子签名、未配置病毒扫描），不视为通过。"
            "本报告 JSON 文本的 SM3 摘要随档案包上链存证。",
            size_pt=8.5,
        )
    )
    return Document(
        title="电子档案四性检测报告",
        subtitle=str(description.get("题名", "")),
        blocks=blocks,
        created=report.checked_at,
        footer=f"档号 {description.get('档号', report.package)}",
        author="链信电子档案",
        keywords=("四性检测", "DA/T 70-2018"),
    )


def render_report_pdf(report: FourPropertyReport, description: dict[str, Any]) -> bytes:
    """The report's PDF bytes (same report, same bytes)."""
    return render_pdf(report_document(report, description))


__all__ = ["render_report_pdf", "report_document"]
