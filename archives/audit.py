"""Fixity audits: every stored file re-hashed (SM3, streamed) across cores in worker
processes, compared with the package's manifest, whose root is first checked against the
anchored root. Memory stays bounded (a bounded number of tasks in flight, one package's
entries at a time) and the audit resumes after a crash: each hashed file and each finished
package is appended to a checkpoint file, and a restarted audit skips what it lists.

A mismatch names the file, the expected and actual SM3 and its kind: ``changed``,
``truncated``, ``missing``, ``added``, ``renamed`` (a missing file whose contents appear
under another path), ``bag_info_edited``, or ``manifest_altered`` (package.json no longer
matches the anchored root)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from archives.errors import AuditBusy, AuditInterrupted, CheckpointError
from archives.hashing import hash_files
from archives.package import ManifestEntry
from archives.store import LocalArchiveStore, PackageVersion
from archives.worker_pools import process_pool, stop_pool

TASK_FILES = 64
"""Files per worker task (fewer round trips for small files)."""

TASK_BYTES = 64 * 1024 * 1024
"""Bytes after which a task is closed early (a few large files per task)."""

IN_FLIGHT_PER_PROCESS = 4
"""Tasks queued per worker: enough to keep it busy, few enough to bound memory."""

LOCK_SUFFIX = ".lock"
"""Beside the checkpoint: the lock held by the running audit."""

SYNC_EVERY = 256
"""Checkpoint lines between fsyncs (a crash loses at most this much work)."""

STOP_POLL_S = 0.2
"""Seconds between looks at the stop event while a task is awaited: a stopped audit ends
within this, its tasks in flight abandoned (their hashing is redone by the next audit)."""


class FindingKind(StrEnum):
    """How a stored file differs from its anchored manifest entry."""

    CHANGED = "changed"
    TRUNCATED = "truncated"
    MISSING = "missing"
    ADDED = "added"
    RENAMED = "renamed"
    BAG_INFO_EDITED = "bag_info_edited"
    MANIFEST_ALTERED = "manifest_altered"


@dataclass(frozen=True)
class FixityFinding:
    """One mismatch."""

    package_id: str
    """The package."""
    version: int
    """Its version."""
    path: str
    """The file (for ``renamed``, where it was)."""
    kind: FindingKind
    """What happened to it."""
    expected_sm3: str
    """The anchored manifest's SM3 ("" for an added file)."""
    actual_sm3: str
    """What the file hashes to now ("" if missing)."""
    detail: str = ""
    """More (``renamed``: the new path; ``manifest_altered``: both roots)."""

    def to_json(self) -> dict[str, Any]:
        """As reported and checkpointed."""
        return {
            "packageId": self.package_id,
            "version": self.version,
            "path": self.path,
            "kind": self.kind.value,
            "expectedSm3": self.expected_sm3,
            "actualSm3": self.actual_sm3,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> FixityFinding:
        """Read back from a checkpoint."""
        return cls(
            package_id=str(value["packageId"]),
            version=int(value["version"]),
            path=str(value["path"]),
            kind=FindingKind(value["kind"]),
            expected_sm3=str(value["expectedSm3"]),
            actual_sm3=str(value["actualSm3"]),
            detail=str(value.get("detail", "")),
        )


@dataclass
class AuditResult:
    """What an audit found."""

    audit_id: str
    """The audit (its checkpoint carries it)."""
    packages: list[tuple[str, int]] = field(default_factory=list)
    """Package versions audited."""
    files: int = 0
    """Files hashed by this run (resumed files not counted)."""
    bytes: int = 0
    """Bytes hashed by this run."""
    resumed_files: int = 0
    """Files taken from the checkpoint."""
    findings: list[FixityFinding] = field(default_factory=list)
    """Every mismatch."""

    @property
    def ok(self) -> bool:
        """True if nothing differs."""
        return not self.findings


def compare(
    package_id: str,
    version: int,
    expected: tuple[ManifestEntry, ...],
    actual: Mapping[str, tuple[str, int]],
) -> list[FixityFinding]:
    """The findings of one package version: ``actual`` maps each file on disk to its SM3
    and size."""
    findings: list[FixityFinding] = []
    wanted = {entry.path: entry for entry in expected}
    missing = sorted(set(wanted) - set(actual))
    added = sorted(set(actual) - set(wanted))
    for path in sorted(set(wanted) & set(actual)):
        entry, (digest, size) = wanted[path], actual[path]
        if digest == entry.sm3:
            continue
        if path == "bag-info.txt":
            kind = FindingKind.BAG_INFO_EDITED
        elif 0 <= size < entry.size:
            kind = FindingKind.TRUNCATED
        else:
            kind = FindingKind.CHANGED
        findings.append(FixityFinding(package_id, version, path, kind, entry.sm3, digest))
    by_digest: dict[str, list[str]] = {}
    for path in added:
        by_digest.setdefault(actual[path][0], []).append(path)
    renamed_to: set[str] = set()
    for path in missing:
        candidates = by_digest.get(wanted[path].sm3, [])
        if candidates:
            target = candidates.pop(0)
            renamed_to.add(target)
            findings.append(
                FixityFinding(
                    package_id,
                    version,
                    path,
                    FindingKind.RENAMED,
                    wanted[path].sm3,
                    actual[target][0],
                    detail=f"now at {target}",
                )
            )
        else:
            findings.append(
                FixityFinding(package_id, version, path, FindingKind.MISSING, wanted[path].sm3, "")
            )
    findings.extend(
        FixityFinding(package_id, version, path, FindingKind.ADDED, "", actual[path][0])
        for path in added
        if path not in renamed_to
    )
    return findings


class _Checkpoint:
    """The append-only log of an audit: a header, one line per hashed file, one per
    finished package version (with its findings)."""

    def __init__(self, path: Path, audit_id: str | None) -> None:
        self.path = path
        self.hashed: dict[tuple[str, int], dict[str, tuple[str, int]]] = {}
        self.finished: dict[tuple[str, int], list[FixityFinding]] = {}
        if path.exists():
            self.audit_id = self._load(audit_id)
            self.stream: TextIO = path.open("a", encoding="utf-8")
        else:
            self.audit_id = audit_id or uuid.uuid4().hex
            self.stream = path.open("w", encoding="utf-8")
            self._write({"audit": self.audit_id})
            self.sync()
        self.unsynced = 0

    def _load(self, audit_id: str | None) -> str:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0])
            found = str(header["audit"])
        except (IndexError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{self.path} is not an audit checkpoint") from exc
        if audit_id is not None and audit_id != found:
            raise CheckpointError(f"{self.path} belongs to audit {found}, not {audit_id}")
        for line in lines[1:]:
            try:
                value = json.loads(line)
            except ValueError:
                break  # the line a crash cut short; everything after it is redone
            key = (str(value["p"]), int(value["v"]))
            if "done" in value:
                self.finished[key] = [FixityFinding.from_json(f) for f in value["done"]]
                self.hashed.pop(key, None)
            else:
                self.hashed.setdefault(key, {})[str(value["f"])] = (
                    str(value["h"]),
                    int(value["s"]),
                )
        return found

    def _write(self, value: dict[str, Any]) -> None:
        self.stream.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")

    def file(self, key: tuple[str, int], path: str, digest: str, size: int) -> None:
        self._write({"p": key[0], "v": key[1], "f": path, "h": digest, "s": size})
        self.unsynced += 1
        if self.unsynced >= SYNC_EVERY:
            self.sync()

    def done(self, key: tuple[str, int], findings: list[FixityFinding]) -> None:
        self._write({"p": key[0], "v": key[1], "done": [f.to_json() for f in findings]})
        self.sync()
        self.finished[key] = findings
        self.hashed.pop(key, None)

    def sync(self) -> None:
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.unsynced = 0

    def close(self) -> None:
        self.sync()
        self.stream.close()


def _files_on_disk(bag: Path) -> Iterator[tuple[str, int]]:
    for directory, subdirectories, names in os.walk(bag):
        subdirectories.sort()
        for name in sorted(names):
            full = Path(directory) / name
            yield full.relative_to(bag).as_posix(), full.lstat().st_size


def _tasks(files: Iterator[tuple[str, int]]) -> Iterator[list[str]]:
    task: list[str] = []
    size = 0
    for path, length in files:
        task.append(path)
        size += length
        if len(task) >= TASK_FILES or size >= TASK_BYTES:
            yield task
            task, size = [], 0
    if task:
        yield task


Progress = Callable[[int, int], None]
"""Told (files, bytes) hashed so far by this run."""


def count_files(store: LocalArchiveStore) -> tuple[int, int]:
    """Files and bytes an audit of ``store`` will read (for a progress bar's total)."""
    files = size = 0
    for package_id in store.package_ids():
        for version in store.versions(package_id):
            for _, length in _files_on_disk(store.bag_path(package_id, version)):
                files += 1
                size += length
    return files, size


def audit_store(
    store: LocalArchiveStore,
    checkpoint: Path,
    *,
    anchored_roots: Mapping[tuple[str, int], str] | None = None,
    processes: int = 2,
    progress: Progress | None = None,
    audit_id: str | None = None,
    stop: threading.Event | None = None,
    package_ids: Collection[str] | None = None,
    lock: Path | None = None,
) -> AuditResult:
    """Audit every stored version of every package (of ``package_ids`` only, when given:
    an audit of one package asked for on demand). ``anchored_roots`` maps (package,
    version) to the root anchored on chain: a package.json that disagrees is reported as
    ``manifest_altered`` and the files are compared with it all the same. Resumes from
    ``checkpoint`` if it exists (its audit id must be ``audit_id`` if given); the
    checkpoint is removed once the audit completes. Once ``stop`` is set the audit ends
    within :data:`STOP_POLL_S` with AuditInterrupted, its hashing workers ended, its
    checkpoint kept for the next one. One audit per ``lock`` at a time (default: the
    checkpoint's name + ``.lock``): another one raises AuditBusy. The workers end on their
    own should this process die first (:mod:`archives.worker_pools`)."""
    held = lock or checkpoint.with_name(checkpoint.name + LOCK_SUFFIX)
    with _exclusive(held):
        return _audit_store(
            store, checkpoint, anchored_roots, processes, progress, audit_id, stop, package_ids
        )


@contextlib.contextmanager
def _exclusive(lock: Path) -> Generator[None]:
    """Hold an exclusive lock on ``lock`` (the OS drops it if the process dies); raises
    AuditBusy if another process or thread holds it."""
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AuditBusy(f"another audit holds {lock}") from None
        yield
    finally:
        os.close(descriptor)


def _audit_store(
    store: LocalArchiveStore,
    checkpoint: Path,
    anchored_roots: Mapping[tuple[str, int], str] | None,
    processes: int,
    progress: Progress | None,
    audit_id: str | None,
    stop: threading.Event | None,
    package_ids: Collection[str] | None,
) -> AuditResult:
    log = _Checkpoint(checkpoint, audit_id)
    result = AuditResult(audit_id=log.audit_id)
    try:
        pool = process_pool(max(1, processes), multiprocessing.get_context("spawn"))
        try:
            for package_id in store.package_ids():
                if package_ids is not None and package_id not in package_ids:
                    continue
                for version in store.versions(package_id):
                    key = (package_id, version)
                    result.packages.append(key)
                    if key in log.finished:
                        result.findings.extend(log.finished[key])
                        continue
                    _check_stop(stop)
                    findings = _audit_version(
                        store, key, log, pool, processes, result, progress, anchored_roots, stop
                    )
                    log.done(key, findings)
                    result.findings.extend(findings)
        except BaseException:
            # Stopped (a shutdown) or failed: the tasks in flight are not waited for, their
            # workers are ended; what they hashed and was not collected is hashed again.
            stop_pool(pool)
            raise
        pool.shutdown()
    finally:
        log.close()
    checkpoint.unlink()
    return result


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise AuditInterrupted("the audit was stopped; its checkpoint is kept")


def _result(
    future: Future[list[tuple[str, str, int]]], stop: threading.Event | None
) -> list[tuple[str, str, int]]:
    """What a task hashed; raises AuditInterrupted as soon as ``stop`` is set, not when the
    task is done (a worker may take long to start, or be stuck reading a file)."""
    if stop is None:
        return future.result()
    while True:
        try:
            return future.result(timeout=STOP_POLL_S)
        except TimeoutError:
            _check_stop(stop)


def _audit_version(
    store: LocalArchiveStore,
    key: tuple[str, int],
    log: _Checkpoint,
    pool: ProcessPoolExecutor,
    processes: int,
    result: AuditResult,
    progress: Progress | None,
    anchored_roots: Mapping[tuple[str, int], str] | None,
    stop: threading.Event | None,
) -> list[FixityFinding]:
    bag = store.bag_path(*key)
    done = log.hashed.get(key, {})
    result.resumed_files += len(done)
    actual: dict[str, tuple[str, int]] = dict(done)
    pending = (item for item in _files_on_disk(bag) if item[0] not in done)
    in_flight: list[Future[list[tuple[str, str, int]]]] = []
    limit = max(1, processes) * IN_FLIGHT_PER_PROCESS

    def collect(future: Future[list[tuple[str, str, int]]]) -> None:
        for path, digest, size in _result(future, stop):
            actual[path] = (digest, size)
            log.file(key, path, digest, size)
            result.files += 1
            result.bytes += max(size, 0)
        if progress is not None:
            progress(result.files, result.bytes)
        _check_stop(stop)

    for task in _tasks(pending):
        in_flight.append(pool.submit(hash_files, str(bag), task))
        if len(in_flight) >= limit:
            collect(in_flight.pop(0))
    for future in in_flight:
        collect(future)
    stored: PackageVersion = store.read_version(*key)
    findings: list[FixityFinding] = []
    anchored = None if anchored_roots is None else anchored_roots.get(key)
    if anchored is not None and anchored != stored.root:
        findings.append(
            FixityFinding(
                key[0],
                key[1],
                "package.json",
                FindingKind.MANIFEST_ALTERED,
                anchored,
                stored.root,
                detail=f"anchored root {anchored}, package.json root {stored.root}",
            )
        )
    findings.extend(compare(key[0], key[1], stored.entries, actual))
    return findings


__all__ = [
    "AuditResult",
    "FindingKind",
    "FixityFinding",
    "audit_store",
    "compare",
    "count_files",
]
