"""Files built to hurt the usability check (可用性): page trees with cycles, objects nested
100,000 deep, cross-reference sections that point outside the file or back at themselves,
streams that expand a thousandfold, encryption, zip bombs, two members of one name, entity
expansion, paths out of the container, images that declare more pixels than exist; and
packages of files that each stay within their own bound but together would hold an ingest
for hours. Each is crafted here and stays small on disk.

Each is opened in a child process under an address-space limit and a wall-clock limit, so
that a regression that would allocate gigabytes or never finish fails its test instead of
taking the test run down with it. The answer must be the check's own: what was read, or
``NotUsable`` naming the cause; any other exception fails the test."""

from __future__ import annotations

import functools
import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from archive_samples import make_sample_bag, ofd_bytes, pdf_bytes
from PIL import Image
from pypdf import PdfWriter

from archives.four_properties import Stage, Verdict, evidence_lines
from archives.ingest import check_submission

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_SPACE = 3 << 29
"""The child's address-space limit (1.5 GiB): far above what opening any of these files
needs when it is bounded, below what the unbounded readings would take."""
WALL_SECONDS = 20.0
"""Seconds a child is given for one file: several times what the slowest bounded case
takes here."""
MIB = 1 << 20


# -- building blocks --------------------------------------------------------------------------


