"""The readers that prove a file opens (DA/T 70 可用性), each bounded within itself: PDFs
parsed with ``pypdf`` (every page's tree read), OFD's zip structure checked and ``OFD.xml``
with its document root parsed through ``defusedxml`` (no entities, no external references),
images decoded by Pillow within a pixel budget, XML parsed, text decoded. They run in a
child of the reading process (:mod:`archives.reading_process`), text's aside; what their
bounds are is said in :mod:`archives.usability`."""

from __future__ import annotations

import logging
import posixpath
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException
from PIL import Image
from pypdf import PasswordType, PdfReader
from pypdf.errors import DeprecationError as PdfDeprecationError
from pypdf.errors import PyPdfError
from pypdf.generic import DictionaryObject

MAX_XML_BYTES = 8 * 1024 * 1024
"""Largest XML part parsed (OFD.xml, Document.xml, an XML payload file)."""

MAX_OFD_MEMBERS = 10_000
"""Most members of an OFD container."""

MAX_IMAGE_PIXELS = 200_000_000
"""Largest image decoded, checked from its header before decoding (an A0 sheet scanned at
300 dpi is some 140,000,000 pixels)."""

MAX_PDF_PAGES = 20_000
"""Most pages read from one PDF."""

MAX_REASON = 500
"""Most characters of one answer kept: a reader's message can quote the file's bytes."""

logging.getLogger("pypdf").setLevel(logging.ERROR)


class NotUsable(Exception):
    """The file does not open as its format; the message says where it fails."""


def _named(exc: BaseException) -> str:
    """``Type: message``, with the exception it was raised from (pypdf raises its own error
    from a RecursionError or a MemoryError)."""
    text = f"{type(exc).__name__}: {exc}"
    if exc.__cause__ is not None:
        text += f" (from {type(exc.__cause__).__name__}: {exc.__cause__})"
    return text


def _parse_xml(data: bytes, what: str) -> object:
    if len(data) > MAX_XML_BYTES:
        raise NotUsable(f"{what} is over {MAX_XML_BYTES} bytes")
    try:
        return safe_xml.fromstring(data)
    except (safe_xml.ParseError, DefusedXmlException) as exc:
        raise NotUsable(f"{what} does not parse: {exc}") from exc


# -- PDF ---------------------------------------------------------------------------------------

_PDF_ERRORS = (
    PyPdfError,
    PdfDeprecationError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    AssertionError,
    OverflowError,
    NotImplementedError,
    RecursionError,
    OSError,
)
"""What pypdf raises on a malformed file: its own errors (a filter name it no longer reads
raises one that is not a PyPdfError), and Python's from where it reads without checking (an
``assert`` that an object stream is one, a seek to a ``startxref`` past any offset or to a
negative one, a security handler other than the standard one, a reference that resolves to
itself)."""


class _Repairs(logging.Handler):
    """pypdf's warnings while one file is read: pypdf logs one wherever it reads a
    non-compliant file by repairing it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.count == 1:
            self.first = record.getMessage()[:MAX_REASON]

    @contextmanager
    def watching(self) -> Iterator[_Repairs]:
        """Count pypdf's warnings (and only count them) while in the block."""
        pypdf_log = logging.getLogger("pypdf")
        level, propagate = pypdf_log.level, pypdf_log.propagate
        pypdf_log.setLevel(logging.WARNING)
        pypdf_log.propagate = False
        pypdf_log.addHandler(self)
        try:
            yield self
        finally:
            pypdf_log.removeHandler(self)
            pypdf_log.setLevel(level)
            pypdf_log.propagate = propagate

    def note(self) -> str:
        """What the answer says of them: nothing if there were none."""
        if not self.count:
            return ""
        return f"; pypdf repaired {self.count} problem(s) reading it, the first: {self.first}"


def _declared_count(reader: PdfReader) -> object:
    """The page count the page tree's root declares (its ``/Count``), None if none."""
    tree = reader.root_object.get("/Pages")
    tree = tree.get_object() if tree is not None else None
    count = tree.get("/Count") if isinstance(tree, DictionaryObject) else None
    return count.get_object() if count is not None else None


def _open_pdf(path: Path) -> str:
    repairs = _Repairs()
    with path.open("rb") as stream, repairs.watching():
        try:
            reader = PdfReader(stream, strict=False)
            if reader.is_encrypted:
                if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                    raise NotUsable("PDF is encrypted: it does not open without its password")
                # It opens, but an archived file must not be encrypted at all: PDF/A
                # (ISO 19005) forbids it, and its permissions can forbid printing or copying.
                raise NotUsable(
                    "PDF is encrypted (with an empty user password): encryption is not "
                    "allowed in an archived file"
                )
            pages = len(reader.pages)
            if pages > MAX_PDF_PAGES:
                raise NotUsable(f"{pages} pages, over {MAX_PDF_PAGES}")
            if not pages:
                raise NotUsable(f"PDF has no page{repairs.note()}")
            for page in reader.pages:
                page.mediabox  # noqa: B018 - reading it walks the page tree
            declared = _declared_count(reader)
        except _PDF_ERRORS as exc:
            raise NotUsable(f"PDF does not parse: {_named(exc)}{repairs.note()}") from exc
    if declared != pages:
        raise NotUsable(
            f"the page tree's /Count is {declared}, but it holds {pages} pages{repairs.note()}"
        )
    return f"PDF parsed, {pages} pages{repairs.note()}"


