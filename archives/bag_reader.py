"""The one door to the Library of Congress ``bagit`` package: opening a bag, its structural
checks (bagit.txt, payload and tag manifests, Payload-Oxum, completeness) and making bags.

**How bagit learns SM3.** bagit finds manifests by trying ``manifest-<alg>.txt`` for each
``alg`` in its module table ``CHECKSUM_ALGOS`` (``hashlib.algorithms_guaranteed``, which has no
SM3), and hashes with ``hashlib.new(alg)``. OpenSSL 3 provides SM3 to ``hashlib.new("sm3")``,
so the hashing already works; only the table lookup misses it. :class:`_Sm3Bag` subclasses
``bagit.Bag`` and looks for manifests over that table plus ``sm3``, leaving the module table
itself alone (no process-wide switch). :func:`make_bag` passes ``sm3`` to ``bagit.make_bag``,
which then writes ``manifest-sm3.txt`` and ``tagmanifest-sm3.txt`` with OpenSSL's SM3.

**How it is fast.** bagit's own validation hashes every file for every manifest algorithm.
:func:`read_bag` lets bagit do everything except that (``completeness_only=True``), then
reads each file ONCE, in a process pool, computing every algorithm the bag's manifests name
plus SM3 in the same pass, and compares against the entries bagit parsed. The outcome is what
``bag.validate()`` decides, and the SM3 manifest the archive adds costs no second read. The
same pass opens each payload file (the 四性 usability check), within the package's reading
budget (:class:`archives.usability.ReadingBudget`), which the pool's workers share.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]

from archives.errors import BagInvalid, BagUnreadable, UnsafeArchive
from archives.formats import SNIFF_BYTES, FormatIdentity, identify
from archives.hashing import SM3, scan_file
from archives.usability import BudgetSpent, NotUsable, ReadingBudget, open_scanned
from archives.worker_pools import process_pool

SMALL_BAG_FILES = 64
"""Bags with fewer files are hashed in this process: a pool costs more than it saves."""


class _Sm3Bag(bagit.Bag):  # type: ignore[misc]
    """``bagit.Bag`` that also finds ``manifest-sm3.txt`` and ``tagmanifest-sm3.txt``."""

    _algorithms = frozenset(bagit.CHECKSUM_ALGOS) | {SM3}

    def manifest_files(self) -> Iterator[str]:
        for algorithm in sorted(self._algorithms):
            path = os.path.join(self.path, f"manifest-{algorithm}.txt")
            if os.path.isfile(path):
                yield path

    def tagmanifest_files(self) -> Iterator[str]:
        for algorithm in sorted(self._algorithms):
            path = os.path.join(self.path, f"tagmanifest-{algorithm}.txt")
            if os.path.isfile(path):
                yield path


@dataclass(frozen=True)
class BagFile:
    """One file of a bag as read: where, how big, its SM3."""

    path: str
    """Path inside the bag, ``/``-separated (``data/...`` for payload)."""
    size: int
    """Bytes."""
    sm3: str
    """SM3 of its contents (hex)."""
    identity: FormatIdentity | None = None
    """Its format, identified by content in the same pass (payload files only)."""
    opened: tuple[bool | None, str] | None = None
    """Whether it opened as its (allowed) format and what was read or why not, found by
    the worker that hashed it, from the same read for text (payload files only); None
    instead of True or False if it was not checked: the package's reading budget was spent
    before it was read, or while it was being read."""

    @property
    def is_payload(self) -> bool:
        """True for a payload file (under ``data/``)."""
        return self.path.startswith("data/")


@dataclass(frozen=True)
class DigestMismatch:
    """A manifest entry whose file does not hash to the recorded value."""

    path: str
    """The file."""
    algorithm: str
    """The manifest's algorithm."""
    expected: str
    """What the manifest says."""
    found: str
    """What the file hashes to (or why it could not be read)."""


@dataclass(frozen=True)
class BagReading:
    """Everything read from one bag. ``problems`` empty means it validates as bagit would."""

    root: Path
    """The bag's directory."""
    version: str
    """BagIt-Version of bagit.txt."""
    info: dict[str, str | list[str]]
    """bag-info.txt tags (a repeated tag gives a list)."""
    algorithms: tuple[str, ...]
    """Manifest algorithms found (payload and tag)."""
    files: tuple[BagFile, ...]
    """Payload files, then tag files, each sorted by path."""
    structure_problems: tuple[str, ...]
    """bagit's structural findings: bagit.txt, Payload-Oxum, files missing from or not
    listed in the manifests."""
    mismatches: tuple[DigestMismatch, ...]
    """Manifest entries whose digest does not match."""
    budget: ReadingBudget | None = None
    """The reading budget its payload files were opened within: what is left of it bounds
    any of them opened again for this reading."""

    @property
    def problems(self) -> tuple[str, ...]:
        """Every finding as text."""
        return self.structure_problems + tuple(
            f"{m.path}: {m.algorithm} expected {m.expected}, found {m.found}"
            for m in self.mismatches
        )

    @property
    def payload(self) -> tuple[BagFile, ...]:
        """The payload files."""
        return tuple(file for file in self.files if file.is_payload)

    def require_valid(self) -> None:
        """Raise BagInvalid unless the bag validated."""
        if self.problems:
            raise BagInvalid("the bag does not validate", self.problems)


_Opened = tuple[bool | None, str]
_Hashed = tuple[str, dict[str, str], int, FormatIdentity | None, _Opened | None]
_Work = tuple[str, str, tuple[str, ...], ReadingBudget]


