"""The consensus write-ahead log: this validator's own signed proposals and votes.

A validator must never sign two different messages at one height, round and kind, also
across a crash (CometBFT keeps such a log for the same reason; etcd raft's rule is "persist
before send"). The driver signs a message, appends it here, and only after :meth:`Wal.append`
returned (the record is on disk, ``fsync`` done) does the message leave the node. On start,
:meth:`Wal.messages_at` hands the messages of the height being decided back to the state
machine, which resumes from them instead of voting afresh.

File format (version 2): the 8 bytes :data:`MAGIC`, then a sequence of records, each::

    4 bytes   payload length, big-endian (at most chain.limits.MAX_WAL_RECORD_BYTES)
    4 bytes   CRC-32 of the payload, big-endian
    4 bytes   CRC-32 of the 8 bytes above, big-endian
    payload   chain.consensus.encode_message(signed proposal or vote)

The header carries its own checksum so that a damaged length field is told apart from a
record cut short: only a record whose header is intact can say where it ends.

What opening the log does with damage:

* **Torn tail** — the *final* record is incomplete (short header or short payload), or it is
  complete and fails its CRC, or its header fails its checksum and no intact record follows,
  or the tail is all zero bytes. A crash in the middle of :meth:`Wal.append` leaves exactly
  this; the message in it was never sent (send happens after the fsync), so the tail is cut
  off and a warning logged.
* **Anything else is a hard error** (:class:`WalCorrupt`, naming the file and the byte
  offset): a record that fails its CRC with more records after it, a record that passes its
  CRC but does not decode (wherever it is), a length above the record limit (no append
  writes one, nor a prefix of one), a damaged header followed by intact records. The file
  is left untouched and the node does not start: cutting there would delete intact records,
  among them possibly this validator's own votes, whose loss is what lets a validator sign
  twice in one slot.

:meth:`Wal.append` refuses (with :class:`WalError`, before writing) a message whose record
would exceed the limit or would not decode back, so the log never holds a record it cannot
read. A write that fails halfway is cut back, so a failed append leaves no partial record in
the middle of the log.

Logs of the first format (no magic, 8-byte headers without their own checksum) are read by
the same rules and rewritten in version 2 on open; there, a damaged length that runs past
the end of the file cannot be told from a cut, which is why version 2 checksums the header.

Records of heights below the one being decided are dropped by :meth:`Wal.prune_below`, which
rewrites the file through a temporary file and an atomic rename.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from chain.consensus import Message, Proposal, decode_message, encode_message
from chain.errors import EncodingError
from chain.limits import MAX_WAL_RECORD_BYTES

log = logging.getLogger(__name__)

MAGIC = b"LXWAL02\n"
"""The first bytes of a version-2 log."""

_HEADER = struct.Struct(">III")
_LEGACY_HEADER = struct.Struct(">II")

MAX_RECORD_BYTES = MAX_WAL_RECORD_BYTES
"""Largest payload a record may hold (:data:`chain.limits.MAX_WAL_RECORD_BYTES`)."""

PROPOSAL_KIND = 0
"""The kind of a proposal in a :data:`SlotKey` (votes use their :class:`VoteType` value)."""

SlotKey = tuple[int, int, int]
"""``(height, round, kind)``: where at most one own message may exist."""


class WalError(Exception):
    """The log cannot be read or written."""


class ConflictingSignature(WalError):
    """An attempt to record a second, different message at one height, round and kind."""


class WalCorrupt(WalError):
    """The log is damaged somewhere other than a torn tail; it was left untouched."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        """Describe the damage: which file, at which byte offset, and what is wrong."""
        self.path = path
        """The log file."""
        self.offset = offset
        """Byte offset of the damaged record in the file."""
        self.reason = reason
        """What is wrong with the record."""
        super().__init__(
            f"consensus WAL {path} is damaged at byte offset {offset}: {reason}. This is "
            "not a torn tail, so nothing was cut (that would delete intact records, possibly "
            "this validator's own votes); the file is left as it is. Restore it from a copy, "
            "or set it aside only if this validator cannot have signed at the current height."
        )


def slot_of(message: Message) -> SlotKey:
    """The ``(height, round, kind)`` slot ``message`` occupies."""
    kind = PROPOSAL_KIND if isinstance(message, Proposal) else int(message.type)
    return (message.height, message.round, kind)


@dataclass(frozen=True)
class WalStats:
    """What opening the log found."""

    records: int
    """Intact records read."""
    truncated_bytes: int
    """Bytes of a torn tail that were cut off."""


@dataclass(frozen=True)
class _Scan:
    """The outcome of reading a log's bytes."""

    entries: list[Message]
    """Every record before the torn tail (or all of them)."""
    good_length: int
    """Where the torn tail starts (the file's length if there is none)."""
    torn: str | None
    """Why the tail is torn, ``None`` if there is no torn tail."""


