"""A package's fixity: the SM3 manifest entries of its files (payload and tag) and the
package root, the SM3 Merkle root (chain.merkle, RFC 6962 style) over those entries in path
order. Each leaf binds a path to its digest, so a renamed file changes the root as surely
as a changed one; the inclusion proof of one entry shows that file belongs to the package."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from chain.merkle import MerkleProof, MerkleTree, verify_proof
from chain.primitives import Hash32
from sdk.archive_bundle import ARCHIVE_ENTRY_PREFIX, archive_entry_leaf, archive_root
from sdk.archive_entries import FileEntry
from sdk.archive_entries import manifest_text as sdk_manifest_text

ENTRY_PREFIX = ARCHIVE_ENTRY_PREFIX
"""Domain separation of a manifest entry leaf (defined with the offline verifier)."""


@dataclass(frozen=True, order=True)
class ManifestEntry:
    """One file of a package: path and SM3."""

    path: str
    """Path inside the bag, ``/``-separated."""
    sm3: str
    """SM3 of the file (hex)."""
    size: int = -1
    """Bytes (-1 where unknown, as in a manifest line)."""

    def leaf(self) -> bytes:
        """The Merkle leaf: prefix, UTF-8 path, NUL, the 32-byte digest."""
        return archive_entry_leaf(self.path, self.sm3)

    def to_json(self) -> dict[str, str | int]:
        """As exported."""
        return {"path": self.path, "sm3": self.sm3, "size": self.size}


def sorted_entries(entries: Sequence[ManifestEntry]) -> list[ManifestEntry]:
    """Entries in the one order the root is computed over: by path, each path once."""
    ordered = sorted(entries, key=lambda entry: entry.path)
    for before, after in itertools.pairwise(ordered):
        if before.path == after.path:
            raise ValueError(f"{before.path} is listed twice")
    return ordered


def package_tree(entries: Sequence[ManifestEntry]) -> MerkleTree:
    """The Merkle tree over the entries in path order."""
    return MerkleTree.build([entry.leaf() for entry in sorted_entries(entries)])


def package_root(entries: Sequence[ManifestEntry]) -> str:
    """The package root (hex), as the offline verifier computes it."""
    return archive_root([(entry.path, entry.sm3) for entry in entries])


def entry_proof(entries: Sequence[ManifestEntry], path: str) -> MerkleProof:
    """The inclusion proof of the entry of ``path``; raises KeyError if absent."""
    ordered = sorted_entries(entries)
    for index, entry in enumerate(ordered):
        if entry.path == path:
            return package_tree(ordered).prove(index)
    raise KeyError(path)


def verify_entry(root: str, entry: ManifestEntry, proof: MerkleProof, leaf_count: int) -> None:
    """Raise chain.errors.ChainError unless ``entry`` is in the package of ``root``."""
    verify_proof(Hash32(bytes.fromhex(root)), entry.leaf(), proof, leaf_count=leaf_count)


def manifest_text(entries: Sequence[ManifestEntry]) -> str:
    """A BagIt manifest (``<digest>  <path>`` lines) of the entries."""
    return sdk_manifest_text(FileEntry(entry.path, entry.sm3, entry.size) for entry in entries)


__all__ = [
    "ENTRY_PREFIX",
    "ManifestEntry",
    "entry_proof",
    "manifest_text",
    "package_root",
    "package_tree",
    "sorted_entries",
    "verify_entry",
]