def _adler32_run(adler: int, byte: int, count: int) -> int:
    """Adler-32 (RFC 1950) continued from ``adler`` over ``count`` copies of ``byte``, without
    making them."""
    a, b = adler & 0xFFFF, adler >> 16
    b = (b + count * a + byte * count * (count + 1) // 2) % 65521
    a = (a + count * byte) % 65521
    return (b << 16) | a


_RUN_CHUNK = 8 * MIB


@functools.cache
def _deflated_chunk(byte: int) -> bytes:
    """Raw deflate blocks of :data:`_RUN_CHUNK` copies of ``byte``, not final and ending on
    a byte boundary with no reference behind them: they may be repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes([byte]) * _RUN_CHUNK) + compressor.flush(zlib.Z_FULL_FLUSH)


def _raw_deflate(head: bytes, byte: int, chunks: int) -> bytes:
    """Raw deflate of ``head`` then ``chunks`` × :data:`_RUN_CHUNK` copies of ``byte``: the
    head in a stored block, the run from one compression repeated."""
    assert len(head) < 65536
    stored = b"\x00" + struct.pack("<HH", len(head), 0xFFFF ^ len(head)) + head
    return stored + _deflated_chunk(byte) * chunks + b"\x03\x00"


def _flate(head: bytes, byte: int = 0x20, chunks: int = 0) -> bytes:
    """A zlib stream (PDF ``/FlateDecode``) of ``head`` then a run of ``byte``."""
    adler = _adler32_run(zlib.adler32(head), byte, chunks * _RUN_CHUNK)
    return b"\x78\x9c" + _raw_deflate(head, byte, chunks) + struct.pack(">I", adler)


# -- PDF --------------------------------------------------------------------------------------


def _pages(count: int = 1, page: bytes = b"/MediaBox [0 0 200 200]") -> dict[int, bytes]:
    """A catalog (1), a page tree (2) and ``count`` pages (3...)."""
    kids = b" ".join(b"%d 0 R" % (3 + n) for n in range(count))
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
    }
    for n in range(count):
        objects[3 + n] = b"<< /Type /Page /Parent 2 0 R " + page + b" >>"
    return objects


def _pdf(objects: dict[int, bytes], *, trailer: bytes = b"", startxref: int | None = None) -> bytes:
    """A PDF of ``objects`` with a classic cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (
            b"%010d 00000 n \n" % offsets[number] if number in offsets else b"0000000000 65535 f \n"
        )
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\n" % (size, trailer)
    out += b"startxref\n%d\n%%%%EOF\n" % (at if startxref is None else startxref)
    return bytes(out)


def _pdf_streams(
    objects: dict[int, bytes],
    groups: list[list[int]],
    *,
    byte: int = 0x20,
    chunks: int = 0,
    length: bytes | None = None,
    filter_name: bytes = b"/FlateDecode",
) -> bytes:
    """A PDF whose objects listed in ``groups`` sit in object streams, one per group, each
    followed by ``chunks`` × 8 MiB of ``byte``; with a cross-reference stream. The object
    streams declare ``length`` as their /Length if given, and ``filter_name``."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    entries: dict[int, tuple[int, int, int]] = {}
    grouped = {number for group in groups for number in group}
    for number, body in sorted(objects.items()):
        if number not in grouped:
            entries[number] = (1, len(out), 0)
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    number = max(objects) + 1
    for group in groups:
        index = data = b""
        for position, member in enumerate(group):
            index += b"%d %d " % (member, len(data))
            data += objects[member] + b"\n"
            entries[member] = (2, number, position)
        encoded = _flate(index + data, byte, chunks)
        entries[number] = (1, len(out), 0)
        declared = length if length is not None else b"%d" % len(encoded)
        out += b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter %s /Length %s >>\n" % (
            number,
            len(group),
            len(index),
            filter_name,
            declared,
        )
        out += b"stream\n" + encoded + b"\nendstream\nendobj\n"
        number += 1
    entries[number] = (1, len(out), 0)
    rows = b"".join(struct.pack(">BIH", *entries.get(n, (0, 0, 0xFFFF))) for n in range(number + 1))
    table = zlib.compress(rows)
    at = len(out)
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R " % (number, number + 1)
    out += b"/Filter /FlateDecode /Length %d >>\nstream\n" % len(table)
    out += table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % at
    return bytes(out)


def _xref_at(data: bytes) -> int:
    """Where the last cross-reference table of ``data`` starts."""
    return data.rindex(b"\nxref\n") + 1


def _nested(opening: bytes, closing: bytes, depth: int) -> bytes:
    return opening * depth + closing * depth


def _kids_cycle() -> bytes:
    objects = _pages()
    objects[2] = b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>"
    objects[4] = b"<< /Type /Pages /Parent 2 0 R /Kids [3 0 R 2 0 R] /Count 1 >>"
    return _pdf(objects)


def _reference_loop() -> bytes:
    objects = _pages(page=b"/MediaBox 4 0 R")
    objects[4] = b"5 0 R"
    objects[5] = b"4 0 R"
    return _pdf(objects)


def _xref_outside() -> bytes:
    data = _pdf(_pages())
    at = _xref_at(data)
    table = data[at:].split(b"\n")
    return data.replace(table[5], b"9999999999 00000 n ")


def _xref_into_itself() -> bytes:
    data = _pdf(_pages())
    at = _xref_at(data)
    table = data[at:].split(b"\n")
    for line in table[3:6]:
        data = data.replace(line, b"%010d 00000 n " % at)
    return data


def _prev_loop() -> bytes:
    """Two cross-reference sections, each naming the other as /Prev."""
    first = _pdf(_pages(), trailer=b"/Prev 0000000000")
    first_at, second_at = _xref_at(first), len(first)
    first = first.replace(b"/Prev 0000000000", b"/Prev %010d" % second_at)
    second = b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 4 /Root 1 0 R /Prev %d >>\n" % (
        first_at
    )
    return first + second + b"startxref\n%d\n%%%%EOF\n" % second_at


def _prev_to_itself() -> bytes:
    """A cross-reference section naming itself as /Prev."""
    data = _pdf(_pages(), trailer=b"/Prev 0000000000")
    return data.replace(b"/Prev 0000000000", b"/Prev %010d" % _xref_at(data))


def _huge_length(objects: dict[int, bytes]) -> bytes:
    objects[3] = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>"
    objects[4] = b"<< /Length 99999999999999 >>\nstream\nBT ET\nendstream"
    return _pdf(objects)


def _content_bomb() -> bytes:
    """A page whose content stream expands from ~70 KB to 64 MiB."""
    objects = _pages(page=b"/MediaBox [0 0 200 200] /Contents 4 0 R")
    encoded = _flate(b"BT ET\n", 0x20, 8)
    objects[4] = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (
        len(encoded),
        encoded,
    )
    return _pdf(objects)


def _objects_in_streams(count: int, byte: int, chunks: int) -> bytes:
    """``count`` pages, each in an object stream of its own that expands by ``chunks`` ×
    8 MiB of ``byte`` after it."""
    objects = _pages(count)
    groups = [[1, 2]] + [[3 + n] for n in range(count)]
    return _pdf_streams(objects, groups, byte=byte, chunks=chunks)


def _object_stream_not_an_object_stream() -> bytes:
    """A cross-reference stream placing the page in object 4, which is no object stream."""
    data = _pdf_streams(_pages(), [[3]])
    return data.replace(b"/Type /ObjStm", b"/Type /NotStm")


def _encrypted(
    user_password: str, owner_password: str = "owner", algorithm: str | None = "AES-256"
) -> bytes:
    """One blank page, encrypted (``algorithm`` None: pypdf's default, RC4 of 128 bits)."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _unknown_security_handler() -> bytes:
    objects = _pages()
    objects[4] = b"<< /Filter /Vendor.Handler /V 4 /R 4 /Length 128 >>"
    return _pdf(objects, trailer=b"/Encrypt 4 0 R /ID [<00> <00>]")


def _count_10_million() -> bytes:
    objects = _pages(2)
    objects[2] = objects[2].replace(b"/Count 2", b"/Count 10000000")
    return _pdf(objects)


def _abbreviated_filter() -> bytes:
    """An object stream under the abbreviated filter name ``/Fl`` (inline images only)."""
    return _pdf_streams(_pages(), [[3]], filter_name=b"/Fl")


# -- OFD --------------------------------------------------------------------------------------

_OFD_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD">'
    b"<ofd:DocBody><ofd:DocInfo><ofd:DocID>x</ofd:DocID></ofd:DocInfo>"
    b"<ofd:DocRoot>%s</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
)
_DOCUMENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"><ofd:CommonData>'
    b"<ofd:MaxUnitID>1</ofd:MaxUnitID></ofd:CommonData></ofd:Document>"
)


