"""What a department signs for a bag before sending it: the SM3 entry of every file of the
package as the archive will store it, read from the bag the department holds (a
directory, a zip or a tar, streamed in blocks, never whole in memory), and one signed
record per entry plus one for the package root.

The stored bag is the bag sent plus, when it lacks them, an SM3 payload manifest and an
SM3 tag manifest; :func:`stored_bag_entries` says which, once, for the archive's ingest
(:func:`archives.ingest.aip_entries`) and for this side alike, so the root a department
signs is the root the archive computes."""

from __future__ import annotations

import hashlib
import itertools
import os
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, NamedTuple

from chain.crypto import PrivateKey
from sdk.archive_bundle import (
    archive_root,
    disposal_commitment,
    disposal_record_metadata,
    file_record_metadata,
    root_record_metadata,
)
from sdk.errors import SdkError
from sdk.record_signing import sign_record

SM3 = "sm3"
"""The manifest algorithm the archive adds to every package."""

PAYLOAD_MANIFEST = f"manifest-{SM3}.txt"
"""The SM3 payload manifest of a stored bag."""

TAG_MANIFEST = f"tagmanifest-{SM3}.txt"
"""The SM3 tag manifest of a stored bag."""

ROOT_KEY = "#root"
"""The key of the package root's record among a submission's records."""

BLOCK_SIZE = 1024 * 1024
"""Bytes read per block while hashing."""

MAX_INFO_BYTES = 1024 * 1024
"""Largest bag-info.txt read."""


class BagNotReadable(SdkError):
    """The bag given cannot be read as a bag: not a directory, zip or tar; no bagit.txt at
    its top or in its single top-level folder; no 全宗号 or 档号 in bag-info.txt."""


class FileEntry(NamedTuple):
    """One file of a stored bag: its path in the bag (``/``-separated), SM3 (hex), size."""

    path: str
    sm3: str
    size: int


def sm3_hex(data: bytes) -> str:
    """SM3 of ``data`` (hex)."""
    return hashlib.new(SM3, data).hexdigest()


def sm3_stream(stream: IO[bytes]) -> tuple[str, int]:
    """SM3 (hex) and length of what ``stream`` gives, read in blocks."""
    hasher = hashlib.new(SM3)
    size = 0
    while block := stream.read(BLOCK_SIZE):
        size += len(block)
        hasher.update(block)
    return hasher.hexdigest(), size


def sm3_file(path: Path) -> tuple[str, int]:
    """SM3 (hex) and size of the file at ``path``, read in blocks."""
    with path.open("rb") as stream:
        return sm3_stream(stream)


def manifest_text(entries: Iterable[FileEntry]) -> str:
    """A BagIt manifest (``<digest>  <path>`` lines, by path) of ``entries``; raises
    ValueError for a path listed twice."""
    ordered = sorted(entries, key=lambda entry: entry.path)
    for before, after in itertools.pairwise(ordered):
        if before.path == after.path:
            raise ValueError(f"{before.path} is listed twice")
    return "".join(f"{entry.sm3}  {entry.path}\n" for entry in ordered)


def stored_bag_entries(
    payload: Sequence[FileEntry], tags: Mapping[str, FileEntry]
) -> tuple[list[FileEntry], dict[str, str]]:
    """Every file of the bag as stored, from its ``payload`` files and its tag files
    (every file outside ``data/``, by path): the payload, then the tag files by path with
    the SM3 manifests added where the bag lacks them; and the text of those added."""
    tags = dict(tags)
    extra: dict[str, str] = {}
    if PAYLOAD_MANIFEST not in tags:
        extra[PAYLOAD_MANIFEST] = manifest_text(payload)
        data = extra[PAYLOAD_MANIFEST].encode()
        tags[PAYLOAD_MANIFEST] = FileEntry(PAYLOAD_MANIFEST, sm3_hex(data), len(data))
    if TAG_MANIFEST not in tags:
        listed = [entry for name, entry in tags.items() if not name.startswith("tagmanifest-")]
        extra[TAG_MANIFEST] = manifest_text(listed)
        data = extra[TAG_MANIFEST].encode()
        tags[TAG_MANIFEST] = FileEntry(TAG_MANIFEST, sm3_hex(data), len(data))
    return list(payload) + sorted(tags.values()), extra


