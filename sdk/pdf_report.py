"""Simple Chinese PDF documents — title, headings, paragraphs, key/value and column tables, a
QR code and a footer — rendered to bytes; the one door to ``fpdf2`` (and to ``fontTools``,
which comes with it).

A document is data (:class:`Document` holding :data:`Block` values); :func:`render_pdf` turns
it into PDF bytes. The same document with the same ``created`` time renders to the same bytes
(no clock is read, the file identifier is derived from the content), so a rendered report can
be hashed and the hash anchored.

Fonts. Chinese text needs a CJK TrueType font. The font is found once per process
(:func:`find_cjk_font`): the file named by ``LIANXIN_PDF_FONT`` (``path`` or ``path#index`` for
a font collection), else the first of :data:`FONT_CANDIDATES` present (Debian's
``fonts-wqy-microhei`` first). A CJK font holds tens of thousands of glyphs and ``fpdf2``
parses every one of them each time a font is added (seconds per document); instead the font
is read once per process into a table of raw glyph outlines, and each document gets a small
font of only the glyphs its text uses (plus their components), built in milliseconds. The
outlines are copied byte for byte (composite glyphs have their component numbers rewritten),
so the text looks exactly as in the original font; ``pdftotext`` reads it back through the
ToUnicode map ``fpdf2`` writes.

Errors: :class:`PdfFontUnavailable` when no usable font is found (raised at render time, so
importing this module never fails), :class:`PdfReportError` for a document this module cannot
lay out.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import segno
from fontTools import ttLib  # type: ignore[import-untyped]
from fontTools.fontBuilder import FontBuilder  # type: ignore[import-untyped]
from fontTools.ttLib.tables._g_l_y_f import Glyph  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.enums import Align, TableCellFillMode, WrapMode, XPos, YPos
from fpdf.fonts import FontFace, TTFFont

__all__ = [
    "FONT_CANDIDATES",
    "Block",
    "Document",
    "Heading",
    "KeyValueTable",
    "Paragraph",
    "PdfFontUnavailable",
    "PdfReportError",
    "QRCode",
    "Table",
    "find_cjk_font",
    "render_pdf",
]

#: TrueType-outline CJK fonts tried in order (Debian paths). OpenType/CFF fonts such as Noto
#: CJK are not used: their outlines cannot be copied glyph by glyph.
FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf", 0),
    ("/usr/share/fonts/truetype/arphic-ukai/ukai.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)

_FONT_FAMILY = "cjk"
_PAGE_MARGIN_MM = 18.0
_BODY_SIZE_PT = 10.5
_LINE_MM = 6.0
_SHADE = (238, 241, 245)
# Every text box wraps at any character and leaves the cursor at the left margin of the next
# line (fpdf2's default leaves it at the right margin, where a full-width box has no room).
_WRAPPED: dict[str, Any] = {
    "wrapmode": WrapMode.CHAR,
    "new_x": XPos.LMARGIN,
    "new_y": YPos.NEXT,
}


class PdfReportError(Exception):
    """A document could not be rendered."""


class PdfFontUnavailable(PdfReportError):
    """No usable CJK TrueType font was found on this machine."""


# --------------------------------------------------------------------------- document model


@dataclass(frozen=True)
class Heading:
    """A section heading."""

    text: str


@dataclass(frozen=True)
class Paragraph:
    """Running text, wrapped at any character (Chinese has no spaces to break at)."""

    text: str
    size_pt: float = _BODY_SIZE_PT
    """Font size; smaller for notes."""


@dataclass(frozen=True)
class KeyValueTable:
    """Two columns: a shaded label and its value, one row each."""

    rows: Sequence[tuple[str, str]]
    label_width_mm: float = 45.0
    """Width of the label column; the value column takes the rest of the line."""


@dataclass(frozen=True)
class Table:
    """A table with a header row; every row has as many cells as the header."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    widths: Sequence[float] | None = None
    """Relative column widths; equal when omitted."""


@dataclass(frozen=True)
class QRCode:
    """A QR code (error correction level M) with an optional caption under it."""

    data: str
    caption: str = ""
    size_mm: float = 36.0


Block = Heading | Paragraph | KeyValueTable | Table | QRCode


@dataclass(frozen=True)
class Document:
    """A document: a centred title, then its blocks in order, a footer on every page."""

    title: str
    blocks: Sequence[Block]
    created: datetime
    """Written as the PDF's creation date; a parameter, so rendering is reproducible."""
    footer: str = ""
    """One line at the bottom of every page, before the page number."""
    subtitle: str = ""
    author: str = ""
    """The PDF's Author entry (e.g. the issuing office)."""
    keywords: Sequence[str] = field(default_factory=tuple)


