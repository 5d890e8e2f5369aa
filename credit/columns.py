"""The column layouts of the national 双公示 templates, and how a file's header row is mapped
onto them: by header name, never by position, tolerant of full-width characters, spaces,
（）for (), a "required" asterisk and trailing notes in parentheses or after a colon."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from credit.errors import ImportFileError
from credit.normalize import header_key

__all__ = [
    "LICENSING_COLUMNS",
    "PENALTY_COLUMNS",
    "Column",
    "HeaderMapping",
    "Layout",
    "detect_layout",
    "map_header",
]


class Layout(enum.StrEnum):
    """The two 双公示 tables."""

    PENALTY = "penalty"
    """行政处罚."""
    LICENSING = "licensing"
    """行政许可."""


@dataclass(frozen=True)
class Column:
    """One column of a national template."""

    key: str
    """The name the validator uses for it."""
    header: str
    """The header as the national template writes it."""
    aliases: tuple[str, ...] = ()
    """Other headers seen for it in departments' files."""


_SUBJECT_COLUMNS = (
    Column("name", "行政相对人名称"),
    Column("category", "行政相对人类别"),
    Column(
        "code_1", "行政相对人代码_1", ("统一社会信用代码", "行政相对人代码_1(统一社会信用代码)")
    ),
    Column("code_2", "行政相对人代码_2", ("工商注册号", "行政相对人代码_2(工商注册号)")),
    Column("code_3", "行政相对人代码_3", ("组织机构代码", "行政相对人代码_3(组织机构代码)")),
    Column("code_4", "行政相对人代码_4", ("税务登记号", "行政相对人代码_4(税务登记号)")),
    Column("code_5", "行政相对人代码_5", ("事业单位证书号", "行政相对人代码_5(事业单位证书号)")),
    Column(
        "code_6", "行政相对人代码_6", ("社会组织登记证号", "行政相对人代码_6(社会组织登记证号)")
    ),
    Column("legal_representative", "法定代表人", ("法定代表人(负责人)", "经营者")),
    Column("legal_representative_id_type", "法定代表人证件类型"),
    Column("legal_representative_id", "法定代表人证件号码", ("法定代表人身份证号",)),
    Column("id_type", "证件类型"),
    Column("id_number", "证件号码"),
)

PENALTY_COLUMNS: tuple[Column, ...] = (
    *_SUBJECT_COLUMNS,
    Column("decision_number", "行政处罚决定书文号", ("处罚决定书文号",)),
    Column("violation_type", "违法行为类型"),
    Column("violation_facts", "违法事实"),
    Column("legal_basis", "处罚依据"),
    Column("categories", "处罚类别"),
    Column("content", "处罚内容"),
    Column("fine_wan", "罚款金额（万元）", ("罚款金额",)),
    Column(
        "confiscated_wan",
        "没收违法所得、没收非法财物的金额（万元）",
        ("没收违法所得、没收非法财物的金额", "没收金额"),
    ),
    Column("license_affected", "暂扣或吊销证照名称及编号"),
    Column("decision_date", "处罚决定日期"),
    Column("penalty_valid_until", "处罚有效期"),
    Column("publication_deadline", "公示截止期"),
    Column("authority", "处罚机关"),
    Column("authority_uscc", "处罚机关统一社会信用代码"),
    Column("data_source", "数据来源单位"),
    Column("data_source_uscc", "数据来源单位统一社会信用代码"),
    Column("note", "备注"),
)
"""The 行政处罚 template, in the national order."""

LICENSING_COLUMNS: tuple[Column, ...] = (
    *_SUBJECT_COLUMNS,
    Column("document_name", "行政许可决定文书名称"),
    Column("decision_number", "行政许可决定文书号"),
    Column("license_category", "许可类别"),
    Column("certificate_name", "许可证书名称"),
    Column("license_number", "许可编号"),
    Column("content", "许可内容"),
    Column("decision_date", "许可决定日期"),
    Column("valid_from", "有效期自"),
    Column("valid_to", "有效期至"),
    Column("authority", "许可机关"),
    Column("authority_uscc", "许可机关统一社会信用代码"),
    Column("status", "当前状态"),
    Column("data_source", "数据来源单位"),
    Column("data_source_uscc", "数据来源单位统一社会信用代码"),
    Column("note", "备注"),
)
"""The 行政许可 template, in the national order."""