class Wal:
    """An open write-ahead log. Build it with :meth:`open`; not thread-safe (the driver uses
    it from the event loop only)."""

    def __init__(self, path: Path, entries: list[Message], stats: WalStats) -> None:
        """Wrap a version-2 log read by :meth:`open`."""
        self.path = path
        self.stats = stats
        self._entries = entries
        self._slots: dict[SlotKey, Message] = {slot_of(m): m for m in entries}
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise WalError(f"cannot open {path} for appending: {exc}") from exc
        self._size = os.fstat(self._fd).st_size
        self._broken: str | None = None

    @classmethod
    def open(cls, path: Path) -> Wal:
        """Open (or create) the log at ``path``, reading every record and cutting a torn
        tail. Raises WalCorrupt (file untouched) on damage that is not a torn tail, and
        WalError if the file cannot be read or repaired."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = path.read_bytes() if path.exists() else b""
        except OSError as exc:
            raise WalError(f"cannot read {path}: {exc}") from exc
        if MAGIC.startswith(data):
            # New, or created by a process that died before the magic was whole.
            _rewrite(path, [])
            return cls(path, [], WalStats(records=0, truncated_bytes=0))
        legacy = _is_legacy(path, data)
        scan = _scan(path, data, legacy=legacy)
        truncated = len(data) - scan.good_length
        if scan.torn is not None:
            log.warning(
                "wal %s: cutting a torn tail of %d bytes at offset %d (%s)",
                path, truncated, scan.good_length, scan.torn,
            )  # fmt: skip
        if legacy:
            _rewrite(path, scan.entries)
            log.info("wal %s: %d records rewritten in format 2", path, len(scan.entries))
        elif truncated:
            try:
                with open(path, "r+b") as handle:
                    handle.truncate(scan.good_length)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise WalError(f"cannot truncate {path}: {exc}") from exc
        stats = WalStats(records=len(scan.entries), truncated_bytes=truncated)
        return cls(path, scan.entries, stats)

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def last_message(self) -> Message | None:
        """The last signed message recorded, ``None`` if the log is empty."""
        return self._entries[-1] if self._entries else None

    def messages_at(self, height: int) -> tuple[Message, ...]:
        """Own signed messages of ``height``, in the order they were written."""
        return tuple(m for m in self._entries if m.height == height)

    def recorded(self, message: Message) -> Message | None:
        """The signed message recorded in ``message``'s slot if it has the same content
        (signatures aside), ``None`` if the slot is free. Raises ConflictingSignature if the
        slot holds a different message."""
        existing = self._slots.get(slot_of(message))
        if existing is None:
            return None
        if existing.unsigned() != message.unsigned():
            raise ConflictingSignature(f"slot {slot_of(message)} already holds another message")
        return existing

    def append(self, signed: Message) -> None:
        """Durably record ``signed``; returns after ``fsync``. Raises ConflictingSignature if
        its slot already holds a message (same content or not: one signature per slot), and
        WalError, with nothing written, for a message the log could not read back."""
        slot = slot_of(signed)
        if slot in self._slots:
            raise ConflictingSignature(f"slot {slot} is already recorded")
        if self._broken is not None:
            raise WalError(f"{self.path} is unusable: {self._broken}")
        payload = encode_message(signed)
        if len(payload) > MAX_RECORD_BYTES:
            raise WalError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
        try:
            decode_message(payload)
        except EncodingError as exc:
            raise WalError(f"refusing a record that would not decode back: {exc}") from exc
        try:
            _write_all(self._fd, _record(payload))
            os.fsync(self._fd)
        except OSError as exc:
            self._cut_back()
            raise WalError(f"cannot append to {self.path}: {exc}") from exc
        self._size += _HEADER.size + len(payload)
        self._entries.append(signed)
        self._slots[slot] = signed

    def _cut_back(self) -> None:
        """Remove whatever part of a failed append reached the file, so that no partial
        record ends up in the middle of the log; if even that fails, refuse every later
        append (the next open then finds the partial record as its torn tail)."""
        try:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        except OSError as exc:
            self._broken = f"a failed append could not be cut back: {exc}"

    def prune_below(self, height: int) -> None:
        """Drop the records of heights below ``height`` (atomic rewrite; a no-op when there
        are none)."""
        keep = [m for m in self._entries if m.height >= height]
        if len(keep) == len(self._entries):
            return
        self.close()
        try:
            _rewrite(self.path, keep)
        finally:
            # Whether or not the rename happened, the file at ``path`` is a whole log.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
            self._broken = None
        self._entries = keep
        self._slots = {slot_of(m): m for m in keep}


def _is_legacy(path: Path, data: bytes) -> bool:
    """Whether ``data`` (not empty) is a log of the first format; raise WalCorrupt if it is
    neither format. A first-format log starts with a record length of at most 8 MiB, so
    with a zero byte, which :data:`MAGIC` never does; a marker that differs from the magic
    in a byte or two is a damaged version-2 log, not an old one."""
    if data.startswith(MAGIC):
        return False
    differing = sum(a != b for a, b in zip(data[: len(MAGIC)], MAGIC, strict=False))
    if len(data) >= len(MAGIC) and differing <= 2:
        raise WalCorrupt(path, 0, "the format marker at the start of the file is damaged")
    if data[0] != 0:
        raise WalCorrupt(path, 0, "the file does not start with a consensus WAL marker")
    return True


def _record(payload: bytes) -> bytes:
    lengths = struct.pack(">II", len(payload), zlib.crc32(payload))
    return lengths + struct.pack(">I", zlib.crc32(lengths)) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _rewrite(path: Path, messages: Iterable[Message]) -> None:
    """Replace the log at ``path`` by a version-2 log of ``messages``, atomically."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(MAGIC)
            for message in messages:
                handle.write(_record(encode_message(message)))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        raise WalError(f"cannot rewrite {path}: {exc}") from exc