def _ofd_xml(doc_root: bytes = b"Doc_0/Document.xml") -> bytes:
    return _OFD_XML % doc_root


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``members`` as zipfile writes it (deflated), names repeated as given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members:
            if name in bundle.NameToInfo:
                with pytest.warns(UserWarning, match="Duplicate name"):
                    bundle.writestr(name, data)
            else:
                bundle.writestr(name, data)
    return out.getvalue()


@dataclass(frozen=True)
class _Member:
    """One member of a zip written by hand, its headers saying what they are told to."""

    name: bytes
    data: bytes
    """The bytes stored (compressed already, for a deflated member)."""
    size: int
    """The uncompressed size declared."""
    crc: int = 0
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0


def _deflated(name: str, data: bytes) -> _Member:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = compressor.compress(data) + compressor.flush()
    return _Member(name.encode(), packed, len(data), zlib.crc32(data))


def _hand_zip(members: list[_Member]) -> bytes:
    out = bytearray()
    directory = bytearray()
    for member in members:
        offset = len(out)
        fields = (member.flags, member.method, 0, 0, member.crc, len(member.data), member.size)
        out += struct.pack("<4sH2H2HIII", b"PK\x03\x04", 20, *fields)
        out += struct.pack("<HH", len(member.name), 0) + member.name + member.data
        directory += struct.pack("<4s2H2H2HIII", b"PK\x01\x02", 20, 20, *fields)
        directory += struct.pack("<5HII", len(member.name), 0, 0, 0, 0, 0, offset) + member.name
    count = len(members)
    end = struct.pack("<4s4HIIH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(out), 0)
    return bytes(out + directory + end)


def _ofd_bomb() -> bytes:
    """OFD.xml declared as 1,000 bytes, holding 2 GiB (2 MB on disk)."""
    body = _raw_deflate(_ofd_xml(), 0, 256)
    return _hand_zip([_Member(b"OFD.xml", body, 1000), _deflated("Doc_0/Document.xml", _DOCUMENT)])


def _ofd_small_bomb() -> bytes:
    """OFD.xml declared as 1,000 bytes, holding 64 MiB."""
    body = _raw_deflate(_ofd_xml(), 0, 8)
    return _hand_zip([_Member(b"OFD.xml", body, 1000), _deflated("Doc_0/Document.xml", _DOCUMENT)])


def _ofd_twice() -> bytes:
    """Two members named OFD.xml: a reader taking the first finds no OFD."""
    return _zip(
        [("OFD.xml", b"<nothing/>"), ("Doc_0/Document.xml", _DOCUMENT), ("OFD.xml", _ofd_xml())]
    )


def _billion_laughs() -> bytes:
    entities = b"".join(
        b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n else b"lol") * 10)
        for n in range(10)
    )
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE ofd:OFD [' + entities + b"]>"
        b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016">&lol9;</ofd:OFD>'
    )
    return _zip([("OFD.xml", xml), ("Doc_0/Document.xml", _DOCUMENT)])


def _many_members(count: int) -> bytes:
    """OFD.xml, its document root and ``count`` empty members more, whose central-directory
    entries all point at the first local header (no local header of their own)."""
    data = bytearray(
        _hand_zip([_deflated("OFD.xml", _ofd_xml()), _deflated("Doc_0/Document.xml", _DOCUMENT)])
    )
    end = data.rindex(b"PK\x05\x06")
    (directory_at,) = struct.unpack("<I", data[end + 16 : end + 20])
    entry = struct.Struct("<4s2H2H2HIII5HII")
    extra = b"".join(
        entry.pack(b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0) + name
        for name in (b"m/%d" % n for n in range(count))
    )
    directory = bytes(data[directory_at:end]) + extra
    total = (count + 2) & 0xFFFF  # the 16-bit count of the end record; zipfile reads them all
    end_record = struct.pack(
        "<4s4HIIH", b"PK\x05\x06", 0, 0, total, total, len(directory), directory_at, 0
    )
    return bytes(data[:directory_at]) + directory + end_record