def parse_bag_info(text: str) -> dict[str, str | list[str]]:
    """bag-info.txt tags as bagit reads them (``Name: value``, indented lines continue
    the value; a repeated name gives a list)."""
    tags: dict[str, str | list[str]] = {}
    name: str | None = None
    value = ""

    def keep() -> None:
        if name is None:
            return
        before = tags.get(name)
        if before is None:
            tags[name] = value
        elif isinstance(before, list):
            before.append(value)
        else:
            tags[name] = [before, value]

    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and name is not None:
            value += " " + line.strip()
            continue
        keep()
        name, _, rest = line.partition(":")
        name, value = name.strip(), rest.strip()
    keep()
    return tags


def package_id_for(fonds: str, archival_code: str) -> str:
    """The package id of 全宗号 + 档号: 32 hex digits of their SM3 (one package per 档号)."""
    return sm3_hex(f"{fonds}\x00{archival_code}".encode())[:32]


@dataclass(frozen=True)
class BagContents:
    """A bag as the archive will store it."""

    package_id: str
    """The package its 全宗号 and 档号 name."""
    entries: list[FileEntry]
    """Every file of the stored bag (payload, tag files, the SM3 manifests added)."""
    info: dict[str, str | list[str]]
    """bag-info.txt."""

    @property
    def root(self) -> str:
        """The package root (hex) the archive will compute."""
        return archive_root([(entry.path, entry.sm3) for entry in self.entries])


def _relative_parts(name: str) -> tuple[str, ...]:
    return tuple(part for part in PurePosixPath(name).parts if part not in ("", ".", "/"))


