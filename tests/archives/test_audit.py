"""Fixity audits name the exact file, both digests and the kind of change, check the
package manifest against the anchored root, and resume after the audit process is killed."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from archive_samples import make_sample_bag
from process_tree import fifo_held_open

from archives.audit import FindingKind, audit_store
from archives.errors import AuditBusy, AuditInterrupted
from archives.hashing import sm3_file
from archives.ingest import ingest
from archives.store import LocalArchiveStore, PackageVersion

REPO = Path(__file__).resolve().parents[2]

WORKER_START_S = 120.0
"""Longest an audit's workers may take to start and take up their first task."""

STOPPED_S = 30.0
"""Longest a stopped audit may take to end (it looks at its stop event every 0.2 s)."""


@pytest.fixture
def stored(tmp_path: Path, now: datetime) -> tuple[LocalArchiveStore, PackageVersion]:
    store = LocalArchiveStore(tmp_path / "store")
    return store, ingest(make_sample_bag(tmp_path / "bag"), store, now=now).version


def _writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


def test_an_untouched_store_audits_clean(
    tmp_path: Path, stored: tuple[LocalArchiveStore, PackageVersion]
) -> None:
    store, version = stored
    result = audit_store(
        store, tmp_path / "audit.ckpt", anchored_roots={(version.package_id, 1): version.root}
    )
    assert result.ok and result.files == len(version.entries)
    assert not (tmp_path / "audit.ckpt").exists()


def test_each_kind_of_change_is_named(
    tmp_path: Path, stored: tuple[LocalArchiveStore, PackageVersion]
) -> None:
    store, version = stored
    bag = store.bag_path(version.package_id, 1)
    expected = {entry.path: entry.sm3 for entry in version.entries}
    text = _writable(bag / "data" / "0004.txt")
    flipped = bytearray(text.read_bytes())
    flipped[0] ^= 1
    text.write_bytes(bytes(flipped))
    pdf = _writable(bag / "data" / "0001.pdf")
    pdf.write_bytes(pdf.read_bytes()[:100])
    (bag / "data" / "0003.png").rename(bag / "data" / "0003-moved.png")
    (bag / "data" / "0002.ofd").unlink()
    (bag / "data" / "planted.txt").write_text("x")
    info = _writable(bag / "bag-info.txt")
    info.write_text(info.read_text(encoding="utf-8").replace("永久", "10年"), encoding="utf-8")
    result = audit_store(
        store, tmp_path / "audit.ckpt", anchored_roots={(version.package_id, 1): version.root}
    )
    found = {(f.path, f.kind): f for f in result.findings}
    assert set(found) == {
        ("data/0004.txt", FindingKind.CHANGED),
        ("data/0001.pdf", FindingKind.TRUNCATED),
        ("data/0003.png", FindingKind.RENAMED),
        ("data/0002.ofd", FindingKind.MISSING),
        ("data/planted.txt", FindingKind.ADDED),
        ("bag-info.txt", FindingKind.BAG_INFO_EDITED),
    }
    changed = found[("data/0004.txt", FindingKind.CHANGED)]
    assert changed.expected_sm3 == expected["data/0004.txt"]
    assert changed.actual_sm3 == sm3_file(text)[0]
    assert found[("data/0003.png", FindingKind.RENAMED)].detail == "now at data/0003-moved.png"
    assert found[("data/0002.ofd", FindingKind.MISSING)].actual_sm3 == ""


def test_a_manifest_rewritten_to_hide_a_change_disagrees_with_the_anchored_root(
    tmp_path: Path, stored: tuple[LocalArchiveStore, PackageVersion]
) -> None:
    store, version = stored
    package_json = _writable(store.bag_path(version.package_id, 1).parent / "package.json")
    other = PackageVersion(**{**version.__dict__, "root": "0" * 64})
    result = audit_store(
        store, tmp_path / "audit.ckpt", anchored_roots={(version.package_id, 1): other.root}
    )
    assert [f.kind for f in result.findings] == [FindingKind.MANIFEST_ALTERED]
    assert package_json.exists()


