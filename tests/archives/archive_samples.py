"""Sample bags for the archive tests, made by the Library of Congress ``bagit`` tool
(``bagit.make_bag``), with files of every allowed format, and the ways to tamper with them."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import bagit
from PIL import Image
from pypdf import PdfWriter

SAMPLES = Path(__file__).parent / "samples.json"


def description(**overrides: str) -> dict[str, str]:
    """A valid archival description (tests/archives/samples.json), with overrides."""
    info: dict[str, str] = dict(json.loads(SAMPLES.read_text(encoding="utf-8"))["description"])
    info.update(overrides)
    return info


def pdf_bytes() -> bytes:
    """A one-page PDF."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_bytes() -> bytes:
    """A small PNG."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def ofd_bytes(ofd_xml: bytes | None = None) -> bytes:
    """A minimal OFD container (GB/T 33190): OFD.xml naming Doc_0/Document.xml."""
    ofd_xml = ofd_xml or (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD">'
        b"<ofd:DocBody><ofd:DocInfo><ofd:DocID>x</ofd:DocID></ofd:DocInfo>"
        b"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    document = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"><ofd:CommonData>'
        b"<ofd:MaxUnitID>1</ofd:MaxUnitID></ofd:CommonData></ofd:Document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        bundle.writestr("OFD.xml", ofd_xml)
        bundle.writestr("Doc_0/Document.xml", document)
    return out.getvalue()


def standard_files() -> dict[str, bytes]:
    """One file per common format: the payload of the sample bag (件数 4)."""
    return {
        "0001.pdf": pdf_bytes(),
        "0002.ofd": ofd_bytes(),
        "0003.png": png_bytes(),
        "0004.txt": "关于印发某区档案工作要点的通知\n".encode(),
    }


def make_sample_bag(
    directory: Path,
    files: dict[str, bytes] | None = None,
    *,
    checksums: tuple[str, ...] = ("sha256", "sha512"),
    tag_files: dict[str, str] | None = None,
    **info: str,
) -> Path:
    """Write ``files`` into ``directory`` and make it a bag with bagit (its default
    checksums unless told), bag-info from :func:`description` with ``info`` overrides;
    ``tag_files`` are written beside bagit.txt before bagging, so the tag manifests list
    them."""
    directory.mkdir(parents=True)
    for name, data in (files if files is not None else standard_files()).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    bag = bagit.make_bag(str(directory), description(**info), checksums=list(checksums))
    for name, text in (tag_files or {}).items():
        (directory / name).write_text(text, encoding="utf-8")
    if tag_files:
        bag.save(manifests=False)
    return directory


def _flip_byte(bag: Path) -> None:
    target = bag / "data" / "0004.txt"
    data = bytearray(target.read_bytes())
    data[3] ^= 0x01
    target.write_bytes(bytes(data))


def _truncate(bag: Path) -> None:
    target = bag / "data" / "0001.pdf"
    target.write_bytes(target.read_bytes()[:-10])


def _delete(bag: Path) -> None:
    (bag / "data" / "0003.png").unlink()


def _add(bag: Path) -> None:
    (bag / "data" / "extra.txt").write_text("未登记的文件\n", encoding="utf-8")


def _rename(bag: Path) -> None:
    (bag / "data" / "0003.png").rename(bag / "data" / "0003-renamed.png")


def _edit_bag_info(bag: Path) -> None:
    path = bag / "bag-info.txt"
    path.write_text(
        path.read_text(encoding="utf-8").replace("保管期限: 永久", "保管期限: 10年"),
        encoding="utf-8",
    )


def _wrong_oxum(bag: Path) -> None:
    path = bag / "bag-info.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    fixed = ["Payload-Oxum: 1.4" if line.startswith("Payload-Oxum:") else line for line in lines]
    path.write_text("\n".join(fixed) + "\n", encoding="utf-8")


def _drop_manifest_line(bag: Path) -> None:
    for manifest in bag.glob("manifest-*.txt"):
        lines = manifest.read_text(encoding="utf-8").splitlines()
        manifest.write_text(
            "".join(line + "\n" for line in lines if not line.endswith("0002.ofd")),
            encoding="utf-8",
        )


TAMPERINGS: dict[str, Callable[[Path], None]] = {
    "flipped_byte": _flip_byte,
    "truncated": _truncate,
    "deleted": _delete,
    "added": _add,
    "renamed": _rename,
    "bag_info_edited": _edit_bag_info,
    "payload_oxum_wrong": _wrong_oxum,
    "manifest_line_removed": _drop_manifest_line,
}
"""Each way a received bag may have been changed after bagging."""
