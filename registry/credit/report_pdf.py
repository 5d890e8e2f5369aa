"""A credit report laid out as a PDF (:mod:`sdk.pdf_report`): title, the subject, the
finding, the records on display at the report's date, the scope of the report, and a QR
code leading to the page that checks whether a given PDF is this report, unchanged."""

from __future__ import annotations

from collections.abc import Mapping

from credit.report import (
    COMMITMENT,
    LICENSING,
    PENALTY,
    CreditReport,
    ReportedRecord,
)
from sdk.pdf_report import (
    Block,
    Document,
    Heading,
    KeyValueTable,
    Paragraph,
    QRCode,
    Table,
    render_pdf,
)

__all__ = ["SCOPE_NOTE", "render_report_pdf", "report_document"]

SCOPE_NOTE = (
    "本报告依据公共信用信息平台在报告时点处于公示期内的信息生成，内容与信用公示页面一致；"
    "公示期届满、经信用修复停止公示或已撤销的信息不在本报告中体现。"
    "自然人姓名及证件号码按规定遮蔽显示。"
    "本报告的SM3摘要已提交区块链存证，扫描二维码或访问核验地址上传本文件，即可核验报告是否真实、未被修改。"
)
"""What the report covers and how to check it, printed on every report."""

_NONE = "无"


def _field(fields: Mapping[str, str | None], name: str) -> str:
    value = fields.get(name)
    return value if value else "—"


def _day(record: ReportedRecord, name: str) -> str:
    return _field(record.fields, name)[:10]


def _until(record: ReportedRecord) -> str:
    end = record.display_end
    return "长期" if end is None else end.date().isoformat()


def _penalties(records: tuple[ReportedRecord, ...]) -> Block:
    if not records:
        return Paragraph(_NONE)
    return Table(
        ("决定书文号", "处罚类别", "处罚机关", "决定日期", "公示截止"),
        [
            (
                record.decision_number,
                _field(record.fields, "categories"),
                _field(record.fields, "authority"),
                _day(record, "decision_date"),
                _until(record),
            )
            for record in records
        ],
        widths=(3.2, 1.8, 3.0, 1.7, 1.7),
    )


def _licensing(records: tuple[ReportedRecord, ...]) -> Block:
    if not records:
        return Paragraph(_NONE)
    return Table(
        ("决定文书号", "许可内容", "许可机关", "决定日期"),
        [
            (
                record.decision_number,
                _field(record.fields, "content"),
                _field(record.fields, "authority"),
                _day(record, "decision_date"),
            )
            for record in records
        ],
        widths=(3.0, 3.6, 3.0, 1.7),
    )


def _lists(report: CreditReport) -> Block:
    if not report.lists:
        return Paragraph(_NONE)
    kinds = {"black": "严重失信主体名单", "red": "红名单"}
    return Table(
        ("名单", "名单名称", "列入日期", "计划移出日期"),
        [
            (
                kinds.get(entry.list_type, entry.list_type),
                entry.list_name,
                entry.entry_date.isoformat(),
                "—" if entry.planned_exit_date is None else entry.planned_exit_date.isoformat(),
            )
            for entry in report.lists
        ],
        widths=(2.2, 4.0, 1.8, 1.8),
    )


def _commitments(records: tuple[ReportedRecord, ...]) -> Block:
    if not records:
        return Paragraph(_NONE)
    return Table(
        ("承诺书编号", "承诺事项", "签署日期", "状态"),
        [
            (
                record.decision_number,
                _field(record.fields, "matter"),
                _day(record, "signed_on"),
                _field(record.fields, "status"),
            )
            for record in records
        ],
        widths=(3.0, 4.0, 1.8, 1.5),
    )


def report_document(report: CreditReport, verify_url: str) -> Document:
    """The report as a document; ``verify_url`` is its genuine-check page (the QR code)."""
    stamp = report.as_of.strftime("%Y-%m-%d %H:%M:%S %z")
    subject_rows = [
        ("主体名称", report.subject_name),
        ("统一社会信用代码/证件号码", report.subject_code),
        ("报告时点", stamp),
        ("出具机构", f"{report.issuer_name}（{report.issuer_uscc}）"),
    ]
    if report.purpose:
        subject_rows.append(("报告用途", report.purpose))
    blocks: list[Block] = [
        Heading("一、主体信息"),
        KeyValueTable(subject_rows, label_width_mm=52),
        Heading("二、查询结论"),
        Paragraph(report.conclusion),
        Heading("三、行政处罚（公示期内）"),
        _penalties(report.records_of(PENALTY)),
        Heading("四、严重失信主体名单与红名单"),
        _lists(report),
        Heading("五、信用承诺"),
        _commitments(report.records_of(COMMITMENT)),
        Heading("六、行政许可（公示期内）"),
        _licensing(report.records_of(LICENSING)),
        Heading("七、报告说明"),
        Paragraph(SCOPE_NOTE, size_pt=9),
        QRCode(verify_url, caption=f"扫码核验报告真伪\n{verify_url}"),
    ]
    return Document(
        title=report.title,
        subtitle=f"报告编号：{report.report_id}",
        created=report.issued_at,
        footer=f"{report.issuer_name} · 报告编号 {report.report_id}",
        author=report.issuer_name,
        keywords=("信用报告", report.report_id),
        blocks=blocks,
    )


def render_report_pdf(report: CreditReport, verify_url: str) -> bytes:
    """The report's PDF bytes (equal for an equal report and URL)."""
    return render_pdf(report_document(report, verify_url))