def _bag_prefix(names: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """The bag root inside an archive: the top if bagit.txt is there, else its single
    top-level folder."""
    names = list(names)
    if ("bagit.txt",) in names:
        return ()
    tops = {parts[0] for parts in names if parts}
    if len(tops) == 1:
        [top] = tops
        if (top, "bagit.txt") in names:
            return (top,)
    raise BagNotReadable("no bagit.txt at the top of the archive or in its single folder")


_Hashed = dict[tuple[str, ...], tuple[str, int]]
_Infos = dict[tuple[str, ...], bytes]


def _hash_member(parts: tuple[str, ...], stream: IO[bytes], hashed: _Hashed, infos: _Infos) -> None:
    """Hash one file; keep the text of a bag-info.txt at the top or one folder down."""
    if parts[-1:] == ("bag-info.txt",) and len(parts) <= 2:
        data = stream.read(MAX_INFO_BYTES + 1)
        if len(data) > MAX_INFO_BYTES:
            raise BagNotReadable(f"bag-info.txt is over {MAX_INFO_BYTES} bytes")
        infos[parts] = data
        hashed[parts] = (sm3_hex(data), len(data))
        return
    hashed[parts] = sm3_stream(stream)


def _hash_directory(root: Path, hashed: _Hashed, infos: _Infos) -> None:
    for directory, _subdirectories, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        for name in files:
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as stream:
                _hash_member((*relative.parts, name), stream, hashed, infos)


def _hash_zip(source: Path, hashed: _Hashed, infos: _Infos) -> None:
    with zipfile.ZipFile(source) as bundle:
        for info in bundle.infolist():
            if info.is_dir():
                continue
            with bundle.open(info) as stream:
                _hash_member(_relative_parts(info.filename), stream, hashed, infos)


def _hash_tar(source: Path, hashed: _Hashed, infos: _Infos) -> None:
    with tarfile.open(source, mode="r:*") as bundle:
        for member in bundle:
            if not member.isfile():
                continue
            stream = bundle.extractfile(member)
            if stream is not None:
                with stream:
                    _hash_member(_relative_parts(member.name), stream, hashed, infos)


def bag_kind(source: Path) -> str:
    """``"directory"``, ``"zip"`` or ``"tar"``; raises BagNotReadable for anything else."""
    if source.is_dir():
        return "directory"
    # The tar test first, as the archive does: an uncompressed tar holding a zip member
    # near its end passes zipfile.is_zipfile too.
    if source.is_file() and tarfile.is_tarfile(source):
        return "tar"
    if source.is_file() and zipfile.is_zipfile(source):
        return "zip"
    raise BagNotReadable(f"{source} is neither a directory, a zip nor a tar file")


def read_bag_contents(source: Path) -> BagContents:
    """The bag at ``source`` (a directory, zip or tar) as the archive will store it: every
    file hashed with SM3 in one streamed read. Raises BagNotReadable."""
    kind = bag_kind(source)
    hashed: _Hashed = {}
    infos: _Infos = {}
    try:
        if kind == "directory":
            _hash_directory(source, hashed, infos)
        elif kind == "zip":
            _hash_zip(source, hashed, infos)
        else:
            _hash_tar(source, hashed, infos)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise BagNotReadable(f"{source.name} cannot be read: {exc}") from exc
    prefix = _bag_prefix(hashed)
    text = infos.get((*prefix, "bag-info.txt"))
    if text is None:
        raise BagNotReadable("the bag has no bag-info.txt")
    info = parse_bag_info(text.decode("utf-8-sig", errors="replace"))
    payload: list[FileEntry] = []
    tags: dict[str, FileEntry] = {}
    for parts, (digest, size) in sorted(hashed.items()):
        if parts[: len(prefix)] != prefix:
            continue
        path = "/".join(parts[len(prefix) :])
        if parts[len(prefix)] == "data":
            payload.append(FileEntry(path, digest, size))
        else:
            tags[path] = FileEntry(path, digest, size)
    fonds, code = info.get("全宗号"), info.get("档号")
    if not isinstance(fonds, str) or not isinstance(code, str):
        raise BagNotReadable("bag-info.txt names no single 全宗号 and 档号")
    entries, _extra = stored_bag_entries(payload, tags)
    return BagContents(package_id_for(fonds.strip(), code.strip()), entries, info)


def record_key(package_id: str, version: int, name: str) -> str:
    """The idempotency key a package record is signed and stored under."""
    return f"archive:{package_id}:v{version}:{name}"


def sign_entries(
    key: PrivateKey,
    chain_id: int,
    package_id: str,
    version: int,
    entries: Sequence[tuple[str, str]],
) -> dict[str, dict[str, Any]]:
    """The department's records of one package version: one per ``(path, sm3)`` entry and
    one for the root under :data:`ROOT_KEY`, each signed by ``key`` for ``chain_id`` (the
    ``records`` of an ingest or a migration)."""
    records: dict[str, dict[str, Any]] = {}
    for path, digest in entries:
        records[path] = sign_record(
            key,
            chain_id,
            idempotency_key=record_key(package_id, version, path),
            digest=digest,
            metadata=file_record_metadata(package_id, version, path),
        ).body
    records[ROOT_KEY] = sign_record(
        key,
        chain_id,
        idempotency_key=record_key(package_id, version, ROOT_KEY),
        digest=archive_root(list(entries)),
        metadata=root_record_metadata(package_id, version),
    ).body
    return records


def sign_disposal(
    key: PrivateKey,
    chain_id: int,
    package_id: str,
    approval: Mapping[str, Any],
    destroyed_roots: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """The owning department's signed disposal (the ``records`` of a disposal): one
    record committing to the package, the approval as sent and the roots of its
    versions."""
    signed = sign_record(
        key,
        chain_id,
        idempotency_key=f"archive:{package_id}:disposal",
        digest=disposal_commitment(package_id, approval, destroyed_roots),
        metadata=disposal_record_metadata(package_id),
    )
    return {"disposal": signed.body}


__all__ = [
    "PAYLOAD_MANIFEST",
    "ROOT_KEY",
    "TAG_MANIFEST",
    "BagContents",
    "BagNotReadable",
    "FileEntry",
    "bag_kind",
    "manifest_text",
    "package_id_for",
    "parse_bag_info",
    "read_bag_contents",
    "record_key",
    "sign_disposal",
    "sign_entries",
    "sm3_file",
    "sm3_stream",
    "stored_bag_entries",
]
