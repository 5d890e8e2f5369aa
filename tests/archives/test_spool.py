"""The upload spool: written block by block under a hard cap, hashed on the way; an upload
over the cap or not matching its declared SM3 leaves nothing; ids are per owner."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from archives.hashing import sm3_hex
from archives.spool import (
    TooManyUploads,
    UploadDigestMismatch,
    UploadNotFound,
    UploadSpool,
    UploadTooLarge,
)


def test_a_finished_upload_is_found_by_its_owner_only(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool", max_bytes=1000, ttl_s=60)
    writer = spool.open("dept-1")
    for block in (b"a" * 400, b"b" * 400):
        writer.write(block)
    upload = writer.finish(sm3_hex(b"a" * 400 + b"b" * 400))
    assert upload.size == 800 and upload.path.read_bytes() == b"a" * 400 + b"b" * 400
    assert spool.find("dept-1", upload.upload_id) == upload.path
    with pytest.raises(UploadNotFound):
        spool.find("dept-2", upload.upload_id)
    with pytest.raises(UploadNotFound):
        spool.find("dept-1", "../" + upload.upload_id)
    spool.remove("dept-1", upload.upload_id)
    assert spool.files() == []


def test_past_the_cap_nothing_stays(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool", max_bytes=1000, ttl_s=60)
    writer = spool.open("dept-1")
    writer.write(b"x" * 1000)
    with pytest.raises(UploadTooLarge):
        writer.write(b"x")
    assert spool.files() == []


def test_a_body_hashing_otherwise_than_declared_leaves_nothing(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool", max_bytes=1000, ttl_s=60)
    writer = spool.open("dept-1")
    writer.write(b"the bag")
    with pytest.raises(UploadDigestMismatch):
        writer.finish(sm3_hex(b"another bag"))
    assert spool.files() == []


def test_expired_uploads_are_purged(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool", max_bytes=1000, ttl_s=60)
    old = spool.open("dept-1")
    old.write(b"old")
    old_upload = old.finish(None)
    partial = spool.open("dept-1")
    partial.write(b"half")
    fresh = spool.open("dept-1")
    fresh.write(b"new")
    fresh_upload = fresh.finish(None)
    past = time.time() - 120
    os.utime(old_upload.path, (past, past))
    os.utime(partial.partial, (past, past))
    assert spool.purge_expired() == 2
    assert spool.files() == [fresh_upload.path]


def test_an_owner_has_a_bounded_number_of_unused_uploads(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool", max_bytes=1000, ttl_s=60, max_pending=2)
    first = spool.open("dept-1").finish(None)
    writing = spool.open("dept-1")
    with pytest.raises(TooManyUploads):
        spool.open("dept-1")
    spool.open("dept-2").abort()
    writing.abort()
    spool.remove("dept-1", first.upload_id)
    assert spool.open("dept-1").finish(None).size == 0