# --------------------------------------------------------------------------- fonts


@dataclass(frozen=True)
class _GlyphSource:
    """A TrueType font read once: raw outlines by glyph id, metrics, the character map."""

    path: str
    index: int
    glyphs: tuple[bytes, ...]
    metrics: tuple[tuple[int, int], ...]
    cmap: dict[int, int]
    tables: dict[str, bytes]
    """Raw tables copied into every derived font (head, hhea, OS/2, name, hinting tables)."""


_font_lock = threading.Lock()
_font_source: _GlyphSource | None = None


def find_cjk_font() -> tuple[str, int]:
    """Return the ``(path, index)`` of the CJK font documents use, or raise
    :class:`PdfFontUnavailable` naming where it looked."""
    configured = os.environ.get("LIANXIN_PDF_FONT", "").strip()
    if configured:
        configured_path, _, number = configured.partition("#")
        if not Path(configured_path).is_file() or not (number or "0").isdigit():
            raise PdfFontUnavailable(f"LIANXIN_PDF_FONT names no font file: {configured}")
        return configured_path, int(number or 0)
    for path, index in FONT_CANDIDATES:
        if Path(path).is_file():
            return path, index
    tried = ", ".join(path for path, _ in FONT_CANDIDATES)
    raise PdfFontUnavailable(
        f"no CJK TrueType font found (tried {tried}); install fonts-wqy-microhei "
        "or set LIANXIN_PDF_FONT"
    )


def _load_source(path: str, index: int) -> _GlyphSource:
    font = ttLib.TTFont(path, fontNumber=index, lazy=True)
    try:
        if "glyf" not in font or "loca" not in font:
            raise PdfFontUnavailable(f"{path} has no TrueType outlines (glyf)")
        glyph_order = font.getGlyphOrder()
        loca = font["loca"]
        raw = font.reader["glyf"]
        glyphs = tuple(bytes(raw[loca[i] : loca[i + 1]]) for i in range(len(glyph_order)))
        hmtx = font["hmtx"].metrics
        metrics = tuple(hmtx[name] for name in glyph_order)
        gid = {name: i for i, name in enumerate(glyph_order)}
        best = font.getBestCmap()
        if not best:
            raise PdfFontUnavailable(f"{path} has no Unicode character map")
        cmap = {code: gid[name] for code, name in best.items()}
        tables = {
            tag: font.reader[tag]
            for tag in ("head", "hhea", "OS/2", "name", "cvt ", "fpgm", "prep", "gasp")
            if tag in font.reader
        }
        maxp = font["maxp"]
        tables["maxp"] = font.reader["maxp"]
        if maxp.numGlyphs != len(glyphs):
            raise PdfFontUnavailable(f"{path}: maxp and loca disagree on the glyph count")
    finally:
        font.close()
    return _GlyphSource(path, index, glyphs, metrics, cmap, tables)


def _glyph_source() -> _GlyphSource:
    global _font_source
    with _font_lock:
        if _font_source is None:
            path, index = find_cjk_font()
            _font_source = _load_source(path, index)
        return _font_source


# Composite glyph flags (OpenType spec, 'glyf' table).
_ARG_1_AND_2_ARE_WORDS = 0x0001
_WE_HAVE_A_SCALE = 0x0008
_MORE_COMPONENTS = 0x0020
_WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
_WE_HAVE_A_TWO_BY_TWO = 0x0080


def _components(data: bytes) -> Iterable[tuple[int, int]]:
    """(offset of the glyph index, glyph index) of every component of a composite glyph."""
    if len(data) < 10 or struct.unpack_from(">h", data, 0)[0] >= 0:
        return
    offset = 10
    while True:
        flags, glyph_id = struct.unpack_from(">HH", data, offset)
        yield offset + 2, glyph_id
        offset += 4 + (4 if flags & _ARG_1_AND_2_ARE_WORDS else 2)
        if flags & _WE_HAVE_A_SCALE:
            offset += 2
        elif flags & _WE_HAVE_AN_X_AND_Y_SCALE:
            offset += 4
        elif flags & _WE_HAVE_A_TWO_BY_TWO:
            offset += 8
        if not flags & _MORE_COMPONENTS:
            return