def _open(
    path: Path, identity: FormatIdentity, holds_nul: bool, budget: ReadingBudget
) -> _Opened | None:
    if not identity.allowed:
        return None
    try:
        return True, open_scanned(path, identity, holds_nul=holds_nul, budget=budget)
    except NotUsable as exc:
        return False, str(exc)
    except BudgetSpent as exc:
        return None, str(exc)
    except OSError as exc:
        return False, f"unreadable: {exc}"


def _hash_entry(arguments: _Work) -> _Hashed:
    # Identifying the format and opening the file (the 四性 usability check) here puts them
    # on the worker processes, beside the one read; a text file is not read again.
    root, path, algorithms, budget = arguments
    full = Path(root) / path
    try:
        payload = path.startswith("data/")
        digests, size, holds_nul, head = scan_file(
            full, (*algorithms, SM3), keep=SNIFF_BYTES if payload else 0
        )
        identity = identify(full, head) if payload else None
    except OSError as exc:
        return path, {"error": f"unreadable: {exc.strerror or exc}"}, -1, None, None
    opened = None if identity is None else _open(full, identity, holds_nul, budget)
    return path, digests, size, identity, opened


def _refuse_links(root: Path) -> None:
    for directory, subdirectories, names in os.walk(root):
        for name in (*subdirectories, *names):
            entry = Path(directory) / name
            if entry.is_symlink() or not (entry.is_file() or entry.is_dir()):
                raise UnsafeArchive(f"{entry.relative_to(root)} is a link or special file")


def _bagit_details(error: bagit.BagError) -> tuple[str, ...]:
    details = getattr(error, "details", None) or []
    if details:
        return tuple(str(detail) for detail in details)
    return (str(error),)


def read_bag(root: Path, *, processes: int = 1, read_budget: float | None = None) -> BagReading:
    """Open and check the bag in directory ``root``: bagit's structure checks, then every
    manifest entry (payload and tag) hashed in ``processes`` worker processes, one read per
    file, SM3 computed alongside, each payload file opened within ``read_budget`` seconds
    for them all (:data:`archives.usability.READ_BUDGET_SECONDS` if None), counted from
    here. Raises BagUnreadable if it is not a bag bagit can open, UnsafeArchive for a link
    or special file inside; otherwise reports what failed in the returned reading (see
    :meth:`BagReading.require_valid`)."""
    _refuse_links(root)
    try:
        bag = _Sm3Bag(str(root))
    except bagit.BagError as exc:
        raise BagUnreadable(str(exc)) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BagUnreadable(f"a tag file or manifest cannot be read: {exc}") from exc
    structure: list[str] = []
    try:
        bag.validate(completeness_only=True)
    except bagit.BagError as exc:
        structure.extend(_bagit_details(exc))
    except (OSError, ValueError) as exc:
        structure.append(f"bag structure: {exc}")
    entries: dict[str, dict[str, str]] = bag.entries
    budget = ReadingBudget.start(read_budget)
    work = [
        (str(root), bag.normalized_filesystem_names.get(path, path), tuple(sorted(hashes)), budget)
        for path, hashes in sorted(entries.items())
    ]
    results = _hash_all(work, processes)
    mismatches: list[DigestMismatch] = []
    files: list[BagFile] = []
    for manifest_path, (_, digests, size, identity, opened) in zip(
        sorted(entries), results, strict=True
    ):
        expected = entries[manifest_path]
        if "error" in digests:
            mismatches.extend(
                DigestMismatch(manifest_path, algorithm, value.lower(), digests["error"])
                for algorithm, value in sorted(expected.items())
            )
            continue
        for algorithm, value in sorted(expected.items()):
            if value.lower() != digests[algorithm]:
                mismatches.append(
                    DigestMismatch(manifest_path, algorithm, value.lower(), digests[algorithm])
                )
        files.append(BagFile(manifest_path, size, digests[SM3], identity, opened))
    payload = sorted((f for f in files if f.is_payload), key=lambda f: f.path)
    tags = sorted((f for f in files if not f.is_payload), key=lambda f: f.path)
    return BagReading(
        root=root,
        version=str(bag.tags.get("BagIt-Version", "")),
        info=_info(bag.info),
        algorithms=tuple(bag.algorithms),
        files=(*payload, *tags),
        structure_problems=tuple(structure),
        mismatches=tuple(mismatches),
        budget=budget,
    )


def _info(raw: dict[str, Any]) -> dict[str, str | list[str]]:
    return {
        str(key): [str(v) for v in value] if isinstance(value, list) else str(value)
        for key, value in raw.items()
    }


def _hash_all(work: Sequence[_Work], processes: int) -> list[_Hashed]:
    if processes <= 1 or len(work) < SMALL_BAG_FILES:
        return [_hash_entry(item) for item in work]
    # Forked, as by the default context on Linux up to Python 3.13 (3.14's forkserver would
    # not be the workers' parent); they end on their own should this process die first.
    with process_pool(processes, multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_hash_entry, work, chunksize=max(1, len(work) // (processes * 8))))


def make_bag(
    directory: Path, info: dict[str, str], *, checksums: Sequence[str] = ("sha256", SM3)
) -> None:
    """Turn ``directory`` into a bag in place with bagit (payload moved under ``data/``),
    bag-info.txt from ``info``, payload and tag manifests for ``checksums``."""
    bagit.make_bag(str(directory), dict(info), checksums=list(checksums))


def bagit_validate(root: Path, *, processes: int = 1) -> tuple[str, ...]:
    """bagit's own full validation (every algorithm, every file), SM3 manifests included:
    the problems it reports, none if valid. The reference :func:`read_bag` is measured and
    tested against."""
    try:
        _Sm3Bag(str(root)).validate(processes=processes)
    except bagit.BagError as exc:
        return _bagit_details(exc)
    return ()


__all__ = [
    "BagFile",
    "BagReading",
    "DigestMismatch",
    "bagit_validate",
    "make_bag",
    "read_bag",
]
