"""Files built to hurt the usability check (可用性), each crafted here and small on disk:
OFD containers holding zip bombs, two members of one name, entity expansion, document roots
outside the container, members encrypted or compressed by methods zipfile reads without a
bound.

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
from pathlib import Path

import pytest
from archive_samples import ofd_bytes

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_SPACE = 3 << 29
"""The child's address-space limit (1.5 GiB): far above what opening any of these files
needs when it is bounded, below what the unbounded readings would take."""
WALL_SECONDS = 20.0
"""Seconds a child is given for one file: several times what the slowest bounded case
takes here."""
MIB = 1 << 20


# -- building blocks --------------------------------------------------------------------------


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


CASES: dict[str, Case] = {
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
}


_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
from pathlib import Path
from archives import usability
from archives.formats import FormatIdentity
for name, value in json.loads(sys.argv[3]).items():
    setattr(usability, name, value)
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
