"""The upload spool of an archive store: bags (zip or tar) arriving over the network are
written here block by block, never held whole in memory, under a hard size cap checked as
each block arrives, and hashed (SM3) on the way. An upload over the cap, or whose bytes do
not hash to what the sender declared, is removed at once: nothing of it stays.

A finished upload waits, named by its owner and a random id, until the ingest or migration
that uses it (which removes it), or until it expires (:meth:`UploadSpool.purge_expired`).
A file still being written carries the ``.part`` suffix."""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from archives.errors import ArchiveError
from archives.hashing import SM3, new_hasher

PART_SUFFIX = ".part"
"""The suffix of an upload still being written."""

UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
"""An upload id: 32 lower-case hex digits."""

OWNER = re.compile(r"[A-Za-z0-9-]{1,36}")
"""An owner (a client id)."""


class UploadTooLarge(ArchiveError):
    """An upload past the spool's size cap (removed)."""

    code = "payload_too_large"


class UploadDigestMismatch(ArchiveError):
    """An upload whose bytes do not hash to the SM3 its sender declared (removed)."""

    code = "body_digest_mismatch"


class TooManyUploads(ArchiveError):
    """An owner with as many unused uploads as the spool keeps for one owner."""

    code = "too_many_uploads"


class UploadNotFound(ArchiveError):
    """No finished upload of that id for that owner (never made, used, or expired)."""

    code = "upload_not_found"


@dataclass(frozen=True)
class SpooledUpload:
    """A finished upload."""

    upload_id: str
    """Its id."""
    owner: str
    """Who sent it."""
    path: Path
    """Where it is."""
    size: int
    """Its bytes."""
    sm3: str
    """Its SM3 (hex)."""


class SpoolWriter:
    """One upload being written: :meth:`write` each block, then :meth:`finish`; any error
    (and :meth:`abort`) removes the partial file."""

    def __init__(self, upload_id: str, owner: str, final: Path, max_bytes: int) -> None:
        """Write ``final`` + ``.part`` (created exclusively), at most ``max_bytes``."""
        self.upload_id = upload_id
        self.owner = owner
        self.final = final
        self.partial = final.with_name(final.name + PART_SUFFIX)
        self.max_bytes = max_bytes
        self.size = 0
        self._hasher = new_hasher(SM3)
        self._stream: BinaryIO | None = open(self.partial, "xb")  # noqa: SIM115

    def write(self, block: bytes) -> None:
        """Append ``block``; raises UploadTooLarge (and removes the file) past the cap."""
        if self._stream is None:
            raise ArchiveError("the upload is closed")
        if self.size + len(block) > self.max_bytes:
            self.abort()
            raise UploadTooLarge(f"the upload is larger than {self.max_bytes} bytes")
        self._stream.write(block)
        self._hasher.update(block)
        self.size += len(block)

    def finish(self, declared_sm3: str | None) -> SpooledUpload:
        """Close the upload; raises UploadDigestMismatch (and removes it) when its SM3 is
        not ``declared_sm3`` (if given)."""
        if self._stream is None:
            raise ArchiveError("the upload is closed")
        digest = self._hasher.hexdigest()
        if declared_sm3 is not None and digest != declared_sm3.lower():
            self.abort()
            raise UploadDigestMismatch(
                f"the body hashes to SM3 {digest}, not the declared {declared_sm3}"
            )
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        self._stream = None
        os.replace(self.partial, self.final)
        return SpooledUpload(self.upload_id, self.owner, self.final, self.size, digest)

    def abort(self) -> None:
        """Stop and remove what was written."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self.partial.unlink(missing_ok=True)


class UploadSpool:
    """The spool directory of one archive store."""

    def __init__(self, root: Path, *, max_bytes: int, ttl_s: float, max_pending: int = 8) -> None:
        """Spool under ``root`` (created), uploads of at most ``max_bytes``, kept
        ``ttl_s`` seconds unless used, at most ``max_pending`` at a time per owner."""
        self.root = root
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.max_pending = max_pending
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, owner: str, upload_id: str) -> Path:
        if not OWNER.fullmatch(owner) or not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(f"no upload {upload_id!r}")
        return self.root / f"{upload_id}.{owner}"

    def pending(self, owner: str) -> int:
        """Uploads of ``owner`` in the spool (finished and unused, or being written)."""
        if not OWNER.fullmatch(owner):
            return 0
        finished = self.root.glob(f"*.{owner}")
        partial = self.root.glob(f"*.{owner}{PART_SUFFIX}")
        return sum(1 for _ in finished) + sum(1 for _ in partial)

    def open(self, owner: str) -> SpoolWriter:
        """A new upload of ``owner``; raises TooManyUploads when ``owner`` has
        ``max_pending`` already."""
        if self.pending(owner) >= self.max_pending:
            raise TooManyUploads(
                f"{self.max_pending} uploads wait already: use them or let them expire"
            )
        upload_id = secrets.token_hex(16)
        return SpoolWriter(upload_id, owner, self._path(owner, upload_id), self.max_bytes)

    def find(self, owner: str, upload_id: str) -> Path:
        """The finished upload ``upload_id`` of ``owner``; raises UploadNotFound (also for
        another owner's upload, so ids tell nothing)."""
        path = self._path(owner, upload_id)
        if not path.is_file():
            raise UploadNotFound(f"no upload {upload_id} (never made, used, or expired)")
        return path

    def remove(self, owner: str, upload_id: str) -> None:
        """Remove an upload (once used); no error if it is gone."""
        self._path(owner, upload_id).unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """Every file in the spool, finished or partial."""
        return sorted(path for path in self.root.iterdir() if path.is_file())

    def purge_expired(self, now: float | None = None) -> int:
        """Remove uploads (finished or partial) last written more than ``ttl_s`` ago;
        returns how many."""
        moment = time.time() if now is None else now
        removed = 0
        for path in self.files():
            try:
                if moment - path.stat().st_mtime > self.ttl_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


__all__ = [
    "SpoolWriter",
    "SpooledUpload",
    "TooManyUploads",
    "UploadDigestMismatch",
    "UploadNotFound",
    "UploadSpool",
    "UploadTooLarge",
]
