"""Write-once storage, SM3 manifests added, lineage through migration, approved disposal
with a tombstone, and the custody hash chain."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from archive_samples import make_sample_bag, png_bytes, standard_files

from archives.bag_reader import bagit_validate, read_bag
from archives.custody import EventType, Outcome, next_event, verify_history
from archives.errors import ArchiveError, ClassifiedMaterial, CustodyError, PackageExists
from archives.ingest import DisposalApproval, dispose, ingest, migrate
from archives.package import entry_proof, verify_entry
from archives.retention import PermanentRetention, RetentionNotExpired
from archives.store import LocalArchiveStore


def test_ingest_stores_a_write_once_aip_with_sm3_manifests(tmp_path: Path, now: datetime) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    outcome = ingest(make_sample_bag(tmp_path / "bag"), store, now=now)
    stored = outcome.version
    aip = store.bag_path(stored.package_id, 1)
    assert (aip / "manifest-sm3.txt").is_file() and (aip / "tagmanifest-sm3.txt").is_file()
    assert bagit_validate(aip) == ()
    assert set(read_bag(aip).algorithms) == {"sha256", "sha512", "sm3"}
    paths = [entry.path for entry in stored.entries]
    assert "data/0001.pdf" in paths and "bag-info.txt" in paths and "manifest-sm3.txt" in paths
    assert store.read_version(stored.package_id, 1) == stored
    for entry in stored.entries:
        verify_entry(stored.root, entry, entry_proof(stored.entries, entry.path), len(paths))
    with pytest.raises(PackageExists):
        ingest(make_sample_bag(tmp_path / "again"), store, now=now)
    # Read-only on disk (root may still write; the audit catches whoever does).
    assert (aip / "data" / "0004.txt").stat().st_mode & 0o222 == 0


def test_classified_bags_are_refused_before_anything_is_stored(
    tmp_path: Path, now: datetime
) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    with pytest.raises(ClassifiedMaterial):
        ingest(make_sample_bag(tmp_path / "bag", 密级="绝密"), store, now=now)
    assert list(store.package_ids()) == []


def test_migration_keeps_lineage_and_the_old_version(tmp_path: Path, now: datetime) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    first = ingest(make_sample_bag(tmp_path / "bag"), store, now=now).version
    files = standard_files()
    files["0003.png"] = png_bytes()
    files["0004.txt"] = "关于印发某区档案工作要点的通知（转换为UTF-8）\n".encode()
    migrated = make_sample_bag(tmp_path / "migrated", files)
    second = migrate(
        store,
        first.package_id,
        migrated,
        tool="iconv",
        tool_version="2.36",
        parameters={"from": "GB18030", "to": "UTF-8"},
        now=now + timedelta(days=1),
    ).version
    assert second.version == 2 and store.versions(first.package_id) == [1, 2]
    assert second.lineage is not None
    assert second.lineage.previous_root == first.root and second.lineage.previous_version == 1
    assert second.lineage.parameters == {"from": "GB18030", "to": "UTF-8"}
    assert store.read_version(first.package_id, 1) == first
    assert second.root != first.root
    other = make_sample_bag(tmp_path / "other", 档号="J001-WS·2023-Y-BGS-0099")
    with pytest.raises(ArchiveError, match="another"):
        migrate(store, first.package_id, other, tool="t", tool_version="1", parameters={}, now=now)


def test_disposal_needs_approval_and_leaves_a_tombstone(tmp_path: Path, now: datetime) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    expired = {"形成时间": "2010", "保管期限": "10年"}
    stored = ingest(make_sample_bag(tmp_path / "bag", **expired), store, now=now).version
    today = now.date()
    self_approved = DisposalApproval("鉴销〔2026〕1号", "张三", now, "保管期限届满")
    with pytest.raises(ArchiveError, match="other than"):
        dispose(store, stored.package_id, self_approved, carried_out_by="张三", today=today)
    assert store.versions(stored.package_id) == [1]
    approval = DisposalApproval("鉴销〔2026〕1号", "鉴定委员会", now, "保管期限届满")
    tombstone = dispose(store, stored.package_id, approval, carried_out_by="张三", today=today)
    assert store.versions(stored.package_id) == []
    assert store.tombstone(stored.package_id) == tombstone
    assert tombstone["destroyed"][0]["root"] == stored.root
    assert tombstone["approval"]["reason"] == "保管期限届满"
    assert tombstone["disposableFrom"] == "2021-01-01"
    with pytest.raises(PackageExists):
        ingest(make_sample_bag(tmp_path / "again", **expired), store, now=now)


@pytest.mark.parametrize(
    ("retention", "formed", "error"),
    [
        ("永久", "1990", PermanentRetention),
        ("30年", "2000", RetentionNotExpired),
        ("10年", "2016", RetentionNotExpired),
    ],
)
def test_disposal_is_refused_before_the_retention_period_ends(
    tmp_path: Path, now: datetime, retention: str, formed: str, error: type[ArchiveError]
) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    bag = make_sample_bag(tmp_path / "bag", 形成时间=formed, 保管期限=retention)
    stored = ingest(bag, store, now=now).version
    approval = DisposalApproval("鉴销〔2026〕2号", "鉴定委员会", now, "保管期限届满")
    with pytest.raises(error):
        dispose(store, stored.package_id, approval, carried_out_by="张三", today=now.date())
    assert store.versions(stored.package_id) == [1]
    assert store.tombstone(stored.package_id) is None


def test_custody_events_chain_and_refuse_what_cannot_follow() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(CustodyError):
        next_event([], "p1", EventType.ACCESS, at=at, agent="a")
    history = [next_event([], "p1", EventType.INGESTION, at=at, agent="档案馆")]
    for kind in (EventType.VALIDATION, EventType.FIXITY_CHECK, EventType.ACCESS):
        history.append(next_event(history, "p1", kind, at=at, agent="registry"))
    verify_history(history)
    with pytest.raises(CustodyError, match="approval"):
        next_event(history, "p1", EventType.DISPOSAL, at=at, agent="张三")
    approval = {"approvalId": "1", "approvedBy": "张三"}
    with pytest.raises(CustodyError, match="other than"):
        next_event(
            history, "p1", EventType.DISPOSAL, at=at, agent="张三", detail={"approval": approval}
        )
    approval["approvedBy"] = "鉴定委员会"
    history.append(
        next_event(
            history, "p1", EventType.DISPOSAL, at=at, agent="张三", detail={"approval": approval}
        )
    )
    with pytest.raises(CustodyError, match="disposed"):
        next_event(history, "p1", EventType.ACCESS, at=at, agent="x")
    verify_history(history)
    changed = list(history)
    changed[1] = next_event(
        history[:1], "p1", EventType.VALIDATION, at=at, agent="registry", outcome=Outcome.FAILURE
    )
    with pytest.raises(CustodyError, match="event 2"):
        verify_history(changed)
    with pytest.raises(CustodyError):
        verify_history([history[0], history[2]])


def test_a_stored_package_can_be_copied_without_links(tmp_path: Path, now: datetime) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    stored = ingest(make_sample_bag(tmp_path / "bag"), store, now=now).version
    copy = tmp_path / "copy"
    shutil.copytree(store.bag_path(stored.package_id, 1), copy)
    assert read_bag(copy).problems == ()


def test_every_stored_file_is_read_only_with_the_bytes_sent(tmp_path: Path, now: datetime) -> None:
    bag = make_sample_bag(tmp_path / "bag", tag_files={"说明.txt": "随附说明\n"})
    store = LocalArchiveStore(tmp_path / "store")
    stored = ingest(bag, store, now=now).version
    version_dir = store.bag_path(stored.package_id, 1).parent
    files = [path for path in version_dir.rglob("*") if path.is_file()]
    assert len(files) == len(stored.entries) + 2  # package.json and the report
    for path in files:
        assert path.stat().st_mode & 0o222 == 0, path
    for name in ("data/0001.pdf", "说明.txt", "bag-info.txt"):
        assert (version_dir / "bag" / name).read_bytes() == (bag / name).read_bytes()
