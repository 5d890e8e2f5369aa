"""Access copies (DIP) of archive packages, verified offline down to each file.

A DIP is a zip: ``dip.json`` (the package's description, its SM3 entries and root, each
file's anchored record with the salt disclosing its metadata and its proof bundle, the
package root's record, the custody events) and ``files/<path>`` for every entry. What
:func:`verify_dip` checks, with no network, against the validator set and chain id the
caller trusts:

1. every file in the zip hashes (SM3) to its entry, and no entry lacks its file;
2. the entries' SM3 Merkle root (:func:`archive_root`) is the package root;
3. each file's record: its digest is the file's SM3, its salted metadata hash opens to
   ``{"kind": "archive-file", "packageId", "version", "path"}`` of that very file, and its
   proof bundle verifies through the one bundle verifier (:func:`sdk.bundle.verify_bundle`);
4. the package root's record likewise (digest = root);
5. the custody events form one hash chain (:func:`archive_event_hash`), and each event
   carrying a proof bundle is anchored with its hash as digest.

The leaf and event hash formats are defined here, once; the archive domain builds on them.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chain.bounded_json import loads_bounded
from chain.commit import ValidatorSet
from chain.crypto import sm3
from chain.errors import ChainError
from chain.limits import MIB
from chain.merkle import merkle_root
from sdk.bundle import ProofBundle, verify_bundle
from sdk.bundle_links import BundleFormatError
from sdk.commitments import canonical_json, salted_metadata_hash
from sdk.errors import SdkError

DIP_FORMAT = "lianxin-dip/v1"
"""The ``format`` of dip.json."""

DIP_INDEX = "dip.json"
"""The index member of a DIP."""

FILES_PREFIX = "files/"
"""Where a DIP keeps the package's files."""

ARCHIVE_ENTRY_PREFIX = b"lianxin/archive-entry/v1\x00"
"""Domain separation of a package manifest entry (a leaf of the package root)."""

MAX_DIP_INDEX_BYTES = 256 * MIB
"""Largest dip.json read."""

MAX_DIP_MEMBERS = 500_000
"""Most members of a DIP."""

HASH_BLOCK = 1024 * 1024
"""Bytes hashed per read."""


class DipInvalid(SdkError):
    """A DIP that cannot be read as one (not a zip, no or malformed dip.json)."""


def archive_entry_leaf(path: str, sm3_hex: str) -> bytes:
    """The leaf of one manifest entry: prefix, UTF-8 path, NUL, the 32-byte SM3."""
    digest = bytes.fromhex(sm3_hex)
    if len(digest) != 32:
        raise ValueError("an SM3 digest is 32 bytes")
    return ARCHIVE_ENTRY_PREFIX + path.encode() + b"\x00" + digest


def archive_root(entries: Sequence[tuple[str, str]]) -> str:
    """The package root (hex): SM3 Merkle root (chain.merkle) over the ``(path, sm3)``
    entries' leaves in path order. Raises ValueError for a path listed twice."""
    ordered = sorted(entries)
    paths = [path for path, _ in ordered]
    if len(set(paths)) != len(paths):
        raise ValueError("a path is listed twice")
    return bytes(merkle_root([archive_entry_leaf(p, d) for p, d in ordered])).hex()


def archive_event_hash(event: Mapping[str, Any]) -> str:
    """SM3 (hex) of a custody event's RFC 8785 JSON."""
    return bytes(sm3(canonical_json(dict(event)))).hex()


def file_record_metadata(package_id: str, version: int, path: str) -> dict[str, Any]:
    """The metadata of the record that anchors one file of a package version."""
    return {"kind": "archive-file", "packageId": package_id, "version": version, "path": path}


def root_record_metadata(package_id: str, version: int) -> dict[str, Any]:
    """The metadata of the record that anchors a package version's root."""
    return {"kind": "archive-package", "packageId": package_id, "version": version}


def event_record_metadata(package_id: str) -> dict[str, Any]:
    """The metadata of the record that anchors a custody event of a package."""
    return {"kind": "archive-event", "packageId": package_id}


DISPOSAL_PREFIX = b"lianxin/archive-disposal/v1\x00"
"""Domain separation of a disposal's commitment."""


def disposal_record_metadata(package_id: str) -> dict[str, Any]:
    """The metadata of the record by which the owning department signs a disposal."""
    return {"kind": "archive-disposal", "packageId": package_id}