def _scan(path: Path, data: bytes, *, legacy: bool) -> _Scan:
    """Read the records of ``data`` by the rules in the module docstring; raise WalCorrupt
    where damage is not a torn tail."""
    header = _LEGACY_HEADER if legacy else _HEADER
    entries: list[Message] = []
    offset = 0 if legacy else len(MAGIC)
    while offset < len(data):
        if not any(memoryview(data)[offset:]):
            # Space a file system allocated for an append that never reached the disk.
            return _Scan(entries, offset, "the tail is zero-filled")
        if len(data) - offset < header.size:
            return _Scan(entries, offset, "the last record's header is incomplete")
        length, crc = _LEGACY_HEADER.unpack_from(data, offset)
        if not legacy:
            (header_crc,) = struct.unpack_from(">I", data, offset + 8)
            if zlib.crc32(data[offset : offset + 8]) != header_crc:
                # The length cannot be trusted to say whether this record is the last one.
                if _intact_record_after(data, offset + 1):
                    raise WalCorrupt(
                        path, offset, "a record header fails its checksum and intact "
                        "records follow it",
                    )  # fmt: skip
                return _Scan(entries, offset, "the last record's header fails its checksum")
        if length > MAX_RECORD_BYTES:
            # No append writes such a length, nor a prefix of one: this is damage, not a cut.
            raise WalCorrupt(
                path, offset, f"a record length of {length} bytes exceeds the limit of "
                f"{MAX_RECORD_BYTES}",
            )  # fmt: skip
        start = offset + header.size
        end = start + length
        if end > len(data):
            return _Scan(entries, offset, "the last record is incomplete")
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            if end == len(data):
                return _Scan(entries, offset, "the last record fails its CRC")
            raise WalCorrupt(path, offset, "a record fails its CRC and more records follow it")
        try:
            entries.append(decode_message(payload))
        except EncodingError as exc:
            raise WalCorrupt(
                path, offset, f"a record passes its CRC but does not decode ({exc})"
            ) from exc
        offset = end
    return _Scan(entries, offset, None)


def _intact_record_after(data: bytes, first: int) -> bool:
    """Whether a whole version-2 record (both checksums right, length within the limit, not
    empty) starts at any offset from ``first`` on: then the damage before it cannot be a
    torn tail. Only reached when a header is damaged, so the byte-by-byte search (about a
    second per 2 MB) costs nothing in normal operation."""
    for offset in range(first, len(data) - _HEADER.size + 1):
        length, crc, header_crc = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        if (
            0 < length <= MAX_RECORD_BYTES
            and end <= len(data)
            and zlib.crc32(data[offset : offset + 8]) == header_crc
            and zlib.crc32(data[offset + _HEADER.size : end]) == crc
        ):
            return True
    return False


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