def _subset_font(source: _GlyphSource, text: str) -> tuple[bytes, set[int]]:
    """A TrueType font holding the glyphs of ``text`` (and their components); also returns
    the characters the source font does not have."""
    codes = {ord(ch) for ch in text if ord(ch) >= 0x20} | {0x20}
    missing = {code for code in codes if code not in source.cmap}
    wanted = [0]
    seen = {0}
    for code in sorted(codes - missing):
        pending = [source.cmap[code]]
        while pending:
            gid = pending.pop()
            if gid in seen:
                continue
            seen.add(gid)
            wanted.append(gid)
            pending.extend(child for _, child in _components(source.glyphs[gid]))
    new_id = {old: new for new, old in enumerate(wanted)}
    names = [".notdef"] + [f"g{old}" for old in wanted[1:]]

    # The outlines keep the bounding boxes the source font stored in them; recomputing them
    # would decode every outline.
    font = ttLib.TTFont(recalcTimestamp=False, recalcBBoxes=False)
    font.setGlyphOrder(names)
    for tag, data in source.tables.items():
        table = ttLib.newTable(tag)
        table.decompile(data, font)
        font[tag] = table
    builder = FontBuilder(font=font)
    builder.isTTF = True
    glyphs: dict[str, Glyph] = {}
    for name, old in zip(names, wanted, strict=True):
        outline = bytearray(source.glyphs[old])
        for offset, child in _components(source.glyphs[old]):
            struct.pack_into(">H", outline, offset, new_id[child])
        glyphs[name] = Glyph(bytes(outline))
    # FontBuilder.setupGlyf would parse every outline to look for cubic curves; the
    # outlines come from a TrueType font, so they are quadratic already.
    font["loca"] = ttLib.newTable("loca")
    glyf = ttLib.newTable("glyf")
    glyf.glyphs = glyphs
    glyf.glyphOrder = names
    font["glyf"] = glyf
    builder.setupHorizontalMetrics(
        {name: source.metrics[old] for name, old in zip(names, wanted, strict=True)}
    )
    builder.setupCharacterMap({code: names[new_id[source.cmap[code]]] for code in codes - missing})
    builder.setupPost(keepGlyphNames=False)
    font["maxp"].numGlyphs = len(names)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue(), missing


# --------------------------------------------------------------------------- layout


class _Pdf(FPDF):
    footer_text: str = ""

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(_FONT_FAMILY, size=8)
        self.set_text_color(90, 90, 90)
        page = f"第 {self.page_no()} / {{nb}} 页"
        text = f"{self.footer_text}    {page}" if self.footer_text else page
        self.cell(0, 5, text, align=Align.C)
        self.set_text_color(0, 0, 0)


def _document_text(doc: Document) -> str:
    parts = [doc.title, doc.subtitle, doc.footer, "第 / 页0123456789"]
    for block in doc.blocks:
        if isinstance(block, Heading | Paragraph):
            parts.append(block.text)
        elif isinstance(block, KeyValueTable):
            parts.extend(f"{k}{v}" for k, v in block.rows)
        elif isinstance(block, Table):
            parts.extend(block.header)
            parts.extend("".join(row) for row in block.rows)
        elif isinstance(block, QRCode):
            parts.append(block.caption)
    return "".join(parts)


def _qr_png(data: str) -> io.BytesIO:
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(out, kind="png", scale=8, border=2)
    out.seek(0)
    return out


