"""Proof that a preserved file actually opens (DA/T 70 可用性): PDFs parsed with ``pypdf``
(every page's tree read), OFD's zip structure checked and ``OFD.xml`` with its document
root parsed through ``defusedxml`` (no entities, no external references), images decoded by
Pillow within a pixel budget, XML parsed, text decoded.

**What bounds a reading.** The bytes come from whoever filled the package, so every reader
but text's runs in a child process of its own, under :data:`READ_SECONDS` of wall-clock
time and :data:`READ_ADDRESS_SPACE` of memory (``RLIMIT_AS``), and what ends it early is
the file's answer: a file that takes longer, needs more, or kills its reader does not open.
The children are forked, one per file, from a reading process that each process using this
module starts once: a fresh interpreter with pypdf and Pillow imported, never a fork of a
caller that may run threads. Reading a file so costs some 10 ms more than reading it in the
caller; a fresh interpreter for each file would cost 150-300 ms.

Within that, each reader keeps its own bounds, which give the answer a cause:

- PDF: pypdf's (``pypdf.Configuration``: 75,000,000 bytes per decoded stream, a page tree
  at most 100 deep with 100,000 entries, cycles refused) and :data:`MAX_PDF_PAGES`. Walking
  the page tree decodes the object streams the pages are in, never a content stream. pypdf
  bounds neither the time a file takes (it scans an object stream's white space a byte at
  a time: some 8 s per 64 MiB) nor the sum of the object streams it decodes and keeps: the
  reading process's limits do. Its warnings (it reads a non-compliant file by repairing
  it, and says so) are counted into the answer.
- OFD: :data:`MAX_OFD_MEMBERS`, :data:`MAX_XML_BYTES` per part, each part inflated no
  further than the size it declares, stored or deflated only.
- Images: :data:`MAX_IMAGE_PIXELS`, checked from the header before anything is decoded;
  the first frame only.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import posixpath
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NoReturn

import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException
from PIL import Image
from pypdf import PasswordType, PdfReader
from pypdf.errors import DeprecationError as PdfDeprecationError
from pypdf.errors import PyPdfError
from pypdf.generic import DictionaryObject

from archives.formats import FormatIdentity

MAX_XML_BYTES = 8 * 1024 * 1024
"""Largest XML part parsed (OFD.xml, Document.xml, an XML payload file)."""

MAX_OFD_MEMBERS = 10_000
"""Most members of an OFD container."""

MAX_IMAGE_PIXELS = 200_000_000
"""Largest image decoded, checked from its header before decoding (an A0 sheet scanned at
300 dpi is some 140,000,000 pixels)."""

MAX_PDF_PAGES = 20_000
"""Most pages read from one PDF."""

READ_SECONDS = 60.0
"""Wall-clock seconds the reading of one file may take. The slowest sound files seen here
took a tenth of it: a PDF of :data:`MAX_PDF_PAGES` pages walked in 1.3-5 s, an image of
:data:`MAX_IMAGE_PIXELS` pixels decoded in 3-13 s (a loaded two-core machine)."""

READ_ADDRESS_SPACE = 2 << 30
"""Address space (``RLIMIT_AS``) of the process reading one file, lowered to the limit it
inherits if that is lower. An image of :data:`MAX_IMAGE_PIXELS` pixels at 4 bytes decodes
in 0.8 GB, in 1.6 GB if it is a TIFF stored as one strip (libtiff's strip beside Pillow's
image); the interpreter itself takes some 50 MB."""

READ_START_SECONDS = 30.0
"""Seconds the reading process is given beyond :data:`READ_SECONDS` to answer (it imports
pypdf and Pillow when it starts) before it is taken for stuck, killed and replaced."""

MAX_REASON = 500
"""Most characters of one answer kept: a reader's message can quote the file's bytes."""

_STOP_SECONDS = 1.0
"""Seconds the reading process is given to exit once told to, before it is killed."""

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
            encrypted = ""
            if reader.is_encrypted:
                if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                    raise NotUsable("PDF is encrypted: it does not open without its password")
                encrypted = "; encrypted, opens without a password"
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
    return f"PDF parsed, {pages} pages{encrypted}{repairs.note()}"


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
}


# -- the reading process -----------------------------------------------------------------------


def _read_here(kind: str, path: Path, address_space: int) -> tuple[bool, str]:
    """Read ``path`` as ``kind`` in this process (a child forked to read it)."""
    # The pixel budget is checked from the header before decoding, naming the budget;
    # Pillow's own check (a warning, then an error at twice the limit) would come first.
    Image.MAX_IMAGE_PIXELS = None
    try:
        return True, _OPENERS[kind](path)
    except NotUsable as exc:
        return False, str(exc)
    except MemoryError:
        return False, f"reading it needs more than {address_space >> 20} MiB of memory"
    except OSError as exc:
        return False, f"unreadable: {exc}"


def _read_and_exit(
    kind: str,
    path: str,
    seconds: float,
    address_space: int,
    answer: int,
    inherited: tuple[int, ...],
) -> NoReturn:
    """The forked child: limit this process, read the file, write the answer to ``answer``
    as JSON ``[opened, text]``, and exit, whatever happens, without returning into the
    reading process's loop."""
    status = 1
    try:
        try:
            for descriptor in inherited:
                os.close(descriptor)
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                address_space = min(address_space, hard)
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
            # CPU time, should the reading process be gone and no longer watch the clock.
            cpu = math.ceil(seconds) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            opened, text = _read_here(kind, Path(path), address_space)
            status = 0
        except BaseException as exc:
            # Not the file's answer but a fault of the reading itself: its traceback goes
            # to stderr, and the file does not count as opened.
            traceback.print_exc()
            opened, text = False, f"reading failed: {type(exc).__name__}: {exc}"
        data = json.dumps([opened, text[:MAX_REASON]]).encode()
        while data:
            data = data[os.write(answer, data) :]
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(status)


