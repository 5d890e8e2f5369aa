"""Proof that a preserved file actually opens (DA/T 70 可用性): PDFs parsed with ``pypdf``
(every page's tree read), OFD's zip structure checked and ``OFD.xml`` with its document
root parsed through ``defusedxml`` (no entities, no external references), images decoded by
Pillow within a pixel budget, XML parsed, text decoded. Every reader is bounded."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path, PurePosixPath

import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException
from PIL import Image
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from archives.formats import FormatIdentity

MAX_XML_BYTES = 8 * 1024 * 1024
"""Largest XML part parsed (OFD.xml, Document.xml, an XML payload file)."""

MAX_OFD_MEMBERS = 10_000
"""Most members of an OFD container."""

MAX_IMAGE_PIXELS = 200_000_000
"""Largest image decoded (Pillow's decompression-bomb bound)."""

MAX_PDF_PAGES = 20_000
"""Most pages read from one PDF."""

logging.getLogger("pypdf").setLevel(logging.ERROR)


class NotUsable(Exception):
    """The file does not open as its format; the message says where it fails."""


def _parse_xml(data: bytes, what: str) -> object:
    if len(data) > MAX_XML_BYTES:
        raise NotUsable(f"{what} is over {MAX_XML_BYTES} bytes")
    try:
        return safe_xml.fromstring(data)
    except (safe_xml.ParseError, DefusedXmlException) as exc:
        raise NotUsable(f"{what} does not parse: {exc}") from exc


def _open_pdf(path: Path) -> str:
    try:
        reader = PdfReader(path, strict=False)
        pages = len(reader.pages)
        if pages > MAX_PDF_PAGES:
            raise NotUsable(f"{pages} pages, over {MAX_PDF_PAGES}")
        for page in reader.pages:
            page.mediabox  # noqa: B018 - reading it walks the page tree
        return f"PDF parsed, {pages} pages"
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise NotUsable(f"PDF does not parse: {type(exc).__name__}: {exc}") from exc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _open_ofd(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as bundle:
            names = bundle.namelist()
            if len(names) > MAX_OFD_MEMBERS:
                raise NotUsable(f"{len(names)} members, over {MAX_OFD_MEMBERS}")
            upper = {name.upper(): name for name in names}
            entry = upper.get("OFD.XML")
            if entry is None:
                raise NotUsable("no OFD.xml")
            info = bundle.getinfo(entry)
            if info.file_size > MAX_XML_BYTES:
                raise NotUsable(f"OFD.xml is over {MAX_XML_BYTES} bytes")
            root = _parse_xml(bundle.read(entry), "OFD.xml")
            if _local(getattr(root, "tag", "")) != "OFD":
                raise NotUsable("OFD.xml's root element is not ofd:OFD")
            doc_roots = [
                (element.text or "").strip()
                for element in root.iter()  # type: ignore[attr-defined]
                if _local(element.tag) == "DocRoot"
            ]
            if not doc_roots:
                raise NotUsable("OFD.xml names no DocRoot")
            for doc_root in doc_roots:
                name = str(PurePosixPath(doc_root.lstrip("/")))
                member = upper.get(name.upper())
                if member is None:
                    raise NotUsable(f"DocRoot {doc_root} is not in the container")
                if bundle.getinfo(member).file_size > MAX_XML_BYTES:
                    raise NotUsable(f"{doc_root} is over {MAX_XML_BYTES} bytes")
                _parse_xml(bundle.read(member), doc_root)
            return f"OFD container, OFD.xml and {len(doc_roots)} document root(s) parsed"
    except zipfile.BadZipFile as exc:
        raise NotUsable(f"OFD container is not a valid zip: {exc}") from exc


def _open_image(path: Path) -> str:
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise NotUsable(f"{width}x{height} pixels, over {MAX_IMAGE_PIXELS}")
            image.load()
            return f"{image.format} decoded, {width}x{height}"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise NotUsable(f"image does not decode: {exc}") from exc


def _open_xml(path: Path) -> str:
    if path.stat().st_size > MAX_XML_BYTES:
        raise NotUsable(f"XML over {MAX_XML_BYTES} bytes")
    root = _parse_xml(path.read_bytes(), "XML")
    return f"XML parsed, root <{_local(getattr(root, 'tag', ''))}>"


def _open_text(path: Path) -> str:
    with path.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            if b"\x00" in block:
                raise NotUsable("text holds NUL bytes")
    return "text read"


_OPENERS = {
    "pdf": _open_pdf,
    "pdf/a": _open_pdf,
    "ofd": _open_ofd,
    "jpeg": _open_image,
    "tiff": _open_image,
    "png": _open_image,
    "xml": _open_xml,
    "txt": _open_text,
}


def open_scanned(path: Path, identity: FormatIdentity, *, holds_nul: bool) -> str:
    """:func:`open_file` for a file already read once, knowing whether it holds a NUL byte:
    a text file is not read again."""
    if identity.format == "txt":
        if holds_nul:
            raise NotUsable("text holds NUL bytes")
        return "text read"
    return open_file(path, identity)


def open_file(path: Path, identity: FormatIdentity) -> str:
    """Open ``path`` as its identified format; returns what was read, raises NotUsable."""
    opener = _OPENERS.get(identity.format)
    if opener is None:
        raise NotUsable(f"no reader for format {identity.format}")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    return opener(path)


__all__ = ["NotUsable", "open_file", "open_scanned"]