_KILLABLE_AUDIT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    def progress(files, size):
        if files >= int(sys.argv[3]):
            Path(sys.argv[2] + ".reached").write_text(str(files))
            time.sleep(600)

    if __name__ == "__main__":
        # Imported here: the spawned hashing workers import this script, and need none of it.
        from archives.audit import audit_store
        from archives.store import LocalArchiveStore

        audit_store(LocalArchiveStore(Path(sys.argv[1])), Path(sys.argv[2]), progress=progress)
    """
)


def test_an_audit_killed_midway_resumes_from_its_checkpoint(tmp_path: Path, now: datetime) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    files = {f"doc/{i:05d}.txt": f"第{i}件\n".encode() for i in range(400)}
    version = ingest(make_sample_bag(tmp_path / "bag", files, 件数="400"), store, now=now).version
    victim = store.bag_path(version.package_id, 1) / "data" / "doc" / "00390.txt"
    _writable(victim).write_bytes(b"changed after ingest")
    checkpoint = tmp_path / "audit.ckpt"
    script = tmp_path / "audit_script.py"
    script.write_text(_KILLABLE_AUDIT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(store.root), str(checkpoint), "192"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    try:
        reached = Path(str(checkpoint) + ".reached")
        deadline = time.monotonic() + 120
        while not reached.exists():
            assert process.poll() is None, "the audit ended before it was killed"
            assert time.monotonic() < deadline, "the audit never got halfway"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert checkpoint.exists()
    result = audit_store(store, checkpoint)
    assert result.resumed_files > 0
    assert result.resumed_files + result.files == len(version.entries)
    assert [(f.path, f.kind) for f in result.findings] == [
        ("data/doc/00390.txt", FindingKind.CHANGED)
    ]
    assert not checkpoint.exists()


def test_a_stopped_audit_keeps_its_checkpoint_and_the_next_continues_it(
    tmp_path: Path, now: datetime
) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    files = {f"{n:04d}.txt": f"第{n}件\n".encode() for n in range(1, 151)}
    version = ingest(make_sample_bag(tmp_path / "bag", files, 件数="150"), store, now=now).version
    checkpoint = tmp_path / "audit.ckpt"
    stop = threading.Event()
    with pytest.raises(AuditInterrupted):
        audit_store(store, checkpoint, processes=1, progress=lambda _f, _b: stop.set(), stop=stop)
    assert checkpoint.exists()
    hashed_before = len(checkpoint.read_text(encoding="utf-8").splitlines()) - 1
    assert 0 < hashed_before < len(version.entries)
    bag = store.bag_path(version.package_id, 1)
    changed = _writable(bag / "data" / "0150.txt")
    changed.write_bytes(b"rewritten behind the archive's back")
    result = audit_store(store, checkpoint, processes=1)
    assert result.resumed_files == hashed_before
    assert result.files + result.resumed_files == len(version.entries)
    assert [(f.path, f.kind) for f in result.findings] == [("data/0150.txt", FindingKind.CHANGED)]
    assert not checkpoint.exists()


def test_a_stopped_audit_does_not_wait_for_a_task_held_up(tmp_path: Path, now: datetime) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    # Two tasks (64 files each at most), one per worker; the first reads a FIFO that gives
    # it nothing for as long as it is held open: a worker stuck reading a file.
    files = {f"{n:04d}.txt": f"第{n}件\n".encode() for n in range(1, 101)}
    version = ingest(make_sample_bag(tmp_path / "bag", files, 件数="100"), store, now=now).version
    fifo = store.bag_path(version.package_id, 1) / "data" / "0000.txt"
    os.mkfifo(fifo)
    checkpoint = tmp_path / "audit.ckpt"
    stop = threading.Event()
    ended: list[BaseException] = []

    def audit() -> None:
        try:
            audit_store(store, checkpoint, processes=2, stop=stop)
        except BaseException as exc:
            ended.append(exc)

    before = set(multiprocessing.active_children())
    thread = threading.Thread(target=audit, daemon=True)
    thread.start()
    with fifo_held_open(fifo, WORKER_START_S):
        workers = [p for p in multiprocessing.active_children() if p not in before]
        stop.set()
        thread.join(STOPPED_S)
        assert not thread.is_alive(), f"the stopped audit still ran after {STOPPED_S} s"
    thread.join()
    assert len(workers) == 2 and not any(worker.is_alive() for worker in workers)
    assert [type(exc) for exc in ended] == [AuditInterrupted]
    assert checkpoint.exists()


def test_one_audit_of_a_store_at_a_time(
    tmp_path: Path, stored: tuple[LocalArchiveStore, PackageVersion]
) -> None:
    store, version = stored
    checkpoint = tmp_path / "audit.ckpt"
    lock = os.open(tmp_path / "audit.ckpt.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(AuditBusy):
            audit_store(store, checkpoint)
        assert not checkpoint.exists()
    finally:
        os.close(lock)
    assert audit_store(store, checkpoint).files == len(version.entries)
