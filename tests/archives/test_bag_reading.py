"""Reading and validating bags made by the bagit tool, SM3 manifests included, and every
tampered variant refused for its reason, in agreement with bagit's own validation."""

from __future__ import annotations

import shutil
import tarfile
from datetime import datetime
from pathlib import Path

import bagit
import pytest
from archive_samples import TAMPERINGS, make_sample_bag

from archives.bag_reader import bagit_validate, read_bag
from archives.errors import BagInvalid, BagUnreadable
from archives.hashing import sm3_file
from archives.ingest import IngestRefused, ingest
from archives.store import LocalArchiveStore


def test_a_bagit_bag_reads_valid_with_an_sm3_of_every_file(tmp_path: Path) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    reading = read_bag(bag)
    assert reading.problems == ()
    assert set(reading.algorithms) == {"sha256", "sha512"}
    assert [f.path for f in reading.payload] == [
        "data/0001.pdf",
        "data/0002.ofd",
        "data/0003.png",
        "data/0004.txt",
    ]
    for file in reading.files:
        assert (file.sm3, file.size) == sm3_file(bag / file.path)
    assert reading.info["档号"] == "J001-WS·2023-Y-BGS-0001"


def test_bagit_itself_validates_sm3_manifests_through_the_subclass(tmp_path: Path) -> None:
    bag = make_sample_bag(tmp_path / "bag", checksums=("sm3",))
    assert (bag / "manifest-sm3.txt").is_file() and (bag / "tagmanifest-sm3.txt").is_file()
    assert bagit_validate(bag) == ()
    # bagit's own Bag does not look for manifest-sm3.txt: it finds no manifest at all.
    with pytest.raises(bagit.BagError):
        bagit.Bag(str(bag)).validate()
    TAMPERINGS["flipped_byte"](bag)
    assert any("0004.txt" in problem for problem in bagit_validate(bag))
    assert any(m.algorithm == "sm3" for m in read_bag(bag).mismatches)


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_every_tampered_bag_is_refused_as_bagit_refuses_it(
    tmp_path: Path, tampering: str, now: datetime
) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    TAMPERINGS[tampering](bag)
    assert bagit_validate(bag) != ()
    reading = read_bag(bag, processes=2)
    assert reading.problems != ()
    with pytest.raises(BagInvalid):
        reading.require_valid()
    store = LocalArchiveStore(tmp_path / "store")
    with pytest.raises(IngestRefused) as refused:
        ingest(bag, store, now=now)
    assert refused.value.report.failed
    assert list(store.package_ids()) == []


def test_findings_name_the_file_and_both_digests(tmp_path: Path) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    TAMPERINGS["flipped_byte"](bag)
    (mismatch, *_) = read_bag(bag).mismatches
    assert mismatch.path == "data/0004.txt"
    assert mismatch.expected != mismatch.found and len(mismatch.found) in (64, 128)


def test_not_a_bag_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.txt").write_text("x")
    with pytest.raises(BagUnreadable):
        read_bag(tmp_path / "plain")


def test_a_manifest_path_leaving_the_bag_is_unreadable(tmp_path: Path) -> None:
    bag = make_sample_bag(tmp_path / "bag")
    with (bag / "manifest-sha256.txt").open("a") as manifest:
        manifest.write(f"{'0' * 64}  ../../etc/passwd\n")
    with pytest.raises(BagUnreadable):
        read_bag(bag)


def test_zip_and_tar_bags_ingest_like_directories(tmp_path: Path, now: datetime) -> None:
    bag = make_sample_bag(tmp_path / "src" / "J001-bag")
    archive = shutil.make_archive(str(tmp_path / "bag"), "zip", tmp_path / "src", "J001-bag")
    stored = ingest(Path(archive), LocalArchiveStore(tmp_path / "zip-store"), now=now)
    with tarfile.open(tmp_path / "bag.tar.gz", "w:gz") as tar:
        tar.add(bag, arcname="J001-bag")
    from_tar = ingest(tmp_path / "bag.tar.gz", LocalArchiveStore(tmp_path / "tar-store"), now=now)
    from_dir = ingest(bag, LocalArchiveStore(tmp_path / "dir-store"), now=now)
    assert stored.version.root == from_tar.version.root == from_dir.version.root