def _wait_answer(descriptor: int, seconds: float) -> bytes | None:
    """What the reading child wrote before it ended, or None if it has not ended within
    ``seconds``."""
    deadline = time.monotonic() + seconds
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(math.ceil(left * 1000)):
            return None
        chunk = os.read(descriptor, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _read_in_child(
    kind: str, path: str, seconds: float, address_space: int, inherited: tuple[int, ...]
) -> tuple[bool, str]:
    """Fork a child to read ``path``; its answer, or why there is none."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _read_and_exit(kind, path, seconds, address_space, write_end, inherited)
    os.close(write_end)
    try:
        answer = _wait_answer(read_end, seconds)
    finally:
        os.close(read_end)
    if answer is None:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if answer is None:
        return False, f"reading did not finish within {seconds:g} s"
    try:
        opened, text = json.loads(answer)
        return bool(opened), str(text)
    except ValueError:
        pass  # no answer, or a part of one: the child's end says why
    if os.WIFSIGNALED(status):
        return False, f"its reader was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return False, f"its reader ended with status {os.waitstatus_to_exitcode(status)}, no answer"


def _serve(inbox: int, outbox: int) -> None:
    """The reading process: answer each ``(kind, path, seconds, address_space)`` from the
    parent by reading the file in a child forked for it; exit when the parent closes."""
    # An interrupt at the parent's terminal is the parent's to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = Connection(inbox, writable=False)
    answers = Connection(outbox, readable=False)
    while True:
        try:
            kind, path, seconds, address_space = requests.recv()
        except EOFError:
            return
        answers.send(_read_in_child(kind, path, seconds, address_space, (inbox, outbox)))


_SERVE_COMMAND = (
    "import sys; from archives.usability import _serve; _serve(int(sys.argv[1]), int(sys.argv[2]))"
)
"""What the reading process runs."""


class _Reader:
    """This process's reading process and the two ends of its pipes."""

    def __init__(self) -> None:
        child_in, self_out = os.pipe()
        self_in, child_out = os.pipe()
        # The reading process imports this module from wherever this process did.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVE_COMMAND, str(child_in), str(child_out)],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        except BaseException:
            os.close(self_in)
            os.close(self_out)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self.answers = Connection(self_in, writable=False)
        self.requests = Connection(self_out, readable=False)

    def send(self, request: tuple[str, str, float, int]) -> bool:
        """Pass ``request`` on; False if the reading process has gone."""
        try:
            self.requests.send(request)
        except OSError:
            return False
        return True

    def answer(self, seconds: float) -> tuple[bool, str]:
        """The answer to the request sent; if none comes within ``seconds``, or the reading
        process ends first, why not, and it is stopped (:attr:`stopped`)."""
        try:
            if self.answers.poll(seconds):
                opened, text = self.answers.recv()
                return bool(opened), str(text)
        except (EOFError, OSError):
            self.stop()
            return False, f"its reading process ended (status {self.process.returncode})"
        self.stop()
        return False, f"its reading process gave no answer within {seconds:g} s"

    @property
    def stopped(self) -> bool:
        """Whether this reading process is stopped (a new one is needed)."""
        return self.requests.closed

    def forget(self) -> None:
        """Close this process's ends of the pipes (in a forked child: the parent's reader
        stays the parent's)."""
        self.requests.close()
        self.answers.close()

    def stop(self) -> None:
        """Close the pipes (it exits when it reads their end) and wait for it; killed if it
        does not exit in time."""
        if self.stopped:
            return
        self.forget()
        try:
            self.process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_reader: _Reader | None = None
_reader_lock = threading.Lock()


def _forget_reader_after_fork() -> None:
    global _reader, _reader_lock
    _reader_lock = threading.Lock()
    if _reader is not None:
        _reader.forget()
        _reader = None


def _stop_reader() -> None:
    global _reader
    if _reader is not None:
        _reader.stop()
        _reader = None


os.register_at_fork(after_in_child=_forget_reader_after_fork)
atexit.register(_stop_reader)


def _read_elsewhere(kind: str, path: Path) -> str:
    """Read ``path`` as ``kind`` in a child of the reading process, started if need be (and
    started again if the one there has gone). One file at a time: threads of one process
    wait for each other."""
    global _reader
    request = (kind, str(path.absolute()), READ_SECONDS, READ_ADDRESS_SPACE)
    with _reader_lock:
        if _reader is None or _reader.stopped or not _reader.send(request):
            if _reader is not None:
                _reader.stop()
            _reader = _Reader()
            if not _reader.send(request):
                raise OSError("the reading process takes no request")
        opened, text = _reader.answer(READ_SECONDS + READ_START_SECONDS)
    if not opened:
        raise NotUsable(text)
    return text


def open_scanned(path: Path, identity: FormatIdentity, *, holds_nul: bool) -> str:
    """:func:`open_file` for a file already read once, knowing whether it holds a NUL byte:
    a text file is not read again."""
    if identity.format == "txt":
        if holds_nul:
            raise NotUsable("text holds NUL bytes")
        return "text read"
    return open_file(path, identity)


def open_file(path: Path, identity: FormatIdentity) -> str:
    """Open ``path`` as its identified format (text here, the rest in a child of the
    reading process: see the module's docstring); returns what was read, raises NotUsable,
    or OSError if no reading process can be started."""
    if identity.format == "txt":
        return _open_text(path)
    if identity.format not in _OPENERS:
        raise NotUsable(f"no reader for format {identity.format}")
    return _read_elsewhere(identity.format, path)


__all__ = ["NotUsable", "open_file", "open_scanned"]
