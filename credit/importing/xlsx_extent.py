"""What a workbook asks of its reader, found before any reader is given it: how far its
parts expand, and whether its worksheets fit the grid calamine is given.

calamine (:mod:`credit.importing.xlsx_source`) builds a worksheet as one dense grid from its
first to its last cell: a workbook of two cells, ``A1`` and ``XFD1048576``, 1.5 KB on disk,
has it allocate 16,384 × 1,048,576 cells (512 GiB), and the process aborts. Real rows cost it
memory in proportion too (100,000 rows of 30 columns: 255 MiB). openpyxl's read-only mode
streams a sheet row by row in flat memory, about fifteen times slower. So every worksheet
part is read once here, in bounded pieces, and calamine is given the workbook only when
every cell names its place within :data:`GRID` (:func:`fits_grid`).

Which parts are worksheets is taken from every relationship of the package, not only the
path from the package to its first sheet, so that no reading of the relationships can lead
a reader to a part not looked at here; a package holding two members of one name is
refused, since readers differ on which they open.

Declared sizes are bounded first: a workbook whose members declare more than
:data:`MAX_EXPANSION` times the file's size, or more than :data:`MAX_PART_BYTES` for a
worksheet or :data:`MAX_OTHER_PART_BYTES` for any other member, is refused before anything
but its relationships is decompressed. A member that expands beyond what it
declares is refused as well: :mod:`zipfile` stops there and fails the CRC, but calamine's
zip reader expands such a member whole before it fails (a 196 KB workbook whose shared
strings declare 1,000 bytes and hold 200 MB took it to 393 MiB), so before calamine is
given a workbook every member is expanded here once, in pieces, and checked.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from xml.etree import ElementTree

from credit.errors import ImportFileError

__all__ = ["GRID", "MAX_EXPANSION", "MAX_OTHER_PART_BYTES", "MAX_PART_BYTES", "fits_grid"]

GRID = "A1:AZ99999"
"""The grid a workbook's cells must lie in for calamine: 52 columns (the 双公示 layouts have
28 and 30) and 99,999 rows, at most 5.2 million cells."""

MAX_EXPANSION = 100
"""Most bytes the members of a workbook may declare, per byte of the file. Real workbooks
expand 5 to 20 times (a 双公示 sheet of 100,000 rows: 11.6 MB holding 157.7 MB); a zip
bomb expands a thousand times and more."""

MAX_PART_BYTES = 8 * 1024 * 1024 * 1024
"""Most bytes one worksheet part may declare, whatever the file's size (both readers are
given only what they stream, or a sheet scanned and found to fit calamine's grid)."""

MAX_OTHER_PART_BYTES = 512 * 1024 * 1024
"""Most bytes any other member may declare. Both readers hold the shared strings whole, and
openpyxl the styles as a parsed tree, so these bound the memory a workbook can ask for: a
sheet of Excel's 1,048,576 rows of 双公示 text shares about 300-400 MB of strings."""

MAX_RELATIONSHIPS_BYTES = 16 * 1024 * 1024
"""Most bytes of one relationships part, read whole (a few hundred bytes in real
workbooks)."""

_PIECE_BYTES = 1 << 20
"""Bytes of a sheet's XML looked at in one piece."""

_NS_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_WORKSHEET = "/worksheet"

_OUTSIDE_GRID = re.compile(rb'<c(?=[\s/>])(?! r="A?[A-Z][0-9]{1,5}")')
"""A cell that does not name its place inside :data:`GRID` as spreadsheet programs write it
(the ``r`` attribute first). A cell written otherwise (another attribute first, white space
around ``=``, no ``r``: its place follows its neighbour's) counts as outside, since its
place is not followed here."""
_PREFIXED = b":c"
"""Found in a sheet whose elements may carry a namespace prefix (``<x:c``), which the
pattern above does not see."""


