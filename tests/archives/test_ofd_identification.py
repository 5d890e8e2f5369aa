"""Telling an OFD container from another zip without trusting the zip: a member name
flagged UTF-8 that is not, and a central directory listing more members than an OFD may
hold, are identified as a zip (the usability check then fails it as a format not allowed)
instead of raising out of the ingest or listing a million names first."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from archives import formats
from archives.formats import OFD_IDENTIFY_MEMBERS, identify


def _zip(members: dict[str, bytes], comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.comment = comment
    return buffer.getvalue()


def test_an_ofd_container_is_identified_with_or_without_a_comment(tmp_path: Path) -> None:
    members = {"OFD.xml": b"<ofd:OFD/>", "Doc_0/Document.xml": b"<ofd:Document/>"}
    for comment in (b"", b"x" * 65_535):
        path = tmp_path / "a.ofd"
        path.write_bytes(_zip(members, comment))
        assert identify(path).format == "ofd"


def test_a_name_flagged_utf8_that_is_not_is_a_zip_not_an_escape(tmp_path: Path) -> None:
    data = bytearray(_zip({"OFD.xml": b"<ofd:OFD/>"}))
    directory = data.find(b"PK\x01\x02")
    flags = int.from_bytes(data[directory + 8 : directory + 10], "little") | 0x800
    data[directory + 8 : directory + 10] = flags.to_bytes(2, "little")
    name = data.find(b"OFD.xml", directory)
    data[name : name + 3] = b"\xff\xfe\xfd"
    path = tmp_path / "bad-name.ofd"
    path.write_bytes(bytes(data))
    assert identify(path).format == "zip"


def test_a_zip_listing_more_members_than_an_ofd_may_is_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = {f"m{index}": b"" for index in range(OFD_IDENTIFY_MEMBERS + 1)}
    members["OFD.xml"] = b"<ofd:OFD/>"
    path = tmp_path / "many.ofd"
    path.write_bytes(_zip(members))

    def listed(*args: object, **kwargs: object) -> None:
        raise AssertionError("the central directory was listed")

    monkeypatch.setattr(formats.zipfile, "ZipFile", listed)
    assert identify(path).format == "zip"
