"""Hostile zip and tar submissions are refused before anything escapes or fills the disk."""

from __future__ import annotations

import io
import stat
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archives.errors import UnsafeArchive
from archives.extraction import ExtractionLimits, archive_kind, extract_archive


def _zip(path: Path, members: dict[str, bytes], *, mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            bundle.writestr(info, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as bundle:
        for member in members:
            data = b"x" * member.size if member.isfile() else None
            bundle.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/etc/passwd", "bag/../../escape.txt", "C:/windows/x", "a\\..\\b"]
)
def test_paths_leaving_the_target_are_refused(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "a.zip", {"bag/bagit.txt": b"x", name: b"evil"})
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("name", ["..\\escape.txt", "bag\\..\\..\\escape.txt", "C:\\x"])
def test_a_windows_zip_reads_backslashes_as_separators_and_refuses_escapes(
    tmp_path: Path, name: str
) -> None:
    archive = tmp_path / "a.zip"
    _windows_zip(archive, ["bag\\bagit.txt", "bag\\data\\a.txt", name])
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    safe = _windows_zip(tmp_path / "b.zip", ["bag\\bagit.txt", "bag\\data\\a.txt"])
    root = extract_archive(safe, tmp_path / "out2")
    assert (root / "data" / "a.txt").read_bytes() == b"x"


def _windows_zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name in names:
            info = zipfile.ZipInfo(name)
            info.create_system = 0
            bundle.writestr(info, b"x")
    return path


def test_a_backslash_in_a_zip_not_made_on_windows_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo("bag\\file.txt")
        info.create_system = 3
        bundle.writestr(info, b"x")
    with pytest.raises(UnsafeArchive, match="backslash"):
        extract_archive(archive, tmp_path / "out")


def test_finder_forks_are_left_out_and_typeless_modes_are_files(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("bag/bagit.txt", b"x")  # mode 0o600: permission bits, no type
        bundle.writestr("__MACOSX/bag/._bagit.txt", b"\x00\x05\x16\x07")
    root = extract_archive(archive, tmp_path / "out")
    assert root == tmp_path / "out" / "bag"
    assert not (tmp_path / "out" / "__MACOSX").exists()


def test_zip_symlinks_are_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"bag/link": b"/etc/passwd"}, mode=stat.S_IFLNK | 0o777)
    with pytest.raises(UnsafeArchive, match="link"):
        extract_archive(archive, tmp_path / "out")


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)
def test_tar_links_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes) -> None:
    member = tarfile.TarInfo("bag/special")
    member.type = kind
    member.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "a.tar", [member])
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sizes_and_counts_are_bounded(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {f"bag/{i}.txt": b"12345" for i in range(20)})
    with pytest.raises(UnsafeArchive, match="members"):
        extract_archive(archive, tmp_path / "o1", ExtractionLimits(max_members=10))
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "o2", ExtractionLimits(max_total_bytes=50))
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "o3", ExtractionLimits(max_member_bytes=4))
    big = tarfile.TarInfo("bag/big.bin")
    big.size = 1000
    with pytest.raises(UnsafeArchive):
        extract_archive(
            _tar(tmp_path / "b.tar", [big]), tmp_path / "o4", ExtractionLimits(max_member_bytes=999)
        )


def test_a_zip_bomb_is_stopped_while_inflating(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("bag/zeros.bin", bytes(5_000_000))
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "out", ExtractionLimits(max_total_bytes=1_000_000))


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"neither zip nor tar")
    with pytest.raises(UnsafeArchive):
        extract_archive(tmp_path / "a.bin", tmp_path / "out")


def test_a_symlink_inside_a_directory_bag_is_refused(tmp_path: Path) -> None:
    from archive_samples import make_sample_bag

    from archives.bag_reader import read_bag

    bag = make_sample_bag(tmp_path / "bag")
    (bag / "data" / "link").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArchive):
        read_bag(bag)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5))
def test_any_member_names_extract_inside_the_target_or_are_refused(
    tmp_path: Path, names: list[str]
) -> None:
    work = tmp_path / uuid.uuid4().hex
    work.mkdir()
    archive = work / "a.zip"
    try:
        _zip(archive, {name: b"x" for name in dict.fromkeys(names)})
    except (ValueError, UnicodeEncodeError):
        return  # names zipfile itself cannot write
    target = work / "out"
    try:
        extract_archive(archive, target)
    except UnsafeArchive:
        assert not target.exists()
        return
    for path in work.rglob("*"):
        assert path in (archive, target) or target in path.parents


def test_a_tar_holding_a_zip_member_is_read_as_a_tar(tmp_path: Path) -> None:
    # zipfile.is_zipfile finds the end record of a zip member (an OFD, say) near the end
    # of an uncompressed tar, and would take the tar for a damaged zip.
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as bundle:
        bundle.writestr("OFD.xml", b"<ofd/>")
    archive = tmp_path / "bag.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (
            ("bag/bagit.txt", b"BagIt-Version: 1.0\n"),
            ("bag/data/a.ofd", inner.getvalue()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert zipfile.is_zipfile(archive)
    assert archive_kind(archive) == "tar"
    root = extract_archive(archive, tmp_path / "out")
    assert (root / "data" / "a.ofd").read_bytes() == inner.getvalue()
    zipped = tmp_path / "bag.zip"
    with zipfile.ZipFile(zipped, "w") as bundle:
        bundle.writestr("bag/bagit.txt", "BagIt-Version: 1.0\n")
    assert archive_kind(zipped) == "zip"