# -- OFD ---------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _member(members: list[zipfile.ZipInfo], name: str) -> zipfile.ZipInfo | None:
    """The member named ``name``, case aside (as OFD readers find ``OFD.xml``), or None."""
    found = [info for info in members if info.filename.upper() == name.upper()]
    if len(found) > 1:
        raise NotUsable(f"two members named {name}: {', '.join(i.filename for i in found)}")
    return found[0] if found else None


def _read_member(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated no further than the size it declares. (zipfile's ``read()``
    inflates all of a member's data, up to 2 GiB, before it cuts the result at that size; a
    bounded read stops there, and the CRC check then fails a member that holds more.)"""
    name = info.filename
    if info.flag_bits & 0x1:
        raise NotUsable(f"{name} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # zipfile inflates bzip2 and LZMA members without an output bound.
        raise NotUsable(f"{name} is compressed by method {info.compress_type}, not deflated")
    if info.file_size > MAX_XML_BYTES:
        raise NotUsable(f"{name} is over {MAX_XML_BYTES} bytes")
    try:
        with bundle.open(info) as member:
            return member.read(info.file_size)
    except zlib.error as exc:
        raise NotUsable(f"{name} does not inflate: {exc}") from exc
    except EOFError as exc:
        raise NotUsable(f"{name} runs past the end of the container") from exc
    except NotImplementedError as exc:
        raise NotUsable(f"{name} needs what zipfile does not implement: {exc}") from exc


def _in_container(location: str) -> str | None:
    """The member an OFD location names (from the container's root, ``/`` or not), or None
    if it leads outside the container."""
    name = posixpath.normpath(location.strip().lstrip("/") or ".")
    return None if name == ".." or name.startswith("../") else name


def _open_ofd(path: Path) -> str:
    with path.open("rb") as stream:
        try:
            with zipfile.ZipFile(stream) as bundle:
                return _read_ofd(bundle)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
            # zipfile also seeks to the offsets the container gives, decodes the names it
            # holds, and refuses the zip versions it does not know.
            raise NotUsable(f"OFD container is not a valid zip: {exc}") from exc


def _read_ofd(bundle: zipfile.ZipFile) -> str:
    members = bundle.infolist()
    if len(members) > MAX_OFD_MEMBERS:
        raise NotUsable(f"{len(members)} members, over {MAX_OFD_MEMBERS}")
    twice = sorted(n for n, c in Counter(i.filename for i in members).items() if c > 1)
    if twice:
        raise NotUsable(f"two members named {twice[0]}")
    entry = _member(members, "OFD.xml")
    if entry is None:
        raise NotUsable("no OFD.xml")
    root = _parse_xml(_read_member(bundle, entry), "OFD.xml")
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
        name = _in_container(doc_root)
        if name is None:
            raise NotUsable(f"DocRoot {doc_root} leads outside the container")
        member = _member(members, name)
        if member is None:
            raise NotUsable(f"DocRoot {doc_root} is not in the container")
        document = _parse_xml(_read_member(bundle, member), doc_root)
        if _local(getattr(document, "tag", "")) != "Document":
            raise NotUsable(f"{doc_root}'s root element is not ofd:Document")
    return f"OFD container, OFD.xml and {len(doc_roots)} document root(s) parsed"


# -- images, XML, text -------------------------------------------------------------------------


def _open_image(path: Path) -> str:
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise NotUsable(f"{width}x{height} pixels, over {MAX_IMAGE_PIXELS}")
            image.load()
            return f"{image.format} decoded, {width}x{height}"
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotUsable(f"image does not decode: {exc}") from exc


def _open_xml(path: Path) -> str:
    if path.stat().st_size > MAX_XML_BYTES:
        raise NotUsable(f"XML over {MAX_XML_BYTES} bytes")
    root = _parse_xml(path.read_bytes(), "XML")
    return f"XML parsed, root <{_local(getattr(root, 'tag', ''))}>"


def open_text(path: Path) -> str:
    with path.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            if b"\x00" in block:
                raise NotUsable("text holds NUL bytes")
    return "text read"


OPENERS = {
    "pdf": _open_pdf,
    "pdf/a": _open_pdf,
    "ofd": _open_ofd,
    "jpeg": _open_image,
    "tiff": _open_image,
    "png": _open_image,
    "xml": _open_xml,
}
"""The reader of each format read in a child of the reading process (text is read in the
caller: :func:`open_text`)."""


__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_OFD_MEMBERS",
    "MAX_PDF_PAGES",
    "MAX_REASON",
    "MAX_XML_BYTES",
    "OPENERS",
    "NotUsable",
    "open_text",
]
