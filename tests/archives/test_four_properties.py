"""Each 四性 item passes on a sound package and FAILs for its own real reason; items that
cannot be checked say NOT_CHECKED, never PASS."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from archive_samples import (
    SAMPLES,
    description,
    make_sample_bag,
    ofd_bytes,
    pdf_bytes,
    standard_files,
)

from archives.bag_reader import read_bag
from archives.four_properties import (
    SIGNER_KEY_FIELD,
    FourPropertyReport,
    Stage,
    Verdict,
    check_package,
)
from archives.virus_scan import ClamdScanner
from chain.crypto import PrivateKey

ITEMS_CSV = json.loads(SAMPLES.read_text(encoding="utf-8"))["items_csv"]


def _check(bag: Path, now: datetime, **kwargs: object) -> FourPropertyReport:
    return check_package(read_bag(bag), stage=Stage.INGEST, now=now, **kwargs)  # type: ignore[arg-type]


def test_a_sound_package_passes_every_checkable_item(tmp_path: Path, now: datetime) -> None:
    bag = make_sample_bag(tmp_path / "bag", tag_files={"items.csv": ITEMS_CSV}, 件数="3")
    report = _check(bag, now)
    verdicts = {item.code: item.verdict for item in report.items}
    assert verdicts.pop("authenticity.signatures") is Verdict.NOT_CHECKED
    assert verdicts.pop("security.virus") is Verdict.NOT_CHECKED
    assert set(verdicts.values()) == {Verdict.PASS}, report.to_json()
    assert report.verdict is Verdict.NOT_CHECKED
    opened = "\n".join(report.item("usability.opens").evidence)
    assert "PDF parsed" in opened and "OFD container" in opened and "PNG decoded" in opened


def _fails(report: FourPropertyReport, code: str, words: str) -> None:
    item = report.item(code)
    assert item.verdict is Verdict.FAIL, item
    assert any(words in line for line in item.evidence), item.evidence


def test_authenticity_digests_fail_on_a_changed_file(tmp_path: Path, now: datetime) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    path = bag / "data" / "0004.txt"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    _fails(_check(bag, now), "authenticity.digests", "data/0004.txt")


def test_signatures_verify_or_fail(tmp_path: Path, now: datetime) -> None:
    key = PrivateKey.generate()
    files = standard_files()
    files["0004.txt.sm2sig"] = base64.b64encode(key.sign(files["0004.txt"]))
    other = base64.b64encode(PrivateKey.generate().sign(files["0001.pdf"]))
    files["0001.pdf.sm2sig"] = other
    info = {SIGNER_KEY_FIELD: key.public_key.to_bytes().hex()}
    report = _check(make_sample_bag(tmp_path / "bag", files, **info), now)
    _fails(report, "authenticity.signatures", "data/0001.pdf: the SM2 signature")
    assert (
        "data/0004.txt: SM2 signature verifies" in report.item("authenticity.signatures").evidence
    )
    del files["0001.pdf.sm2sig"]
    good = _check(make_sample_bag(tmp_path / "good", files, **info), now)
    assert good.item("authenticity.signatures").verdict is Verdict.PASS


def test_metadata_out_of_range_fails(tmp_path: Path, now: datetime) -> None:
    report = _check(make_sample_bag(tmp_path / "bag", 形成时间="2031-01-01"), now)
    _fails(report, "authenticity.metadata_ranges", "in the future")
    report = _check(make_sample_bag(tmp_path / "bad", 保管期限="25年"), now)
    assert report.item("authenticity.metadata_ranges").verdict is Verdict.FAIL


def test_metadata_disagreeing_with_content_fails(tmp_path: Path, now: datetime) -> None:
    report = _check(make_sample_bag(tmp_path / "bag", 件数="5"), now)
    _fails(report, "authenticity.metadata_content", "件数 5 but 4 payload documents")
    late = ITEMS_CSV.replace("2023-04-01", "2024-04-01")
    report = _check(
        make_sample_bag(tmp_path / "dates", tag_files={"items.csv": late}, 件数="3"), now
    )
    _fails(report, "authenticity.metadata_content", "outside the package's 2023")


def test_counts_fail_on_a_wrong_payload_oxum(tmp_path: Path, now: datetime) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    info = bag / "bag-info.txt"
    text = info.read_text(encoding="utf-8")
    oxum = next(line for line in text.splitlines() if line.startswith("Payload-Oxum"))
    info.write_text(text.replace(oxum, "Payload-Oxum: 12.4"), encoding="utf-8")
    report = _check(bag, now)
    item = report.item("integrity.counts")
    assert item.verdict is Verdict.FAIL and "Payload-Oxum" in " ".join(item.evidence)


def test_required_fields_fail_when_one_is_missing(tmp_path: Path, now: datetime) -> None:
    bag = make_sample_bag(tmp_path / "bag", 题名="")
    report = _check(bag, now)
    _fails(report, "integrity.required_fields", "题名 is missing")


def test_numbering_fails_on_a_gap(tmp_path: Path, now: datetime) -> None:
    gap = ITEMS_CSV.replace("BGS-0003", "BGS-0005")
    report = _check(make_sample_bag(tmp_path / "bag", tag_files={"items.csv": gap}, 件数="3"), now)
    _fails(report, "integrity.numbering", "items 3, 4 missing between 1 and 5")


def test_attachments_fail_when_a_referenced_file_is_absent(tmp_path: Path, now: datetime) -> None:
    absent = ITEMS_CSV.replace("data/0003.png", "data/0003-scan.png")
    report = _check(
        make_sample_bag(tmp_path / "bag", tag_files={"items.csv": absent}, 件数="3"), now
    )
    _fails(report, "integrity.attachments", "data/0003-scan.png is referenced but absent")


def test_format_is_identified_by_content_not_extension(tmp_path: Path, now: datetime) -> None:
    files = standard_files()
    files["0004.txt"] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200)
    report = _check(make_sample_bag(tmp_path / "bag", files), now)
    _fails(report, "usability.formats", "data/0004.txt")
    files = standard_files()
    files["renamed.pdf"] = files.pop("0003.png")
    report = _check(make_sample_bag(tmp_path / "renamed", files), now)
    assert report.item("usability.formats").verdict is Verdict.PASS
    assert "png" in report.item("usability.formats").evidence[0]


def test_files_that_do_not_open_fail(tmp_path: Path, now: datetime) -> None:
    cases = {
        "pdf": b"%PDF-1.7\n" + os.urandom(300),
        "png": b"\x89PNG\r\n\x1a\n" + os.urandom(300),
        "ofd": ofd_bytes(b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'><unclosed>"),
    }
    for name, data in cases.items():
        files = standard_files()
        files[f"broken.{name}"] = data
        report = _check(make_sample_bag(tmp_path / name, files, 件数="5"), now)
        _fails(report, "usability.opens", f"data/broken.{name}")


def test_pdf_a_is_told_from_pdf(tmp_path: Path, now: datetime) -> None:
    files = {"a.pdf": pdf_bytes().replace(b"%%EOF", b"% pdfaid:part 1\n%%EOF")}
    report = _check(make_sample_bag(tmp_path / "bag", files, 件数="1"), now)
    assert "pdf/a" in report.item("usability.formats").evidence[0]


class _Clamd:
    """A ClamAV-protocol daemon on a real UNIX socket: answers INSTREAM, FOUND for any
    stream holding the EICAR test string."""

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                stream = connection.makefile("rb")
                assert stream.read(10) == b"zINSTREAM\x00"
                data = b""
                while (size := struct.unpack(">I", stream.read(4))[0]) != 0:
                    data += stream.read(size)
                infected = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in data
                connection.sendall(
                    b"stream: Eicar-Signature FOUND\x00" if infected else b"stream: OK\x00"
                )


@pytest.fixture
def clamd(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "clamd.sock"
    daemon = _Clamd(path)
    yield path
    daemon.server.close()


def test_virus_check_is_not_checked_without_a_scanner_and_fails_on_a_find(
    tmp_path: Path, now: datetime, clamd: Path
) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    assert _check(bag, now).item("security.virus").verdict is Verdict.NOT_CHECKED
    scanner = ClamdScanner(str(clamd))
    assert _check(bag, now, scanner=scanner).item("security.virus").verdict is Verdict.PASS
    files = standard_files()
    files["0004.txt"] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    infected = make_sample_bag(tmp_path / "infected", files)
    _fails(_check(infected, now, scanner=scanner), "security.virus", "Eicar-Signature FOUND")
    gone = ClamdScanner(str(tmp_path / "no-such.sock"))
    assert _check(bag, now, scanner=gone).item("security.virus").verdict is Verdict.NOT_CHECKED


def test_classified_material_fails_security(tmp_path: Path, now: datetime) -> None:
    report = _check(make_sample_bag(tmp_path / "bag", 密级="机密"), now)
    _fails(report, "security.classification", "机密")


def test_the_report_renders_as_the_same_chinese_pdf_every_time(
    tmp_path: Path, now: datetime
) -> None:
    from pypdf import PdfReader

    from archives.report_pdf import render_report_pdf

    report = _check(make_sample_bag(tmp_path / "bag", 件数="5"), now)
    again = FourPropertyReport.from_json(json.loads(report.canonical_json()))
    assert again == report
    described = dict(description())
    first = render_report_pdf(report, described)
    assert render_report_pdf(again, described) == first
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(first)).pages)
    assert "电子档案四性检测报告" in text and "不通过" in text and "未检测" in text


@pytest.mark.parametrize("processes", [1, 2])
def test_usability_is_found_from_the_hashing_read(
    tmp_path: Path, now: datetime, processes: int
) -> None:
    # Past the format sniff a NUL byte still makes a text file unusable; the worker that
    # hashed the file tells, on one process or across the pool (64 files or more).
    files = {f"{n:04d}.txt": f"第{n}件\n".encode() for n in range(1, 71)}
    files["0070.txt"] = b"a" * (65 * 1024) + b"\x00tail\n"
    files["0071.pdf"] = pdf_bytes()
    files["0072.pdf"] = b"%PDF-1.7 this is no PDF at all"
    bag = make_sample_bag(tmp_path / "bag", files, 件数="72")
    reading = read_bag(bag, processes=processes)
    opened = {f.path: f.opened for f in reading.payload}
    assert opened["data/0001.txt"] == (True, "text read")
    assert opened["data/0071.pdf"] is not None and opened["data/0071.pdf"][0]
    report = check_package(reading, stage=Stage.INGEST, now=now)
    _fails(report, "usability.opens", "data/0070.txt: text holds NUL bytes")
    _fails(report, "usability.opens", "data/0072.pdf: PDF does not parse")
    assert len(report.item("usability.opens").evidence) == 2
