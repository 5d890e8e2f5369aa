"""Streaming file digests: SM3 (GB/T 32905, ``hashlib.new("sm3")`` from OpenSSL 3) and any
algorithm a bag's manifests name, all from ONE read of the file, in fixed-size blocks, so
memory stays flat whatever the file size. Worker functions are module-level so a process
pool can run them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

SM3 = "sm3"
"""The manifest algorithm name this system adds to every package (``manifest-sm3.txt``)."""

BLOCK_SIZE = 1024 * 1024
"""Bytes read per block: large enough to keep hashlib in C, small enough to stay flat."""


def new_hasher(algorithm: str) -> hashlib._Hash:
    """A fresh hasher for a manifest algorithm name (``sm3``, ``sha256``, ``md5`` ...);
    raises ValueError for a name OpenSSL does not know."""
    return hashlib.new(algorithm)


def scan_file(
    path: Path, algorithms: Iterable[str], *, keep: int = 0
) -> tuple[dict[str, str], int, bool, bytes]:
    """Hex digests of ``path`` under each algorithm, its size in bytes, whether it holds a
    NUL byte (what the 四性 check asks of a text file) and its first ``keep`` bytes (what
    format identification reads), from one streaming read. Raises OSError if the file
    cannot be read."""
    hashers = {name: new_hasher(name) for name in algorithms}
    size = 0
    holds_nul = False
    head = b""
    with path.open("rb") as stream:
        while block := stream.read(BLOCK_SIZE):
            if size < keep:
                head += block[: keep - size]
            size += len(block)
            holds_nul = holds_nul or b"\x00" in block
            for hasher in hashers.values():
                hasher.update(block)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}, size, holds_nul, head


def file_digests(path: Path, algorithms: Iterable[str]) -> tuple[dict[str, str], int]:
    """Hex digests of ``path`` under each algorithm, and its size in bytes, from one
    streaming read. Raises OSError if the file cannot be read."""
    digests, size, _holds_nul, _head = scan_file(path, algorithms)
    return digests, size


def sm3_file(path: Path) -> tuple[str, int]:
    """SM3 (hex) and size of ``path``, streamed."""
    digests, size = file_digests(path, (SM3,))
    return digests[SM3], size


def sm3_hex(data: bytes) -> str:
    """SM3 of ``data`` as hex."""
    return hashlib.new(SM3, data).hexdigest()


def hash_files(root: str, paths: list[str]) -> list[tuple[str, str, int]]:
    """SM3 and size of each of ``paths`` under ``root`` (a process-pool task of the fixity
    audit); a file that cannot be read gives an empty digest and size -1."""
    results: list[tuple[str, str, int]] = []
    for path in paths:
        try:
            digest, size = sm3_file(Path(root) / path)
        except OSError:
            digest, size = "", -1
        results.append((path, digest, size))
    return results


__all__ = [
    "BLOCK_SIZE",
    "SM3",
    "file_digests",
    "hash_files",
    "new_hasher",
    "scan_file",
    "sm3_file",
    "sm3_hex",
]
