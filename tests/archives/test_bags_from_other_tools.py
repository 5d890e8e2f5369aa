"""Bags as other tools and other systems write them ingest like our own: other manifest
algorithms (md5 alone, sha1), no tag manifest, BagIt 0.97, CRLF line ends, a BOM, bag-info
in GB18030 as bagit.txt declares, folded bag-info values, repeated and extra bag-info
labels, upper-case hex, tab separators, names with spaces, Chinese, ``%`` and decomposed
Unicode; zips with a top folder, written by Python's ``writestr`` (a mode without a file
type), made on Windows with backslash separators, or by macOS Finder with its
``__MACOSX`` forks; a tar.gz. A holey bag (fetch.txt naming a file not present) is refused
with the file named."""

from __future__ import annotations

import hashlib
import re
import tarfile
import unicodedata
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from archive_samples import make_sample_bag, standard_files

from archives.ingest import IngestRefused, ingest
from archives.store import LocalArchiveStore

NOW = datetime(2026, 12, 7, tzinfo=UTC)
FILES = len(standard_files())


def _retag(bag: Path) -> None:
    """Rewrite the tag manifests over the tag files as they now are (what a tool that
    edited them would do)."""
    for manifest in bag.glob("tagmanifest-*.txt"):
        algorithm = manifest.name.removeprefix("tagmanifest-").removesuffix(".txt")
        lines = [
            f"{hashlib.new(algorithm, path.read_bytes()).hexdigest()}  {path.name}\n"
            for path in sorted(bag.iterdir())
            if path.is_file() and not path.name.startswith("tagmanifest-")
        ]
        manifest.write_text("".join(lines), encoding="utf-8")


def _edit(bag: Path, name: str, change: Callable[[bytes], bytes]) -> Path:
    path = bag / name
    path.write_bytes(change(path.read_bytes()))
    _retag(bag)
    return bag


def _manifests(bag: Path, change: Callable[[str], str]) -> Path:
    for manifest in bag.glob("manifest-*.txt"):
        manifest.write_text(change(manifest.read_text("utf-8")), encoding="utf-8")
    _retag(bag)
    return bag


def _crlf(bag: Path) -> Path:
    for path in [bag / "bagit.txt", bag / "bag-info.txt", *bag.glob("manifest-*.txt")]:
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    _retag(bag)
    return bag


def _gb18030(bag: Path) -> Path:
    (bag / "bagit.txt").write_text(
        "BagIt-Version: 1.0\nTag-File-Character-Encoding: GB18030\n", encoding="ascii"
    )
    return _edit(bag, "bag-info.txt", lambda data: data.decode("utf-8").encode("gb18030"))


def _fold_title(data: bytes) -> bytes:
    text = re.sub(r"^(题名: )(..)(.*)$", r"\1\2\n  \3", data.decode("utf-8"), count=1, flags=re.M)
    return text.encode("utf-8")


def _zip(bag: Path, *, top: str = "", windows: bool = False, finder: bool = False) -> Path:
    archive = bag.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(bag.rglob("*")):
            if not path.is_file():
                continue
            name = top + path.relative_to(bag).as_posix()
            if windows:
                info = zipfile.ZipInfo(name.replace("/", "\\"))
                info.create_system = 0
                info.external_attr = 0x20  # the archive attribute, as Windows sets it
                bundle.writestr(info, path.read_bytes())
            else:
                bundle.writestr(name, path.read_bytes())  # a mode without a file type
        if finder:
            bundle.writestr(f"__MACOSX/{top}._bagit.txt", b"\x00\x05\x16\x07AppleDouble")
            bundle.writestr(f"__MACOSX/{top}data/._0001.pdf", b"\x00\x05\x16\x07AppleDouble")
    return archive


def _tar_gz(bag: Path) -> Path:
    archive = bag.with_suffix(".tar.gz")
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(bag, arcname="bag")
    return archive


def _with_files(directory: Path, extra: dict[str, bytes]) -> Path:
    files = {**standard_files(), **extra}
    return make_sample_bag(directory, files, **{"件数": str(len(files))})


SHAPES: dict[str, Callable[[Path], Path]] = {
    "md5 alone": lambda d: make_sample_bag(d, checksums=("md5",)),
    "sha1 and md5": lambda d: make_sample_bag(d, checksums=("sha1", "md5")),
    "no tag manifest": lambda d: _no_tag_manifest(make_sample_bag(d)),
    "BagIt 0.97": lambda d: _edit(
        make_sample_bag(d),
        "bagit.txt",
        lambda _: b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
    ),
    "CRLF line ends": lambda d: _crlf(make_sample_bag(d)),
    "a BOM in bag-info": lambda d: _edit(
        make_sample_bag(d), "bag-info.txt", b"\xef\xbb\xbf".__add__
    ),
    "bag-info in GB18030": lambda d: _gb18030(make_sample_bag(d)),
    "a folded bag-info value": lambda d: _edit(make_sample_bag(d), "bag-info.txt", _fold_title),
    "repeated and extra labels": lambda d: _edit(
        make_sample_bag(d),
        "bag-info.txt",
        lambda data: (
            data
            + "Bag-Software-Agent: bagit-java 5.2\nContact-Name: 张三\n".encode()
            + "Contact-Name: 李四\n".encode()
        ),
    ),
    "upper-case hex": lambda d: _manifests(
        make_sample_bag(d),
        lambda text: re.sub(r"^[0-9a-f]+", lambda m: m.group(0).upper(), text, flags=re.M),
    ),
    "tab separators": lambda d: _manifests(
        make_sample_bag(d), lambda text: re.sub(r"^([0-9a-f]+) +", r"\1\t", text, flags=re.M)
    ),
    "names with spaces and Chinese": lambda d: _with_files(d, {"卷 一/文件 甲.txt": b"jia"}),
    "a name with %": lambda d: _with_files(d, {"a%b.txt": b"percent"}),
    "a decomposed name listed composed": lambda d: _manifests(
        _with_files(d, {unicodedata.normalize("NFD", "é.txt"): b"e"}),
        lambda text: unicodedata.normalize("NFC", text),
    ),
    "zip with a top folder (writestr)": lambda d: _zip(make_sample_bag(d), top="bag/"),
    "zip made on Windows": lambda d: _zip(make_sample_bag(d), top="bag/", windows=True),
    "zip made by macOS Finder": lambda d: _zip(make_sample_bag(d), top="bag/", finder=True),
    "tar.gz": lambda d: _tar_gz(make_sample_bag(d)),
}


def _no_tag_manifest(bag: Path) -> Path:
    for manifest in bag.glob("tagmanifest-*.txt"):
        manifest.unlink()
    return bag


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_bag_another_tool_made_ingests(tmp_path: Path, shape: str) -> None:
    source = SHAPES[shape](tmp_path / "bag")
    outcome = ingest(source, LocalArchiveStore(tmp_path / "store"), now=NOW, processes=1)
    payload = [entry for entry in outcome.version.entries if entry.path.startswith("data/")]
    assert len(payload) >= FILES
    assert not outcome.report.failed


def test_a_holey_bag_is_refused_naming_the_missing_file(tmp_path: Path) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    (bag / "fetch.txt").write_text("https://example.org/remote.bin 6 data/remote.bin\n")
    _manifests(bag, lambda text: text + "0" * 64 + "  data/remote.bin\n")
    store = LocalArchiveStore(tmp_path / "store")
    with pytest.raises(IngestRefused, match=r"data/remote\.bin"):
        ingest(bag, store, now=NOW, processes=1)
    assert not list((tmp_path / "store").rglob("*.txt"))
