"""Builders of 双公示 test tables: rows in the national column order, written as CSV in a
chosen encoding or as XLSX with openpyxl, so each test states its quirks in code."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Sequence
from pathlib import Path

from credit.columns import LICENSING_COLUMNS, PENALTY_COLUMNS
from credit.records import ListEntry, ListType, PenaltyCategory, PenaltyRecord
from credit.subjects import Subject, SubjectCategory

ENTERPRISE_USCC = "91350100M000100Y43"
"""A valid USCC (vectors/codes.json)."""
AUTHORITY_USCC = "11100000000013338W"
"""A valid USCC of an authority."""
SOURCE_USCC = "11220000013544541J"
"""A valid USCC of a data-source unit."""
RESIDENT_ID = "11010519491231002X"
"""A valid citizen identity number (vectors/codes.json)."""

SUBJECT = Subject(
    SubjectCategory.ORGANISATION,
    "福州某某贸易有限公司",
    "91350100M000100Y43",
    None,
    None,
    None,
    None,
    None,
    "王某某",
    None,
    None,
    None,
    None,
)
PENALTY = PenaltyRecord(
    subject=SUBJECT,
    decision_number="罚1",
    violation_type="偷税",
    violation_facts="事实",
    legal_basis="依据",
    categories=(PenaltyCategory.FINE,),
    content="罚款",
    fine_wan=None,
    confiscated_wan=None,
    license_affected=None,
    decision_date=datetime.date(2023, 1, 10),
    penalty_valid_until=None,
    publication_deadline=None,
    authority="税务局",
    authority_uscc=AUTHORITY_USCC,
    data_source="税务局",
    data_source_uscc="11220000013544541J",
    note=None,
)
BLACK = ListEntry(
    subject=SUBJECT,
    list_type=ListType.BLACK,
    list_name="重大税收违法失信主体",
    decision_number="认定〔2023〕1号",
    reason="偷税",
    legal_basis="依据",
    entry_date=datetime.date(2023, 2, 1),
    planned_exit_date=datetime.date(2026, 2, 1),
    authority="税务局",
    authority_uscc=AUTHORITY_USCC,
    basis_records=(PENALTY.natural_key,),
)
RED = ListEntry(
    subject=SUBJECT,
    list_type=ListType.RED,
    list_name="纳税信用A级纳税人",
    decision_number="红〔2022〕9号",
    reason="纳税信用A级",
    legal_basis="依据",
    entry_date=datetime.date(2022, 5, 1),
    planned_exit_date=None,
    authority="税务局",
    authority_uscc=AUTHORITY_USCC,
)

PENALTY_HEADERS = [column.header for column in PENALTY_COLUMNS]
LICENSING_HEADERS = [column.header for column in LICENSING_COLUMNS]


def penalty_row(**overrides: object) -> dict[str, object]:
    """A valid penalty row of an organisation, by template header, with ``overrides`` (keys
    are column keys)."""
    values: dict[str, object] = {
        "name": "福州某某贸易有限公司",
        "category": "法人及非法人组织",
        "code_1": ENTERPRISE_USCC,
        "legal_representative": "王某某",
        "decision_number": "榕市监罚〔2023〕12号",
        "violation_type": "虚假宣传",
        "violation_facts": "在网站发布虚假广告",
        "legal_basis": "《中华人民共和国广告法》第五十五条",
        "categories": "罚款",
        "content": "罚款人民币贰万元",
        "fine_wan": "2",
        "decision_date": "2023-05-01",
        "authority": "福州市市场监督管理局",
        "authority_uscc": AUTHORITY_USCC,
        "data_source": "福州市市场监督管理局",
        "data_source_uscc": SOURCE_USCC,
    }
    values.update(overrides)
    return values


def licensing_row(**overrides: object) -> dict[str, object]:
    """A valid licensing row of an organisation, with ``overrides`` by column key."""
    values: dict[str, object] = {
        "name": "福州某某贸易有限公司",
        "category": "法人及非法人组织",
        "code_1": ENTERPRISE_USCC,
        "legal_representative": "王某某",
        "document_name": "食品经营许可决定书",
        "decision_number": "榕食许〔2023〕7号",
        "license_category": "普通",
        "content": "预包装食品销售",
        "decision_date": "2023-05-01",
        "valid_from": "2023-05-01",
        "valid_to": "2028-04-30",
        "authority": "福州市市场监督管理局",
        "authority_uscc": AUTHORITY_USCC,
        "status": "1",
        "data_source": "福州市市场监督管理局",
        "data_source_uscc": SOURCE_USCC,
    }
    values.update(overrides)
    return values


def natural_person(
    name: str = "张三", id_number: str = RESIDENT_ID, id_type: str = "身份证"
) -> dict[str, object]:
    """The cells that make a row's subject a natural person: no USCC and no legal
    representative, an identity document instead (for ``penalty_row(**...)`` or
    ``row.update(...)``)."""
    return {
        "name": name,
        "category": "自然人",
        "code_1": "",
        "legal_representative": "",
        "id_type": id_type,
        "id_number": id_number,
    }


def cells(columns_keys: Sequence[str], values: dict[str, object]) -> list[object]:
    """``values`` laid out in the order of ``columns_keys``."""
    return [values.get(key, "") for key in columns_keys]


PENALTY_KEYS = [column.key for column in PENALTY_COLUMNS]
LICENSING_KEYS = [column.key for column in LICENSING_COLUMNS]


def write_csv(
    path: Path, rows: Sequence[Sequence[object]], *, encoding: str = "utf-8", bom: bool = False
) -> Path:
    """Write ``rows`` as CSV in ``encoding`` (with a UTF-8 BOM if ``bom``)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    data = buffer.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """Write ``rows`` into the first sheet of a new workbook."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path
