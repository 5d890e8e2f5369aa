"""Import of 双公示 tables as departments deliver them: each test writes its file with the
quirks it is about, and asserts the exact report entries."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from credit_tables import (
    AUTHORITY_USCC,
    ENTERPRISE_USCC,
    LICENSING_HEADERS,
    LICENSING_KEYS,
    PENALTY_HEADERS,
    PENALTY_KEYS,
    RESIDENT_ID,
    cells,
    licensing_row,
    natural_person,
    penalty_row,
    write_csv,
    write_xlsx,
)

from credit.columns import Layout
from credit.corrections import FieldChange, Unchanged, compare, correction_event
from credit.errors import ImportFileError
from credit.importing import (
    ImportedRow,
    ImportMode,
    ImportRejected,
    import_file,
    validate_file,
)
from credit.records import LifecycleEventKind, PenaltyCategory, PenaltyRecord
from credit.validation import Issue, IssueReason


def _import(path: Path, mode: ImportMode = ImportMode.ALL_OR_NOTHING) -> list[ImportedRow]:
    rows: list[ImportedRow] = []
    import_file(path, rows.append, mode=mode)
    return rows


def _penalty(rows: list[ImportedRow], index: int = 0) -> PenaltyRecord:
    record = rows[index].record
    assert isinstance(record, PenaltyRecord)
    return record


def test_gbk_csv_and_utf8_csv_with_bom_give_the_same_records(tmp_path: Path) -> None:
    table = [PENALTY_HEADERS, cells(PENALTY_KEYS, penalty_row())]
    # A name with a character of CJK extension A: in GB18030, not in GBK.
    rare = [PENALTY_HEADERS, cells(PENALTY_KEYS, penalty_row(name="福州䶮记贸易有限公司"))]
    gb18030 = _import(write_csv(tmp_path / "gb18030.csv", rare, encoding="gb18030"))
    assert _penalty(gb18030).subject.name == "福州䶮记贸易有限公司"
    gbk = _import(write_csv(tmp_path / "gbk.csv", table, encoding="gbk"))
    bom = _import(write_csv(tmp_path / "bom.csv", table, encoding="utf-8", bom=True))
    assert [row.content_hash for row in gbk] == [row.content_hash for row in bom]
    assert _penalty(gbk).authority == "福州市市场监督管理局"
    assert _penalty(bom).subject.name == "福州某某贸易有限公司"


def test_columns_are_mapped_by_header_name_not_position(tmp_path: Path) -> None:
    keys = list(reversed(PENALTY_KEYS))
    headers = list(reversed(PENALTY_HEADERS))
    # Full-width brackets and letters, spaces, a required-mark and trailing notes.
    headers[keys.index("fine_wan")] = "罚款金额 (万元)（必填）"
    headers[keys.index("decision_number")] = "＊行政处罚决定书文号：填写全称"
    headers[keys.index("code_1")] = "行政相对人代码＿１（统一社会信用代码）"
    table = [
        [*headers, "内部编号"],
        [*cells(keys, penalty_row()), "A-17"],
    ]
    path = write_csv(tmp_path / "shifted.csv", table)
    report = validate_file(path)
    assert report.ok and report.rows_valid == 1
    assert report.warnings == [
        Issue(1, "内部编号", "内部编号", IssueReason.UNKNOWN_COLUMN, "not a template column")
    ]
    record = _penalty(_import(path))
    assert record.fine_wan == Decimal(2)
    assert record.decision_number == "榕市监罚〔2023〕12号"


def test_missing_required_column_refuses_the_file_at_its_header(tmp_path: Path) -> None:
    keys = [key for key in PENALTY_KEYS if key != "decision_date"]
    headers = [h for h, k in zip(PENALTY_HEADERS, PENALTY_KEYS, strict=True) if k in keys]
    path = write_csv(tmp_path / "missing.csv", [headers, cells(keys, penalty_row())])
    report = validate_file(path)
    assert report.issues == [
        Issue(1, "处罚决定日期", None, IssueReason.MISSING_COLUMN, "required column absent")
    ]
    assert report.rows_read == 0
    with pytest.raises(ImportRejected):
        _import(path)


def test_excel_serials_date_cells_and_date_notations(tmp_path: Path) -> None:
    notations = ["45047", "2023/5/1", "2023年5月1日", "20230501", "２０２３－０５－０１", 45047]
    table: list[list[object]] = [PENALTY_HEADERS]
    for number, notation in enumerate(notations):
        row = penalty_row(decision_number=f"罚{number}", decision_date=notation)
        table.append(cells(PENALTY_KEYS, row))
    table.append(
        cells(
            PENALTY_KEYS,
            penalty_row(decision_number="罚x", decision_date=datetime.datetime(2023, 5, 1)),
        )
    )
    rows = _import(write_xlsx(tmp_path / "dates.xlsx", table))
    assert [_penalty(rows, i).decision_date for i in range(len(rows))] == [
        datetime.date(2023, 5, 1)
    ] * 7


def test_full_width_codes_amounts_blank_lines_and_trailing_empty_columns(tmp_path: Path) -> None:
    full_width_uscc = "９１３５０１００Ｍ０００１００Ｙ４３"
    row = penalty_row(
        code_1=full_width_uscc, fine_wan="１，２００.５万元", authority_uscc="11100000000013338w"
    )
    table = [
        [],
        [*PENALTY_HEADERS, "", ""],
        ["", "", ""],
        [*cells(PENALTY_KEYS, row), "", ""],
        [],
    ]
    path = write_csv(tmp_path / "quirks.csv", table, encoding="gb18030")
    rows = _import(path)
    record = _penalty(rows)
    assert rows[0].row == 4
    assert record.subject.uscc == "91350100M000100Y43"
    assert record.authority_uscc == AUTHORITY_USCC
    assert record.fine_wan == Decimal("1200.5")


def _bad_table() -> list[list[object]]:
    good = penalty_row()
    return [
        PENALTY_HEADERS,
        cells(PENALTY_KEYS, good),
        cells(
            PENALTY_KEYS,
            penalty_row(decision_number="罚2", code_1="91350100M000100Y44", fine_wan="-3"),
        ),
        cells(
            PENALTY_KEYS,
            penalty_row(
                decision_number="罚3",
                decision_date="2023-02-30",
                categories="罚款；没收违法所得",
                publication_deadline="2022-01-01",
            ),
        ),
        cells(
            PENALTY_KEYS,
            penalty_row(
                decision_number="罚4",
                categories="警告;拘役",
                # A natural person who also gives a USCC.
                **{**natural_person(id_number="110105194912310021"), "code_1": ENTERPRISE_USCC},
            ),
        ),
        cells(PENALTY_KEYS, penalty_row(categories="警告", fine_wan="")),
        cells(
            PENALTY_KEYS,
            penalty_row(
                decision_number="罚6", decision_date="2023-06-01", publication_deadline="2023-05-31"
            ),
        ),
    ]


EXPECTED_BAD_REPORT = [
    Issue(
        3,
        "行政相对人代码_1",
        "91350100M000100Y44",
        IssueReason.BAD_USCC,
        "check character is '4', expected '3'",
    ),
    Issue(3, "罚款金额（万元）", "-3", IssueReason.BAD_AMOUNT, "'-3' is not an amount in 万元"),
    Issue(
        4,
        "没收违法所得、没收非法财物的金额（万元）",
        None,
        IssueReason.MISSING,
        "a value is required",
    ),
    Issue(
        4, "处罚决定日期", "2023-02-30", IssueReason.BAD_DATE, "'2023-02-30' is not a calendar date"
    ),
    Issue(
        5,
        "证件号码",
        "1101**********0021",
        IssueReason.BAD_RESIDENT_ID,
        "check character is '1', expected 'X'",
    ),
    Issue(
        5,
        "行政相对人代码_1",
        "91350100M000100Y43",
        IssueReason.NOT_ALLOWED,
        "a natural person has no such code",
    ),
    Issue(
        5,
        "处罚类别",
        "警告;拘役",
        IssueReason.BAD_ENUM,
        "'拘役' is not one of " + "/".join(c.value for c in PenaltyCategory),
    ),
    Issue(
        6,
        "行政处罚决定书文号",
        "榕市监罚〔2023〕12号",
        IssueReason.DUPLICATE_KEY,
        "same authority and decision number as row 2",
    ),
    Issue(
        7,
        "公示截止期",
        "2023-05-31",
        IssueReason.DATE_ORDER,
        "2023-05-31 is before 处罚决定日期 2023-06-01",
    ),
]


def test_report_gives_row_column_value_and_reason_for_each_problem(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", _bad_table())
    report = validate_file(path)
    assert report.issues == EXPECTED_BAD_REPORT
    assert (report.rows_read, report.rows_valid, report.rows_rejected) == (6, 1, 5)


def test_all_or_nothing_imports_nothing_and_reports_everything(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "bad.xlsx", _bad_table())
    handed: list[ImportedRow] = []
    with pytest.raises(ImportRejected) as refused:
        import_file(path, handed.append)
    assert handed == []
    assert refused.value.report.issues == EXPECTED_BAD_REPORT


def test_valid_rows_mode_imports_the_valid_rows_and_reports_the_rest(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", _bad_table())
    handed: list[ImportedRow] = []
    report = import_file(path, handed.append, mode=ImportMode.VALID_ROWS)
    assert [row.row for row in handed] == [2]
    assert report.issues == EXPECTED_BAD_REPORT


def test_a_natural_persons_id_is_masked_even_in_the_report(tmp_path: Path) -> None:
    row = penalty_row(
        **natural_person("李四", id_number=RESIDENT_ID[:-1] + "1", id_type="居民身份证")
    )
    path = write_csv(tmp_path / "person.csv", [PENALTY_HEADERS, cells(PENALTY_KEYS, row)])
    text = repr(validate_file(path))
    assert RESIDENT_ID[:-1] not in text
    assert "1101**********0021" in text


def test_licensing_long_term_and_validity_order(tmp_path: Path) -> None:
    table = [
        LICENSING_HEADERS,
        cells(LICENSING_KEYS, licensing_row(valid_to="2099-12-31", status="有效")),
        cells(
            LICENSING_KEYS,
            licensing_row(
                decision_number="许2",
                valid_from="2024-01-01",
                valid_to="2023-12-31",
                license_category="特批",
                status="3",
            ),
        ),
    ]
    path = write_csv(tmp_path / "licences.csv", table)
    handed: list[ImportedRow] = []
    report = import_file(path, handed.append, mode=ImportMode.VALID_ROWS)
    assert report.layout is Layout.LICENSING
    assert handed[0].record.long_term  # type: ignore[union-attr]
    assert report.issues == [
        Issue(
            3, "许可类别", "特批", IssueReason.BAD_ENUM, "not one of 普通/特许/认可/核准/登记/其他"
        ),
        Issue(
            3,
            "有效期至",
            "2023-12-31",
            IssueReason.DATE_ORDER,
            "2023-12-31 is before 有效期自 2024-01-01",
        ),
        Issue(3, "当前状态", "3", IssueReason.BAD_ENUM, "not one of 1/2"),
    ]


def test_reimport_yields_the_same_identities_and_a_changed_row_is_a_correction(
    tmp_path: Path,
) -> None:
    table = [PENALTY_HEADERS, cells(PENALTY_KEYS, penalty_row())]
    first = _import(write_csv(tmp_path / "a.csv", table))
    again = _import(write_xlsx(tmp_path / "a.xlsx", table))
    assert [(r.record_id, r.content_hash) for r in first] == [
        (r.record_id, r.content_hash) for r in again
    ]
    assert compare(first[0].record, again[0].record) == Unchanged()

    changed = [
        PENALTY_HEADERS,
        cells(PENALTY_KEYS, penalty_row(fine_wan="3", content="罚款叁万元")),
    ]
    corrected = _import(write_csv(tmp_path / "b.csv", changed))
    assert corrected[0].record_id == first[0].record_id
    assert corrected[0].content_hash != first[0].content_hash
    assert compare(first[0].record, corrected[0].record) == (
        FieldChange("content", "罚款人民币贰万元", "罚款叁万元"),
        FieldChange("fine_wan", "2", "3"),
    )
    at = datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC)
    event = correction_event(first[0].record, corrected[0].record, at, "金额录入错误")
    assert not isinstance(event, Unchanged) and event.kind is LifecycleEventKind.CORRECT
    assert event.changed_fields == ("content", "fine_wan")
    assert correction_event(first[0].record, again[0].record, at, "") == Unchanged()


def test_a_file_in_neither_layout_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "other.csv", [["姓名", "电话"], ["张三", "123"]])
    with pytest.raises(ImportFileError) as refused:
        validate_file(path)
    assert refused.value.reason == "unknown_layout"


def test_bytes_that_are_neither_utf8_nor_gb18030_are_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    header = ",".join(PENALTY_HEADERS).encode("gb18030")
    path.write_bytes(header + b"\r\n\x81\x20\r\n")
    with pytest.raises(ImportFileError) as refused:
        validate_file(path)
    assert refused.value.reason == "encoding"


def test_not_a_workbook_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ImportFileError) as refused:
        validate_file(path)
    assert refused.value.reason == "not_xlsx"


def test_title_rows_above_the_header_are_skipped_and_reported(tmp_path: Path) -> None:
    table: list[list[object]] = [
        ["福州市市场监督管理局行政处罚信息公示表", "", ""],
        ["填报说明：日期格式为YYYY-MM-DD"],
        [],
        PENALTY_HEADERS,
        cells(PENALTY_KEYS, penalty_row()),
    ]
    path = write_xlsx(tmp_path / "titled.xlsx", table)
    handed: list[ImportedRow] = []
    report = import_file(path, handed.append)
    assert [row.row for row in handed] == [5]
    assert report.header_row == 4
    assert report.warnings[:2] == [
        Issue(
            1,
            "",
            "福州市市场监督管理局行政处罚信息公示表",
            IssueReason.SKIPPED_ROW,
            "above the header",
        ),
        Issue(2, "", "填报说明：日期格式为YYYY-MM-DD", IssueReason.SKIPPED_ROW, "above the header"),
    ]


def test_second_columns_and_absent_optional_columns_are_warnings(tmp_path: Path) -> None:
    keys = [key for key in PENALTY_KEYS if key != "note"]
    headers = [h for h, k in zip(PENALTY_HEADERS, PENALTY_KEYS, strict=True) if k != "note"]
    row = penalty_row()
    path = write_csv(
        tmp_path / "twice.csv", [[*headers, "违法事实"], [*cells(keys, row), "另一事实"]]
    )
    handed: list[ImportedRow] = []
    report = import_file(path, handed.append)
    assert _penalty(handed).violation_facts == "在网站发布虚假广告"
    assert report.warnings == [
        Issue(1, "备注", None, IssueReason.MISSING_COLUMN, "optional column absent"),
        Issue(1, "违法事实", "违法事实", IssueReason.DUPLICATE_COLUMN, "second column, ignored"),
    ]


def test_progress_is_told_per_phase(tmp_path: Path) -> None:
    table = [PENALTY_HEADERS] + [
        cells(PENALTY_KEYS, penalty_row(decision_number=f"罚{n}")) for n in range(2_500)
    ]
    path = write_csv(tmp_path / "many.csv", table)
    told: list[tuple[str, int]] = []
    import_file(path, lambda row: None, progress=lambda phase, rows: told.append((phase, rows)))
    assert told == [
        ("validate", 1_000),
        ("validate", 2_000),
        ("validate", 2_500),
        ("import", 1_000),
        ("import", 2_000),
        ("import", 2_500),
    ]


def test_a_workbook_with_a_wrong_dimension_is_read_whole(tmp_path: Path) -> None:
    import re
    import zipfile

    table = [PENALTY_HEADERS, [], cells(PENALTY_KEYS, penalty_row())]
    written = write_xlsx(tmp_path / "written.xlsx", table)
    path = tmp_path / "wrong-dimension.xlsx"
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B1"', data)
                assert count == 1
            target.writestr(item, data)
    rows = _import(path)
    assert [row.row for row in rows] == [3]
    assert _penalty(rows).data_source_uscc == "11220000013544541J"


def test_a_control_character_in_a_text_cell_is_reported_and_the_row_refused(
    tmp_path: Path,
) -> None:
    """NUL and the like in a text field: the row is refused with the character shown
    escaped (line breaks in the penalty's content stay allowed)."""
    rows = [
        list(PENALTY_HEADERS),
        cells(PENALTY_KEYS, penalty_row(decision_number="榕市监罚〔2023〕21号")),
        cells(
            PENALTY_KEYS,
            penalty_row(decision_number="榕市监罚〔2023〕22号", violation_facts="虚假\x00广告"),
        ),
        cells(
            PENALTY_KEYS,
            penalty_row(decision_number="榕市监罚〔2023〕23号", content="罚款\n没收违法所得"),
        ),
    ]
    report = validate_file(write_csv(tmp_path / "controls.csv", rows))
    assert [(issue.row, issue.reason, issue.value) for issue in report.issues] == [
        (3, IssueReason.CONTROL_CHARACTER, "虚假\\x00广告")
    ]
    assert (report.rows_read, report.rows_valid, report.rows_rejected) == (3, 2, 1)


def test_a_line_longer_than_the_line_bound_is_refused_before_it_is_held_whole(
    tmp_path: Path,
) -> None:
    """One line of more than MAX_LINE_CHARS characters (a file with no line break, or a
    runaway field): refused as ``bad_csv`` naming the line, after the rows before it."""
    from credit.importing.csv_source import MAX_LINE_CHARS, read_csv_rows

    path = write_csv(tmp_path / "long.csv", [PENALTY_HEADERS, cells(PENALTY_KEYS, penalty_row())])
    with path.open("ab") as file:
        file.write("处罚".encode() * (MAX_LINE_CHARS // 2 + 1))
    rows = read_csv_rows(path)
    assert next(rows) == list(PENALTY_HEADERS)
    assert len(next(rows)) == len(PENALTY_KEYS)
    with pytest.raises(ImportFileError) as refused:
        next(rows)
    assert refused.value.reason == "bad_csv"
    assert f"line 3 is longer than {MAX_LINE_CHARS:,} characters" in str(refused.value)
    with pytest.raises(ImportFileError) as whole:
        _import(path)
    assert whole.value.reason == "bad_csv"


def test_a_workbook_is_read_as_one_whatever_its_name_or_declared_format(tmp_path: Path) -> None:
    """A workbook saved under a .csv name, or sent declared as CSV, is read by what it is."""
    from credit.importing import TableFormat

    table = [PENALTY_HEADERS, cells(PENALTY_KEYS, penalty_row())]
    workbook = write_xlsx(tmp_path / "a.xlsx", table)
    renamed = tmp_path / "penalties.csv"
    renamed.write_bytes(workbook.read_bytes())
    assert _penalty(_import(renamed)).data_source_uscc == "11220000013544541J"
    declared: list[ImportedRow] = []
    import_file(workbook, declared.append, table_format=TableFormat.CSV)
    assert [row.row for row in declared] == [2]


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("old.xls", bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504), "Excel 97-2003 workbook"),
        (
            "export.xls",
            "\ufeff<html><body><table><tr><td>行政相对人名称</td></tr></table></body></html>".encode(),
            "web page or XML file",
        ),
        (
            "xml2003.xls",
            b'<?xml version="1.0"?>\r\n'
            b'<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>',
            "web page or XML file",
        ),
        ("text.xlsx", "行政相对人名称,行政相对人类别\r\n".encode(), "not a zip"),
    ],
)
def test_a_spreadsheet_of_another_kind_is_refused_saying_what_it_is(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImportFileError) as refused:
        _import(path)
    assert refused.value.reason == "not_xlsx"
    assert said in str(refused.value)


def test_an_opendocument_spreadsheet_is_refused_saying_what_it_is(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "table.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>", zipfile.ZIP_DEFLATED)
    with pytest.raises(ImportFileError) as refused:
        _import(path)
    assert refused.value.reason == "not_xlsx"
    assert "OpenDocument spreadsheet (.ods)" in str(refused.value)