def disposal_commitment(
    package_id: str, approval: Mapping[str, Any], destroyed_roots: Sequence[str]
) -> str:
    """What the owning department signs to dispose of a package (hex SM3): the package,
    the approval as sent (approvalId, approvedBy, approvedAt, reason) and the roots of
    every version it destroys, in version order, in canonical JSON after a prefix."""
    body = {
        "packageId": package_id,
        "approval": dict(approval),
        "destroyedRoots": list(destroyed_roots),
    }
    return sm3(DISPOSAL_PREFIX + canonical_json(body)).hex()


@dataclass(frozen=True)
class ItemCheck:
    """The outcome for one file, the root, or one event."""

    subject: str
    """The file's path, ``package root``, or ``event <n>``."""
    ok: bool
    """Whether every check on it held."""
    detail: str
    """What held, or what failed."""


@dataclass(frozen=True)
class DipVerdict:
    """Everything :func:`verify_dip` checked."""

    package_id: str
    """The package."""
    version: int
    """Its version."""
    root: str
    """Its root (hex)."""
    description: dict[str, Any]
    """Its archival description."""
    checks: tuple[ItemCheck, ...] = field(default_factory=tuple)
    """One per file, then the root, then each event."""

    @property
    def valid(self) -> bool:
        """Every check held."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[ItemCheck, ...]:
        """The checks that failed."""
        return tuple(check for check in self.checks if not check.ok)


def _sm3_stream(stream: IO[bytes]) -> tuple[str, int]:
    hasher = hashlib.new("sm3")
    size = 0
    while block := stream.read(HASH_BLOCK):
        size += len(block)
        hasher.update(block)
    return hasher.hexdigest(), size


def _record_check(
    subject: str,
    record: Any,
    *,
    digest: str,
    metadata: dict[str, Any],
    validator_set: ValidatorSet,
    chain_id: int,
    notary: bytes | None,
) -> ItemCheck:
    try:
        bundle = ProofBundle.from_json(record["bundle"])
        salt = bytes.fromhex(str(record["metadataSalt"]))
        opened = record["metadata"]
    except (KeyError, TypeError, ValueError, BundleFormatError) as exc:
        return ItemCheck(subject, False, f"no readable record: {exc}")
    if opened != metadata:
        return ItemCheck(subject, False, f"the record's metadata {opened} is not {metadata}")
    try:
        if salted_metadata_hash(opened, salt) != bundle.record.metadata_hash:
            return ItemCheck(subject, False, "the metadata does not open the record's hash")
    except ValueError as exc:
        return ItemCheck(subject, False, f"bad metadata salt: {exc}")
    verdict = verify_bundle(
        bundle,
        validator_set,
        chain_id=chain_id,
        expected_digest=bytes.fromhex(digest),
        notary=notary,
    )
    if not verdict.valid:
        failed = "; ".join(f"{c.link.value}: {c.detail}" for c in verdict.failures)
        return ItemCheck(subject, False, f"proof bundle does not verify: {failed}")
    signer = verdict.signed_by
    by = f", signed by {signer.name} ({signer.uscc})" if signer is not None else ""
    return ItemCheck(subject, True, f"SM3 {digest} anchored at block {bundle.header.height}{by}")


def _read_index(bundle: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = bundle.getinfo(DIP_INDEX)
    except KeyError:
        raise DipInvalid(f"no {DIP_INDEX}") from None
    if info.file_size > MAX_DIP_INDEX_BYTES:
        raise DipInvalid(f"{DIP_INDEX} is over {MAX_DIP_INDEX_BYTES} bytes")
    try:
        index = loads_bounded(bundle.read(info), max_bytes=MAX_DIP_INDEX_BYTES)
    except (ChainError, ValueError) as exc:
        raise DipInvalid(f"{DIP_INDEX} is not valid JSON: {exc}") from exc
    if not isinstance(index, dict) or index.get("format") != DIP_FORMAT:
        raise DipInvalid(f"{DIP_INDEX} is not a {DIP_FORMAT} index")
    return index


def verify_dip(
    path: Path,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    notary: bytes | None = None,
) -> DipVerdict:
    """Verify the DIP zip at ``path`` offline (see the module docstring). Raises DipInvalid
    if it cannot be read as a DIP; otherwise every finding is in the verdict."""
    try:
        bundle = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DipInvalid(f"{path.name} is not a zip: {exc}") from exc
    with bundle:
        if len(bundle.infolist()) > MAX_DIP_MEMBERS:
            raise DipInvalid(f"more than {MAX_DIP_MEMBERS} members")
        index = _read_index(bundle)
        try:
            package_id = str(index["packageId"])
            version = int(index["version"])
            root = str(index["root"])
            entries = [(str(e["path"]), str(e["sm3"]).lower()) for e in index["entries"]]
            records = dict(index["records"])
            events = list(index.get("events", []))
        except (KeyError, TypeError, ValueError) as exc:
            raise DipInvalid(f"{DIP_INDEX} lacks {exc}") from exc
        members = {name for name in bundle.namelist() if name.startswith(FILES_PREFIX)}
        checks: list[ItemCheck] = []
        for file_path, digest in sorted(entries):
            member = FILES_PREFIX + file_path
            if member not in members:
                checks.append(ItemCheck(file_path, False, "listed but not in the DIP"))
                continue
            members.discard(member)
            with bundle.open(member) as stream:
                actual, _ = _sm3_stream(stream)
            if actual != digest:
                checks.append(
                    ItemCheck(file_path, False, f"SM3 {actual}, the manifest says {digest}")
                )
                continue
            checks.append(
                _record_check(
                    file_path,
                    records.get(file_path),
                    digest=digest,
                    metadata=file_record_metadata(package_id, version, file_path),
                    validator_set=validator_set,
                    chain_id=chain_id,
                    notary=notary,
                )
            )
        checks.extend(
            ItemCheck(name.removeprefix(FILES_PREFIX), False, "in the DIP but in no entry")
            for name in sorted(members)
            if not name.endswith("/")
        )
        try:
            computed = archive_root(entries)
        except ValueError as exc:
            computed = f"none ({exc})"
        if computed != root:
            checks.append(ItemCheck("package root", False, f"entries give {computed}, not {root}"))
        else:
            checks.append(
                _record_check(
                    "package root",
                    index.get("rootRecord"),
                    digest=root,
                    metadata=root_record_metadata(package_id, version),
                    validator_set=validator_set,
                    chain_id=chain_id,
                    notary=notary,
                )
            )
        checks.extend(_event_checks(package_id, events, validator_set, chain_id, notary))
        description = index.get("description")
        return DipVerdict(
            package_id=package_id,
            version=version,
            root=root,
            description=dict(description) if isinstance(description, dict) else {},
            checks=tuple(checks),
        )


def _event_checks(
    package_id: str,
    events: list[Any],
    validator_set: ValidatorSet,
    chain_id: int,
    notary: bytes | None,
) -> list[ItemCheck]:
    checks: list[ItemCheck] = []
    previous = "0" * 64
    for position, wrapper in enumerate(events):
        subject = f"event {position}"
        try:
            event = dict(wrapper["event"])
            linked = event["previous"] == previous and event["sequence"] == position
        except (KeyError, TypeError, ValueError) as exc:
            checks.append(ItemCheck(subject, False, f"not an event: {exc}"))
            break
        if not linked or event.get("packageId") != package_id:
            checks.append(ItemCheck(subject, False, "does not follow the event before it"))
            break
        digest = archive_event_hash(event)
        previous = digest
        record = wrapper.get("record")
        if record is None:
            checks.append(
                ItemCheck(subject, True, f"{event.get('eventType')}: linked, not anchored")
            )
            continue
        checks.append(
            _record_check(
                subject,
                record,
                digest=digest,
                metadata=event_record_metadata(package_id),
                validator_set=validator_set,
                chain_id=chain_id,
                notary=notary,
            )
        )
    return checks


__all__ = [
    "ARCHIVE_ENTRY_PREFIX",
    "DIP_FORMAT",
    "DIP_INDEX",
    "DISPOSAL_PREFIX",
    "FILES_PREFIX",
    "DipInvalid",
    "DipVerdict",
    "ItemCheck",
    "archive_entry_leaf",
    "archive_event_hash",
    "archive_root",
    "disposal_commitment",
    "disposal_record_metadata",
    "event_record_metadata",
    "file_record_metadata",
    "root_record_metadata",
    "verify_dip",
]