LAYOUT_COLUMNS = {Layout.PENALTY: PENALTY_COLUMNS, Layout.LICENSING: LICENSING_COLUMNS}
"""Each layout's columns."""

_NOTE = re.compile(r"(\([^()]*\)|:.*|：.*)$")
"""A trailing note: a parenthesised remark or anything after a colon."""


def _stripped(key: str) -> str:
    """``key`` without trailing notes, repeatedly."""
    while True:
        shorter = _NOTE.sub("", key)
        if shorter == key or not shorter:
            return key
        key = shorter


def _lookup(columns: Sequence[Column]) -> tuple[dict[str, Column], dict[str, Column]]:
    exact: dict[str, Column] = {}
    loose: dict[str, Column] = {}
    for column in columns:
        for header in (column.header, *column.aliases):
            exact[header_key(header)] = column
            loose.setdefault(_stripped(header_key(header)), column)
    return exact, loose


@dataclass(frozen=True)
class HeaderMapping:
    """How the columns of one file map onto a layout."""

    layout: Layout
    """Which template the file follows."""
    positions: tuple[tuple[int, str], ...]
    """(0-based cell position, column key) for every recognised column."""
    headers: dict[str, str]
    """Column key → the header as written in the file (for the report)."""
    unknown: tuple[tuple[int, str], ...]
    """(position, header) of non-empty headers that match no column."""
    missing: tuple[str, ...]
    """Template headers with no column in the file."""
    duplicated: tuple[tuple[int, str], ...]
    """(position, header) of second columns for a key already mapped (ignored)."""


def detect_layout(cells: Sequence[str | None]) -> Layout | None:
    """The layout whose decision-number column the row names, or None if it names neither
    (a title row above the header, say)."""
    keys = [_stripped(header_key(cell)) for cell in cells if cell]
    if any(key in ("行政处罚决定书文号", "处罚决定书文号") for key in keys):
        return Layout.PENALTY
    if "行政许可决定文书号" in keys:
        return Layout.LICENSING
    return None


def _detect(cells: Sequence[str | None]) -> Layout:
    found = detect_layout(cells)
    if found is None:
        raise ImportFileError(
            "unknown_layout", "the header names neither 行政处罚决定书文号 nor 行政许可决定文书号"
        )
    return found


def map_header(cells: Sequence[str | None], layout: Layout | None = None) -> HeaderMapping:
    """Map a header row onto ``layout`` (detected from the decision-number column when not
    given). Empty trailing headers are ignored; the rest are reported if unknown."""
    keys = [header_key(cell) if cell else "" for cell in cells]
    chosen = layout if layout is not None else _detect(cells)
    exact, loose = _lookup(LAYOUT_COLUMNS[chosen])
    positions: list[tuple[int, str]] = []
    headers: dict[str, str] = {}
    unknown: list[tuple[int, str]] = []
    duplicated: list[tuple[int, str]] = []
    for position, key in enumerate(keys):
        if not key:
            continue
        column = exact.get(key) or loose.get(_stripped(key))
        original = (cells[position] or "").replace("\ufeff", "").strip()
        if column is None:
            unknown.append((position, original))
        elif column.key in headers:
            duplicated.append((position, original))
        else:
            positions.append((position, column.key))
            headers[column.key] = original
    missing = tuple(c.header for c in LAYOUT_COLUMNS[chosen] if c.key not in headers)
    return HeaderMapping(
        chosen, tuple(positions), headers, tuple(unknown), missing, tuple(duplicated)
    )