def _ofd_with(member: _Member) -> bytes:
    return _hand_zip([member, _deflated("Doc_0/Document.xml", _DOCUMENT)])


def _ofd_encrypted_member() -> bytes:
    plain = _deflated("OFD.xml", _ofd_xml())
    return _ofd_with(_Member(plain.name, plain.data, plain.size, plain.crc, flags=0x1))


def _ofd_deflate64() -> bytes:
    plain = _deflated("OFD.xml", _ofd_xml())
    return _ofd_with(_Member(plain.name, plain.data, plain.size, plain.crc, method=9))


def _ofd_broken_deflate() -> bytes:
    """OFD.xml's deflate data opening with a block of the reserved type 3."""
    data = _ofd_xml()
    return _ofd_with(_Member(b"OFD.xml", b"\x07" + bytes(40), len(data), zlib.crc32(data)))


# -- images -----------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, image_data: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", image_data)
        + _chunk(b"IEND", b"")
    )


def _saved(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def _png_idat_declared_4_gib() -> bytes:
    """A sound 8×8 PNG whose IDAT chunk declares 4 GiB."""
    data = bytearray(_saved(Image.new("RGB", (8, 8), (200, 10, 10)), "PNG"))
    at = data.index(b"IDAT") - 4
    data[at : at + 4] = struct.pack(">I", 0xFC000000)
    return bytes(data)


def _tiff(entries: list[tuple[int, int, int, int]], tail: bytes) -> bytes:
    """A little-endian TIFF, one IFD of ``entries`` (tag, type, count, value) at offset 8,
    ``tail`` after it."""
    ifd = struct.pack("<H", len(entries))
    for entry in sorted(entries):
        ifd += struct.pack("<HHII", *entry)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + tail


_TIFF_100 = [(256, 4, 1, 100), (257, 4, 1, 100), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]


def _tiff_huge_strip_count() -> bytes:
    strips = [(273, 4, 100_000_000, 200), (279, 4, 100_000_000, 300), (278, 4, 1, 1)]
    return _tiff(_TIFF_100 + strips, bytes(200))


def _tiff_ifd_loop() -> bytes:
    entries = [*_TIFF_100, (273, 4, 1, 200), (278, 4, 1, 100), (279, 4, 1, 10_000)]
    data = bytearray(_tiff(entries, bytes(10_300)))
    next_ifd = 10 + 12 * len(entries)
    data[next_ifd : next_ifd + 4] = struct.pack("<I", 8)  # the next IFD is this one
    return bytes(data)


def _frames(kind: str, count: int) -> bytes:
    frames = [Image.new("L", (8, 8), n % 256) for n in range(count)]
    return _saved(frames[0], kind, save_all=True, append_images=frames[1:])


def _jpeg() -> bytes:
    return _saved(Image.new("RGB", (300, 300), (10, 200, 30)), "JPEG")


# -- the cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A hostile file and what the check must answer."""

    build: Callable[[], bytes]
    format: str
    """The format it is opened as (what identification makes of it)."""
    opens: bool | None
    """Whether the check finds it opens (None: either, the words say why)."""
    words: tuple[str, ...]
    """Each appears in the answer (case aside)."""
    settings: dict[str, float | int] = field(default_factory=dict)
    """Module constants of ``archives.usability`` set in the child before opening."""


_NO_ENCRYPTION = (
    "PDF is encrypted (with an empty user password): encryption is not allowed in an archived file"
)


CASES: dict[str, Case] = {
    # PDF
    "pdf-kids-cycle": Case(_kids_cycle, "pdf", False, ("cyclic page references",)),
    "pdf-arrays-100000-deep": Case(
        lambda: _pdf(_pages(page=b"/MediaBox [0 0 200 200] /X " + _nested(b"[", b"]", 100_000))),
        "pdf",
        False,
        ("RecursionError",),
    ),
    # pypdf cuts the nesting where Python's recursion limit falls and reads around it: the
    # answer depends on where that is, and says so.
    "pdf-dicts-100000-deep": Case(
        lambda: _pdf(
            _pages(page=b"/MediaBox [0 0 200 200] /X " + _nested(b"<< /A ", b">>", 100_000))
        ),
        "pdf",
        None,
        ("repaired",),
    ),
    "pdf-reference-loop": Case(_reference_loop, "pdf", False, ("does not parse",)),
    "pdf-xref-entry-outside-the-file": Case(_xref_outside, "pdf", True, ("1 pages", "repaired")),
    "pdf-xref-entries-into-the-xref": Case(_xref_into_itself, "pdf", True, ("1 pages", "repaired")),
    "pdf-startxref-beyond-any-offset": Case(
        lambda: _pdf(_pages(), startxref=10**20), "pdf", False, ("does not parse",)
    ),
    "pdf-prev-loop": Case(_prev_loop, "pdf", True, ("1 pages",)),
    "pdf-prev-to-itself": Case(_prev_to_itself, "pdf", True, ("1 pages",)),
    "pdf-content-stream-huge-length": Case(
        lambda: _huge_length(_pages()), "pdf", True, ("1 pages",)
    ),
    "pdf-object-stream-huge-length": Case(
        lambda: _pdf_streams(_pages(), [[1, 2, 3]], length=b"99999999999"),
        "pdf",
        False,
        ("does not parse",),
    ),
    # Walking the page tree never decodes a content stream: the bomb stays packed.
    "pdf-content-stream-1000x": Case(_content_bomb, "pdf", True, ("1 pages",)),
    # pypdf decodes the object streams the page tree is in, each within 75,000,000 bytes.
    "pdf-object-stream-over-pypdf-bound": Case(
        lambda: _pdf_streams(_pages(), [[1, 2, 3]], chunks=9), "pdf", False, ("Limit reached",)
    ),
    "pdf-object-streams-of-white-space": Case(
        lambda: _objects_in_streams(4, 0x20, 8),
        "pdf",
        False,
        ("did not finish within 2 s",),
        {"READ_SECONDS": 2.0},
    ),
    # pypdf keeps each object stream it decodes: ten of 64 MiB, under a 512 MiB bound.
    "pdf-object-streams-beyond-memory": Case(
        lambda: _objects_in_streams(10, 0x30, 8),
        "pdf",
        False,
        ("needs more than 512 MiB of memory",),
        {"READ_ADDRESS_SPACE": 512 * MIB},
    ),
    "pdf-not-an-object-stream": Case(
        _object_stream_not_an_object_stream, "pdf", False, ("does not parse",)
    ),
    "pdf-abbreviated-filter": Case(_abbreviated_filter, "pdf", False, ("/Fl",)),
    "pdf-count-10-million": Case(
        _count_10_million, "pdf", False, ("/Count", "10000000", "2 pages")
    ),
    "pdf-encrypted": Case(lambda: _encrypted("secret"), "pdf", False, ("encrypted", "password")),
    # It opens without a password, but an archived file must not be encrypted at all
    # (PDF/A forbids it; its permissions can forbid printing or copying).
    "pdf-encrypted-empty-password": Case(lambda: _encrypted(""), "pdf", False, (_NO_ENCRYPTION,)),
    "pdf-encrypted-empty-password-rc4": Case(
        lambda: _encrypted("", owner_password="x", algorithm=None),
        "pdf",
        False,
        (_NO_ENCRYPTION,),
    ),
    "pdf-unknown-security-handler": Case(
        _unknown_security_handler, "pdf", False, ("encryption handler",)
    ),
    "pdf-sound": Case(pdf_bytes, "pdf", True, ("PDF parsed, 1 pages",)),
    # OFD
    "ofd-member-beyond-its-size": Case(_ofd_small_bomb, "ofd", False, ("OFD.xml", "CRC")),
    "ofd-member-2-gib-beyond-its-size": Case(_ofd_bomb, "ofd", False, ("OFD.xml", "CRC")),
    "ofd-two-members-one-name": Case(_ofd_twice, "ofd", False, ("two members named OFD.xml",)),
    "ofd-billion-laughs": Case(_billion_laughs, "ofd", False, ("EntitiesForbidden",)),
    "ofd-doc-root-up": Case(
        lambda: _zip(
            [
                ("OFD.xml", _ofd_xml(b"../../Doc_0/Document.xml")),
                ("../../Doc_0/Document.xml", _DOCUMENT),
            ]
        ),
        "ofd",
        False,
        ("../../Doc_0/Document.xml", "outside the container"),
    ),
    "ofd-doc-root-absolute": Case(
        lambda: _zip(
            [("OFD.xml", _ofd_xml(b"/Doc_0/Document.xml")), ("Doc_0/Document.xml", _DOCUMENT)]
        ),
        "ofd",
        True,
        ("1 document root",),
    ),
    "ofd-doc-root-is-ofd-xml": Case(
        lambda: _zip([("OFD.xml", _ofd_xml(b"OFD.xml"))]),
        "ofd",
        False,
        ("not ofd:Document",),
    ),
    "ofd-100000-members": Case(
        lambda: _many_members(100_000), "ofd", False, ("100002 members, over 10000",)
    ),
    "ofd-encrypted-member": Case(_ofd_encrypted_member, "ofd", False, ("OFD.xml", "encrypted")),
    "ofd-deflate64-member": Case(_ofd_deflate64, "ofd", False, ("OFD.xml", "method 9")),
    "ofd-broken-deflate": Case(_ofd_broken_deflate, "ofd", False, ("OFD.xml", "invalid block")),
    "ofd-sound": Case(ofd_bytes, "ofd", True, ("OFD container",)),
    # Images
    "png-100000x100000": Case(
        lambda: _png(100_000, 100_000, zlib.compress(bytes(1000))),
        "png",
        False,
        ("100000x100000", "200000000"),
    ),
    # Pillow stops inflating once the image is full: 192 MiB of IDAT for one pixel.
    "png-idat-beyond-the-image": Case(
        lambda: _png(1, 1, _flate(bytes(4), 0, 24)), "png", True, ("1x1",)
    ),
    "png-idat-declared-4-gib": Case(_png_idat_declared_4_gib, "png", False, ("memory",)),
    "jpeg-truncated": Case(lambda: _jpeg()[: len(_jpeg()) // 2], "jpeg", False, ("truncated",)),
    "tiff-100-million-strips": Case(_tiff_huge_strip_count, "tiff", False, ("does not decode",)),
    "tiff-ifd-loop": Case(_tiff_ifd_loop, "tiff", True, ("100x100",)),
    "tiff-300-frames": Case(lambda: _frames("TIFF", 300), "tiff", True, ("8x8",)),
    "png-2000-frames": Case(lambda: _frames("PNG", 2000), "png", True, ("8x8",)),
    "gif-2000-frames": Case(
        lambda: _frames("GIF", 2000), "gif", False, ("no reader for format gif",)
    ),
}


_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
from pathlib import Path
from archives import reading_process, usability
from archives.formats import FormatIdentity
for name, value in json.loads(sys.argv[3]).items():
    setattr(reading_process, name, value)
try:
    text = usability.open_file(Path(sys.argv[1]), FormatIdentity(sys.argv[2], "", "given"))
except usability.NotUsable as exc:
    print(json.dumps([False, str(exc)]))
else:
    print(json.dumps([True, text]))
"""


def _run_child(script: str, *arguments: str, seconds: float = WALL_SECONDS) -> str:
    """Run ``script`` in a child process under :data:`ADDRESS_SPACE` and ``seconds``; what
    it printed. The child failing, or not answering in time, fails the test."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", script.format(space=ADDRESS_SPACE), *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {seconds} s from a child reading {arguments[0]}")
    assert done.returncode == 0, f"the child failed\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_file_gets_the_check_s_own_answer(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    path = tmp_path / f"{name}.{case.format}"
    path.write_bytes(case.build())
    assert path.stat().st_size < 6 * MIB
    opened, text = json.loads(_run_child(_CHILD, str(path), case.format, json.dumps(case.settings)))
    assert case.opens is None or opened is case.opens, text
    for words in case.words:
        assert words.lower() in text.lower(), text


_BAG_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
from datetime import UTC, datetime
from pathlib import Path
from archives.bag_reader import read_bag
from archives.four_properties import Stage, check_package
reading = read_bag(Path(sys.argv[1]), processes=int(sys.argv[2]))
report = check_package(reading, stage=Stage.INGEST, now=datetime(2026, 6, 1, tzinfo=UTC))
item = report.item("usability.opens")
print(json.dumps([item.verdict.value, list(item.evidence)]))
"""

_IN_A_BAG = (
    "pdf-not-an-object-stream",
    "pdf-startxref-beyond-any-offset",
    "pdf-abbreviated-filter",
    "pdf-encrypted",
    "pdf-encrypted-empty-password-rc4",
    "pdf-unknown-security-handler",
    "pdf-count-10-million",
    "ofd-two-members-one-name",
    "ofd-encrypted-member",
    "ofd-deflate64-member",
    "ofd-broken-deflate",
    "png-idat-declared-4-gib",
    "jpeg-truncated",
)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_package_of_hostile_files_is_reported_not_raised(tmp_path: Path, processes: int) -> None:
    """Through the ingest's own path (identified by content, opened by the worker that
    hashed the file, on one process or across the pool): the usability item FAILs naming
    every hostile file, and the check returns."""
    files = {f"{name}.bin": CASES[name].build() for name in _IN_A_BAG}
    files.update({f"{n:03d}.txt": f"第{n}件\n".encode() for n in range(64)})
    bag = make_sample_bag(tmp_path / "bag", files, 件数=str(len(files)))
    verdict, evidence = json.loads(
        _run_child(_BAG_CHILD, str(bag), str(processes), seconds=WALL_SECONDS * 2)
    )
    assert verdict == "FAIL"
    assert sorted(line.split(":", 1)[0] for line in evidence) == sorted(
        f"data/{name}.bin" for name in _IN_A_BAG
    ), evidence


_AGAIN_CHILD = """
import json, os, resource, signal, sys
resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
from pathlib import Path
from archives import reading_process, usability
from archives.formats import FormatIdentity
pdf = FormatIdentity("pdf", "", "given")
def answer(path):
    try:
        return usability.open_file(Path(path), pdf)
    except usability.NotUsable as exc:
        return "NotUsable: " + str(exc)
answers = [answer(sys.argv[1])]
process = reading_process._reader.process
os.kill(process.pid, signal.SIGKILL)
process.wait()
answers.append(answer(sys.argv[1]))
reading_process.READ_SECONDS = 1.0
answers.append(answer(sys.argv[2]))
answers.append(answer(sys.argv[1]))
print(json.dumps(answers))
"""


def test_the_reading_process_is_started_again_when_it_has_gone(tmp_path: Path) -> None:
    """A reading process that has gone (killed here) is replaced for the next file; a file
    that takes too long costs its own child, and the next file opens."""
    sound, slow = tmp_path / "sound.pdf", tmp_path / "slow.pdf"
    sound.write_bytes(pdf_bytes())
    slow.write_bytes(_objects_in_streams(2, 0x20, 8))
    answers = json.loads(_run_child(_AGAIN_CHILD, str(sound), str(slow)))
    assert answers == [
        "PDF parsed, 1 pages",
        "PDF parsed, 1 pages",
        "NotUsable: reading did not finish within 1 s",
        "PDF parsed, 1 pages",
    ]


# -- the reading budget of a package ----------------------------------------------------------

_BUDGET = 5.0
"""The package's reading budget in these tests (seconds)."""
_BUDGET_MARGIN = 10.0
"""Seconds beyond the budget a package's check may take: the pool and the reading processes
start, the files are hashed."""
_SLOW_FILES = 4
"""Files in the package that each take some 30 s to read (8 s per 64 MiB of white space)."""

_BUDGET_CHILD = """
import json, resource, sys, tempfile, time
resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
from datetime import UTC, datetime
from pathlib import Path
from archives import reading_process
from archives.four_properties import Stage
from archives.ingest import check_submission
reading_process.READ_BUDGET_SECONDS = float(sys.argv[3])
started = time.monotonic()
with tempfile.TemporaryDirectory() as scratch:
    reading, report = check_submission(
        Path(sys.argv[1]),
        Path(scratch),
        stage=Stage.INGEST,
        now=datetime(2026, 6, 1, tzinfo=UTC),
        processes=int(sys.argv[2]),
    )
elapsed = time.monotonic() - started
item = report.item("usability.opens")
opened = {{f.path: f.opened for f in reading.payload}}
print(json.dumps([elapsed, item.verdict.value, list(item.evidence), report.verdict.value, opened]))
"""


def _budget_bag(directory: Path, *, slow: int) -> Path:
    """A package of sound files of each format read in the reading process, 64 text files
    (enough for the pool to be used) and ``slow`` PDFs that each take some 30 s to read."""
    files = {
        "0-sound.pdf": pdf_bytes(),
        "0-sound.ofd": ofd_bytes(),
        "0-sound.png": _saved(Image.new("RGB", (8, 8), (200, 10, 10)), "PNG"),
    }
    files.update({f"1-{n:03d}.txt": f"第{n}件\n".encode() for n in range(64)})
    files.update({f"9-slow-{n}.pdf": _objects_in_streams(4, 0x20, 8) for n in range(slow)})
    return make_sample_bag(directory, files, 件数=str(len(files)))


@pytest.mark.parametrize("processes", [1, 2])
def test_a_package_s_reading_stops_when_its_budget_is_spent(tmp_path: Path, processes: int) -> None:
    """Files that each stay under their own bound but together would hold the ingest for
    minutes: the check ends about when the package's budget does (on one process or across
    the pool), the files being read then are cut there, those after them are not read, and
    each of them is NOT_CHECKED, saying why; so is the usability item, never PASS."""
    bag = _budget_bag(tmp_path / "bag", slow=_SLOW_FILES)
    elapsed, verdict, evidence, report_verdict, opened = json.loads(
        _run_child(
            _BUDGET_CHILD,
            str(bag),
            str(processes),
            str(_BUDGET),
            seconds=_BUDGET + _BUDGET_MARGIN * 3,
        )
    )
    assert elapsed < _BUDGET + _BUDGET_MARGIN, elapsed
    assert verdict == "NOT_CHECKED", evidence
    assert report_verdict == "NOT_CHECKED"
    spent = f"the package's reading budget of {_BUDGET:g} s was spent"
    slow = [f"data/9-slow-{n}.pdf" for n in range(_SLOW_FILES)]
    for path in slow:
        assert opened[path][0] is None, opened[path]
        assert spent in opened[path][1], opened[path]
        assert any(line.startswith(f"{path}: ") and spent in line for line in evidence), evidence
    # At most one file per process was being read when the budget ran out.
    assert sum(opened[path][1].startswith("not read:") for path in slow) >= (
        _SLOW_FILES - processes
    ), opened
    assert all(state[0] is True for path, state in opened.items() if path not in slow), opened


def test_a_package_read_within_its_budget_is_unaffected(tmp_path: Path, now: datetime) -> None:
    """The budget is passed from where the ingest is called; a package read within it opens
    as it would without one."""
    bag = _budget_bag(tmp_path / "bag", slow=0)
    reading, report = check_submission(
        bag, tmp_path / "scratch", stage=Stage.INGEST, now=now, processes=2, read_budget=_BUDGET
    )
    item = report.item("usability.opens")
    assert item.verdict is Verdict.PASS, item
    assert all(f.opened is not None and f.opened[0] is True for f in reading.payload)
    assert item.evidence == evidence_lines([f"{f.path}: {f.opened[1]}" for f in reading.payload])
    assert item.evidence[:3] == (
        "data/0-sound.ofd: OFD container, OFD.xml and 1 document root(s) parsed",
        "data/0-sound.pdf: PDF parsed, 1 pages",
        "data/0-sound.png: PNG decoded, 8x8",
    )


_CUT_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
from pathlib import Path
from archives import reading_process, usability
from archives.formats import FormatIdentity
pdf = FormatIdentity("pdf", "", "given")
def answer(path, budget):
    started = time.monotonic()
    try:
        text = "opened: " + usability.open_file(Path(path), pdf, budget=budget)
    except usability.BudgetSpent as exc:
        text = "BudgetSpent: " + str(exc)
    except usability.NotUsable as exc:
        text = "NotUsable: " + str(exc)
    return [text, time.monotonic() - started]
answers = [answer(sys.argv[1], usability.ReadingBudget.start(2.0))]
answers.append(answer(sys.argv[2], usability.ReadingBudget.start(0.0)))
answers.append(answer(sys.argv[2], usability.ReadingBudget.start(30.0)))
reading_process.READ_SECONDS = 1.0
answers.append(answer(sys.argv[1], usability.ReadingBudget.start(30.0)))
print(json.dumps(answers))
"""


def test_a_file_being_read_when_the_budget_runs_out_is_cut_there(tmp_path: Path) -> None:
    """A file's bound is the least of its own and what is left of the package's budget: cut
    by the budget, it is not checked; past its own bound within the budget, it does not
    open. Once the budget is spent, no file is read."""
    sound, slow = tmp_path / "sound.pdf", tmp_path / "slow.pdf"
    sound.write_bytes(pdf_bytes())
    slow.write_bytes(_objects_in_streams(4, 0x20, 8))
    (cut, cut_took), (unread, unread_took), (read, _), (own, own_took) = json.loads(
        _run_child(_CUT_CHILD, str(slow), str(sound))
    )
    assert cut == (
        "BudgetSpent: not read to its end: the package's reading budget of 2 s was spent"
    ), cut
    assert 1.9 < cut_took < 2.0 + _BUDGET_MARGIN, cut_took
    assert unread == "BudgetSpent: not read: the package's reading budget of 0 s was spent"
    assert unread_took < 0.5, unread_took
    assert read == "opened: PDF parsed, 1 pages"
    assert own == "NotUsable: reading did not finish within 1 s", own
    assert own_took < 1.0 + _BUDGET_MARGIN, own_took
