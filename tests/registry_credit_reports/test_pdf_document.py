"""The PDF document module: Chinese text that reads back, reproducible bytes, outlines copied
exactly from the installed CJK font, typed errors."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fontTools import ttLib

from sdk import pdf_report
from sdk.pdf_report import (
    Document,
    Heading,
    KeyValueTable,
    Paragraph,
    PdfFontUnavailable,
    PdfReportError,
    QRCode,
    Table,
    render_pdf,
)

try:
    pdf_report.find_cjk_font()
    HAVE_FONT = True
except PdfFontUnavailable:
    HAVE_FONT = False

pytestmark = [
    pytest.mark.no_database,
    pytest.mark.skipif(not HAVE_FONT, reason="no CJK TrueType font installed"),
]

# Characters drawn as composite glyphs in WenQuanYi Micro Hei (their outlines reference other
# glyphs, whose numbers the subset font must rewrite) next to simple ones.
SAMPLE = "专项信用报告 深圳市龘䶮科技有限公司 罚款（万元）：12.5 № ①"


def sample_document(subject: str = "深圳市某某科技有限公司") -> Document:
    return Document(
        title="专项信用报告",
        subtitle="报告编号 CR-0001",
        created=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        footer="公共信用信息中心",
        blocks=(
            Heading("一、主体信息"),
            KeyValueTable((("主体名称", subject), ("统一社会信用代码", "91350100M000100Y43"))),
            Table(("决定书文号", "处罚类别"), (("深市监罚〔2026〕12号", "罚款;警告"),)),
            Paragraph("截至报告日期，该主体无严重失信主体名单记录。" * 3),
            QRCode("https://registry.example/credit/reports/CR-0001", caption="扫码核验"),
        ),
    )


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render_pdf(sample_document())


def test_rendering_is_reproducible_and_content_bound(rendered: bytes) -> None:
    assert rendered.startswith(b"%PDF-")
    assert render_pdf(sample_document()) == rendered
    assert render_pdf(sample_document("深圳市另一科技有限公司")) != rendered


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_chinese_text_reads_back(rendered: bytes, tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(rendered)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # pdftotext drops the spaces between CJK and Latin text and breaks long lines.
    text = "".join(text.split())
    for expected in ("专项信用报告", "深圳市某某科技有限公司", "91350100M000100Y43", "扫码核验"):
        assert expected in text
    assert "第1/1页" in text


def test_subset_outlines_equal_the_source_font() -> None:
    path, index = pdf_report.find_cjk_font()
    source = ttLib.TTFont(path, fontNumber=index)
    data, missing = pdf_report._subset_font(pdf_report._glyph_source(), SAMPLE)
    subset = ttLib.TTFont(io.BytesIO(data))
    source_map, subset_map = source.getBestCmap(), subset.getBestCmap()
    composites = 0
    for char in set(SAMPLE) - {chr(code) for code in missing}:
        code = ord(char)
        original = source["glyf"][source_map[code]]
        copied = subset["glyf"][subset_map[code]]
        composites += original.isComposite()
        original_points, original_ends, _ = original.getCoordinates(source["glyf"])
        copied_points, copied_ends, _ = copied.getCoordinates(subset["glyf"])
        assert list(copied_points) == list(original_points), char
        assert list(copied_ends) == list(original_ends), char
        assert subset["hmtx"][subset_map[code]] == source["hmtx"][source_map[code]]
    assert composites > 0, "the sample must exercise composite glyphs"


def test_table_rows_must_match_the_header() -> None:
    doc = Document(
        title="表",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        blocks=(Table(("甲", "乙"), (("一",),)),),
    )
    with pytest.raises(PdfReportError):
        render_pdf(doc)


def test_a_configured_font_that_is_not_there_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIANXIN_PDF_FONT", "/nonexistent/font.ttf")
    with pytest.raises(PdfFontUnavailable):
        pdf_report.find_cjk_font()
