"""What the ingesting department signs: one version 2 record per file of the package as it
will be stored (its SM3 is the record's digest, its metadata names package, version and
path), and one for the package root. The department computes them from the bag it sends
(:func:`archives.ingest.aip_entries` is deterministic), signs with its own key through
:func:`sdk.record_signing.sign_record`, and the registry checks every signature against
the entries it computes itself before storing anything. Salts derive from the key and the
record's key name, so signing again gives the same records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archives.bag_reader import read_bag
from archives.description import parse_description
from archives.extraction import archive_kind, extract_archive
from archives.hashing import sm3_file
from archives.ingest import aip_entries, package_id_for
from archives.package import ManifestEntry, package_root
from chain.crypto import PrivateKey
from sdk.archive_entries import ROOT_KEY, record_key
from sdk.archive_entries import sign_disposal as sdk_sign_disposal
from sdk.archive_entries import sign_entries as sdk_sign_entries
from sdk.trust_core import signed_headers


@dataclass(frozen=True)
class PackageSubmission:
    """The signed records of one package version, by file path (and ROOT_KEY)."""

    package_id: str
    """The package."""
    version: int
    """The version."""
    root: str
    """The package root."""
    records: dict[str, dict[str, Any]]
    """Path (or ROOT_KEY) → the signed record body (``POST /v1/records`` form)."""

    def to_json(self) -> dict[str, Any]:
        """As sent."""
        return {
            "packageId": self.package_id,
            "version": self.version,
            "root": self.root,
            "records": self.records,
        }


def sign_entries(
    key: PrivateKey,
    chain_id: int,
    package_id: str,
    version: int,
    entries: list[ManifestEntry],
) -> PackageSubmission:
    """Sign a record per entry and one for the root
    (:func:`sdk.archive_entries.sign_entries`)."""
    records = sdk_sign_entries(
        key, chain_id, package_id, version, [(entry.path, entry.sm3) for entry in entries]
    )
    return PackageSubmission(package_id, version, package_root(entries), records)


def sign_disposal(
    key: PrivateKey,
    chain_id: int,
    package_id: str,
    approval: Mapping[str, Any],
    destroyed_roots: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """The owning department's signed disposal (the ``records`` of
    ``POST /v1/archives/packages/{id}/disposal``): one record committing to the package,
    the approval as sent (DisposalApproval.to_json) and the roots of its versions
    (:func:`sdk.archive_entries.sign_disposal`)."""
    return sdk_sign_disposal(key, chain_id, package_id, approval, destroyed_roots)


def upload_headers(
    key: PrivateKey, client_id: str, bag: Path, *, path: str = "/v1/archives/uploads"
) -> dict[str, str]:
    """The headers of a streamed bag upload: the body's SM3 (hashed from the file in
    blocks, never read whole) and the request signature over it."""
    digest, _size = sm3_file(bag)
    headers = signed_headers(
        key, client_id=client_id, method="POST", path=path, body=b"", body_sm3=digest
    )
    return headers | {"X-Lianxin-Content-SM3": digest, "Content-Type": "application/octet-stream"}


def sign_bag(
    source: Path, key: PrivateKey, chain_id: int, scratch: Path, *, version: int = 1
) -> PackageSubmission:
    """The department's side of ingest: read the bag at ``source`` (directory, zip or tar;
    an archive is unpacked into ``scratch``) and sign its records for ``version``."""
    root = source if archive_kind(source) == "directory" else extract_archive(source, scratch)
    reading = read_bag(root)
    reading.require_valid()
    description = parse_description(reading.info)
    entries, _ = aip_entries(reading)
    package_id = package_id_for(description.fonds, description.archival_code)
    return sign_entries(key, chain_id, package_id, version, entries)


__all__ = [
    "ROOT_KEY",
    "PackageSubmission",
    "record_key",
    "sign_bag",
    "sign_disposal",
    "sign_entries",
    "upload_headers",
]