def _render_block(pdf: _Pdf, block: Block) -> None:
    if isinstance(block, Heading):
        pdf.ln(3)
        pdf.set_font(_FONT_FAMILY, size=13)
        pdf.multi_cell(0, 8, block.text, **_WRAPPED, align=Align.L)
        y = pdf.get_y()
        pdf.set_draw_color(160, 160, 160)
        pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)
        pdf.ln(2)
        pdf.set_font(_FONT_FAMILY, size=_BODY_SIZE_PT)
    elif isinstance(block, Paragraph):
        pdf.set_font(_FONT_FAMILY, size=block.size_pt)
        line = _LINE_MM * block.size_pt / _BODY_SIZE_PT
        pdf.multi_cell(0, line, block.text, **_WRAPPED, align=Align.L)
        pdf.ln(1)
        pdf.set_font(_FONT_FAMILY, size=_BODY_SIZE_PT)
    elif isinstance(block, KeyValueTable):
        width = pdf.w - pdf.l_margin - pdf.r_margin
        label = block.label_width_mm
        with pdf.table(
            col_widths=(label, width - label),
            first_row_as_headings=False,
            wrapmode=WrapMode.CHAR,
            line_height=_LINE_MM,
            text_align=(Align.L, Align.L),
            cell_fill_mode=TableCellFillMode.COLUMNS,
            cell_fill_color=_SHADE,
        ) as table:
            for key, value in block.rows:
                row = table.row()
                row.cell(key)
                row.cell(value)
        pdf.ln(2)
    elif isinstance(block, Table):
        if any(len(row) != len(block.header) for row in block.rows):
            raise PdfReportError("every table row needs as many cells as the header")
        widths = tuple(block.widths) if block.widths else (1.0,) * len(block.header)
        pdf.set_font(_FONT_FAMILY, size=9)
        with pdf.table(
            col_widths=widths,
            wrapmode=WrapMode.CHAR,
            line_height=5,
            headings_style=FontFace(fill_color=_SHADE),
            text_align=Align.L,
        ) as table:
            heading = table.row()
            for cell in block.header:
                heading.cell(cell)
            for values in block.rows:
                row = table.row()
                for cell in values:
                    row.cell(cell)
        pdf.set_font(_FONT_FAMILY, size=_BODY_SIZE_PT)
        pdf.ln(2)
    elif isinstance(block, QRCode):
        if pdf.get_y() + block.size_mm + 10 > pdf.h - pdf.b_margin:
            pdf.add_page()
        x = (pdf.w - block.size_mm) / 2
        pdf.image(_qr_png(block.data), x=x, w=block.size_mm, h=block.size_mm)
        if block.caption:
            pdf.set_font(_FONT_FAMILY, size=8)
            pdf.multi_cell(0, 4.5, block.caption, **_WRAPPED, align=Align.C)
            pdf.set_font(_FONT_FAMILY, size=_BODY_SIZE_PT)
    else:  # pragma: no cover - the union is closed
        raise PdfReportError(f"unknown block {type(block).__name__}")


def _layout(doc: Document, font_path: str) -> bytes:
    pdf = _Pdf(orientation="P", unit="mm", format="A4")
    pdf.footer_text = doc.footer
    pdf.set_margins(_PAGE_MARGIN_MM, _PAGE_MARGIN_MM, _PAGE_MARGIN_MM)
    pdf.set_auto_page_break(True, margin=20)
    created = doc.created if doc.created.tzinfo else doc.created.replace(tzinfo=UTC)
    pdf.set_creation_date(created)
    pdf.set_title(doc.title)
    if doc.author:
        pdf.set_author(doc.author)
    if doc.keywords:
        pdf.set_keywords(" ".join(doc.keywords))
    pdf.set_lang("zh-CN")
    pdf.add_font(_FONT_FAMILY, "", font_path)
    # fpdf2 subsets the font again when writing; the boxes stored in the outlines are
    # right, and recomputing them decodes every outline (most of the time spent writing).
    added = pdf.fonts[_FONT_FAMILY]
    if isinstance(added, TTFFont):
        added.ttfont.recalcBBoxes = False
    pdf.add_page()
    pdf.set_font(_FONT_FAMILY, size=18)
    pdf.multi_cell(0, 10, doc.title, **_WRAPPED, align=Align.C)
    if doc.subtitle:
        pdf.set_font(_FONT_FAMILY, size=10)
        pdf.set_text_color(80, 80, 80)
        pdf.multi_cell(0, 6, doc.subtitle, **_WRAPPED, align=Align.C)
        pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    pdf.set_font(_FONT_FAMILY, size=_BODY_SIZE_PT)
    for block in doc.blocks:
        _render_block(pdf, block)
    pdf.set_xy(pdf.l_margin, pdf.get_y())
    return bytes(pdf.output())


def render_pdf(doc: Document) -> bytes:
    """Render ``doc`` to PDF bytes (A4, CJK font embedded as a subset).

    Raises :class:`PdfFontUnavailable` when no CJK font is installed and
    :class:`PdfReportError` for a document that cannot be laid out (a table row with the
    wrong number of cells). Characters the font lacks are drawn as its empty box.
    """
    source = _glyph_source()
    font_bytes, _missing = _subset_font(source, _document_text(doc))
    # fpdf2 reads fonts from files only; the file lives as long as this call.
    with tempfile.TemporaryDirectory(prefix="lianxin-pdf-") as folder:
        font_path = Path(folder) / "cjk.ttf"
        font_path.write_bytes(font_bytes)
        try:
            return _layout(doc, str(font_path))
        except PdfReportError:
            raise
        except Exception as exc:  # fpdf2 raises its own types for layout failures
            raise PdfReportError(f"the document could not be laid out: {exc}") from exc