def _bounded_declarations(archive: zipfile.ZipFile, file_size: int) -> None:
    declared = 0
    names: set[str] = set()
    for member in archive.infolist():
        if member.filename in names:
            raise ImportFileError(
                "not_xlsx", f"the workbook holds two parts named {member.filename}"
            )
        names.add(member.filename)
        declared += member.file_size
    if declared > MAX_EXPANSION * max(file_size, 1):
        raise ImportFileError(
            "not_xlsx",
            f"the workbook's parts would expand to {declared:,} bytes, more than "
            f"{MAX_EXPANSION} times its {file_size:,} bytes: not a workbook as spreadsheet "
            "programs write them",
        )


def _relationships(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> ElementTree.Element:
    if member.file_size > MAX_RELATIONSHIPS_BYTES:
        raise ImportFileError(
            "not_xlsx",
            f"the workbook's part {member.filename} is larger than "
            f"{MAX_RELATIONSHIPS_BYTES:,} bytes",
        )
    try:
        return ElementTree.fromstring(archive.read(member))
    except (ElementTree.ParseError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise ImportFileError(
            "not_xlsx", f"the workbook's part {member.filename}: {error}"
        ) from error


def worksheet_parts(archive: zipfile.ZipFile) -> set[str]:
    """The members that any relationship of the package names as a worksheet, its target
    read both against the relationships part's folder and from the package's root."""
    names = set(archive.namelist())
    parts: set[str] = set()
    for member in archive.infolist():
        if not member.filename.endswith(".rels"):
            continue
        base = posixpath.dirname(posixpath.dirname(member.filename))
        for relation in _relationships(archive, member).iter(f"{_NS_RELS}Relationship"):
            target = relation.get("Target", "")
            if not relation.get("Type", "").endswith(_WORKSHEET) or not target:
                continue
            rooted = target.lstrip("/")
            candidates = {rooted, posixpath.normpath(rooted)}
            if not target.startswith("/"):
                candidates.add(posixpath.normpath(posixpath.join(base, target)))
            parts |= candidates & names
    return parts


def _expands_as_declared(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    try:
        with archive.open(member) as stream:
            while stream.read(_PIECE_BYTES):
                pass
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as error:
        raise ImportFileError(
            "not_xlsx", f"the workbook's part {member.filename}: {error}"
        ) from error


def _within_grid(archive: zipfile.ZipFile, part: str) -> bool:
    carried = b""
    try:
        with archive.open(part) as stream:
            while True:
                piece = stream.read(_PIECE_BYTES)
                text = carried + piece
                if piece:
                    # A tag cut at the piece's end is looked at whole with the next piece.
                    cut = text.rfind(b"<")
                    text, carried = (text[:cut], text[cut:]) if cut > 0 else (text, b"")
                if _PREFIXED in text or _OUTSIDE_GRID.search(text) is not None:
                    return False
                if not piece:
                    return True
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as error:
        raise ImportFileError("not_xlsx", f"the worksheet's part {part}: {error}") from error


def fits_grid(path: str) -> bool:
    """Whether every cell of every worksheet of the workbook at ``path`` names its place
    inside :data:`GRID` (every member then checked to expand as it declares). Raises
    :class:`ImportFileError` (``not_xlsx``) for a file that is not a zip, holds two members
    of one name, or whose members expand beyond the bounds above."""
    try:
        with zipfile.ZipFile(path) as archive:
            with open(path, "rb") as file:
                size = file.seek(0, 2)
            _bounded_declarations(archive, size)
            sheets = worksheet_parts(archive)
            for member in archive.infolist():
                bound = MAX_PART_BYTES if member.filename in sheets else MAX_OTHER_PART_BYTES
                if member.file_size > bound:
                    raise ImportFileError(
                        "not_xlsx",
                        f"the workbook's part {member.filename} would expand to "
                        f"{member.file_size:,} bytes (at most {bound:,})",
                    )
            if not all(_within_grid(archive, part) for part in sheets):
                return False
            for member in archive.infolist():
                if member.filename not in sheets:
                    _expands_as_declared(archive, member)
            return True
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as error:
        raise ImportFileError("not_xlsx", f"not a readable XLSX workbook: {error}") from error
