"""Format identification by content, never by extension, with ``puremagic`` (a maintained
signature library in pure Python, the one door to it), refined where a signature alone
cannot tell: a zip holding ``OFD.xml`` is OFD (GB/T 33190), a PDF whose XMP metadata claims
a ``pdfaid:part`` is PDF/A, unsigned bytes that decode as UTF-8 or GB18030 text are TXT."""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import puremagic
from puremagic import main as _puremagic

ALLOWED_FORMATS = ("pdf", "pdf/a", "ofd", "jpeg", "tiff", "png", "xml", "txt")
"""Formats accepted for long-term preservation (DA/T 47, GB/T 33190, DA/T 70 可用性)."""

SNIFF_BYTES = 64 * 1024
"""Bytes read to identify a file."""

_EXTENSIONS = {
    ".pdf": "pdf",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".xml": "xml",
    ".zip": "zip",
}


@functools.cache
def _header_index() -> dict[int, dict[int, list[int]]]:
    """puremagic's header signatures by offset, then by their first byte: the positions
    (in puremagic's order) of the signatures a header could match."""
    index: dict[int, dict[int, list[int]]] = {}
    for position, row in enumerate(_puremagic.magic_header_array):
        index.setdefault(row.offset, {}).setdefault(row.byte_match[0], []).append(position)
    return index


def magic_matches(data: bytes) -> list[Any]:
    """What ``puremagic.magic_string(data)`` answers (the same matches in the same order;
    an empty list where it finds none), without trying each of its ~1,400 header
    signatures in turn: only those whose first byte is at their offset in ``data``. A
    file's identification costs microseconds, not a millisecond of Python per file."""
    if not data:
        return []
    head, foot = data[: _puremagic.max_head], data[-_puremagic.max_foot :]
    rows = _puremagic.magic_header_array
    candidates: list[int] = []
    for offset, by_first_byte in _header_index().items():
        if offset < len(head):
            candidates.extend(by_first_byte.get(head[offset], ()))
    matches = []
    for position in sorted(candidates):
        row = rows[position]
        end = row.offset + len(row.byte_match)
        if end <= len(head) and head[row.offset : end] == row.byte_match:
            matches.append(row)
    # The footer signatures (a handful) and the multi-part ones, as puremagic matches them.
    for row in _puremagic.magic_footer_array:
        end = row.offset + len(row.byte_match)
        if (foot[row.offset : end] if end != 0 else foot[row.offset :]) == row.byte_match:
            matches.append(row)
    extra = set()
    for matched in matches:
        for row in _puremagic.multi_part_dict.get(matched.byte_match, ()):
            end = row.offset + len(row.byte_match)
            if row.offset < 0:
                area = foot[row.offset : end] if end != 0 else foot[row.offset :]
                if area == row.byte_match:
                    extra.add(row._replace(byte_match=matched.byte_match + row.byte_match))
            elif end <= len(head) and head[row.offset : end] == row.byte_match:
                extra.add(row._replace(byte_match=head[matched.offset : end]))
    matches.extend(extra)
    try:
        info: list[Any] = _puremagic._confidence(matches, None)
    except puremagic.PureError:
        return []
    info.sort(key=lambda match: match.confidence, reverse=True)
    return info


@dataclass(frozen=True)
class FormatIdentity:
    """What a file is."""

    format: str
    """``pdf``, ``pdf/a``, ``ofd``, ``jpeg``, ... or ``unknown``; or what puremagic named."""
    mime_type: str
    """Its MIME type where known."""
    evidence: str
    """What the identification rests on."""

    @property
    def allowed(self) -> bool:
        """Whether the format is on the preservation list."""
        return self.format in ALLOWED_FORMATS


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            text = head.decode(encoding)
        except UnicodeDecodeError:
            # A multi-byte character cut by the sniff window is still text.
            try:
                text = head[:-4].decode(encoding)
            except UnicodeDecodeError:
                continue
        for layout in "\r\n\t\f":
            text = text.replace(layout, "")
        return text.isprintable()
    return False


OFD_IDENTIFY_MEMBERS = 10_000
"""Most members a zip may list to be looked into for ``OFD.xml`` (the usability check's own
bound on an OFD container). Python's zipfile reads the whole central directory when it opens
a file, so the count its end record gives is checked first: a million members took seconds
and a gigabyte to list. A zip with more is identified as a zip."""

_END_OF_DIRECTORY = b"PK\x05\x06"
_END_RECORD_BYTES = 22
_LONGEST_COMMENT = 0xFFFF


def _listed_members(path: Path) -> int | None:
    """The member count a zip's end-of-central-directory record gives, or None when the
    record is not found or is a Zip64 one (counts too large for its fields)."""
    with path.open("rb") as stream:
        size = stream.seek(0, 2)
        start = max(0, size - _END_RECORD_BYTES - _LONGEST_COMMENT)
        stream.seek(start)
        tail = stream.read()
    at = tail.rfind(_END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < _END_RECORD_BYTES:
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    return None if count == 0xFFFF else count


def _is_ofd(path: Path) -> bool:
    try:
        count = _listed_members(path)
        if count is None or count > OFD_IDENTIFY_MEMBERS:
            return False
        with zipfile.ZipFile(path) as bundle:
            return any(name.upper() == "OFD.XML" for name in bundle.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        # UnicodeDecodeError (a name flagged UTF-8 that is not) is a ValueError.
        return False


def _is_pdfa(path: Path) -> bool:
    # XMP is plain text in the file; a pdfaid:part claim marks PDF/A (checked again when
    # the file is opened).
    with path.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            if b"pdfaid:part" in block:
                return True
    return False


def identify(path: Path, head: bytes | None = None) -> FormatIdentity:
    """Identify ``path`` by its content: its first :data:`SNIFF_BYTES`, read here unless
    ``head`` gives them (read once with the rest of the file)."""
    if head is None:
        with path.open("rb") as stream:
            head = stream.read(SNIFF_BYTES)
    head = head[:SNIFF_BYTES]
    if not head:
        return FormatIdentity("empty", "", "the file is empty")
    matches = magic_matches(head)
    best = max(matches, key=lambda m: m.confidence, default=None)
    extensions = {m.extension.lower() for m in matches}
    if ".pdf" in extensions:
        if _is_pdfa(path):
            return FormatIdentity("pdf/a", "application/pdf", "%PDF signature, XMP pdfaid:part")
        return FormatIdentity("pdf", "application/pdf", "%PDF signature")
    if head.startswith(b"PK\x03\x04"):
        if _is_ofd(path):
            return FormatIdentity("ofd", "application/ofd", "zip container holding OFD.xml")
        return FormatIdentity("zip", "application/zip", "zip container without OFD.xml")
    for extension in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".xml"):
        if extension in extensions:
            match = next(m for m in matches if m.extension.lower() == extension)
            return FormatIdentity(
                _EXTENSIONS[extension], match.mime_type, f"signature {match.byte_match!r}"
            )
    if best is not None:
        return FormatIdentity(
            best.extension.lstrip(".") or "unknown", best.mime_type, f"signature: {best.name}"
        )
    if _is_text(head):
        return FormatIdentity("txt", "text/plain", "no signature; decodes as UTF-8/GB18030 text")
    return FormatIdentity("unknown", "", "no known signature")


__all__ = ["ALLOWED_FORMATS", "FormatIdentity", "identify"]
