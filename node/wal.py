"""The consensus write-ahead log: this validator's own signed proposals and votes.

A validator must never sign two different messages at one height, round and kind, also
across a crash (CometBFT keeps such a log for the same reason; etcd raft's rule is "persist
before send"). The driver signs a message, appends it here, and only after :meth:`Wal.append`
returned (the record is on disk, ``fsync`` done) does the message leave the node. On start,
:meth:`Wal.messages_at` hands the messages of the height being decided back to the state
machine, which resumes from them instead of voting afresh.

File format: a sequence of records, each::

    4 bytes   payload length, big-endian
    4 bytes   CRC-32 of the payload, big-endian
    payload   chain.consensus.encode_message(signed proposal or vote)

A crash in the middle of an append leaves a torn last record (short, or with a CRC that does
not match). Opening the log truncates the file at the first such record: the message in it
was never sent (send happens after the fsync), so dropping it is safe. Records of heights
below the one being decided are dropped by :meth:`Wal.prune_below`, which rewrites the file
through a temporary file and an atomic rename.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from chain.consensus import Message, Proposal, decode_message, encode_message
from chain.errors import EncodingError

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">II")
MAX_RECORD_BYTES = 8 * 1024 * 1024
"""Largest payload a record may hold (a proposal carries a block of at most 4 MiB)."""

PROPOSAL_KIND = 0
"""The kind of a proposal in a :data:`SlotKey` (votes use their :class:`VoteType` value)."""

SlotKey = tuple[int, int, int]
"""``(height, round, kind)``: where at most one own message may exist."""


class WalError(Exception):
    """The log cannot be read or written."""


class ConflictingSignature(WalError):
    """An attempt to record a second, different message at one height, round and kind."""


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


class Wal:
    """An open write-ahead log. Build it with :meth:`open`; not thread-safe (the driver uses
    it from the event loop only)."""

    def __init__(self, path: Path, entries: list[Message], stats: WalStats) -> None:
        """Wrap a log read by :meth:`open`."""
        self.path = path
        self.stats = stats
        self._entries = entries
        self._slots: dict[SlotKey, Message] = {slot_of(m): m for m in entries}
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for the log's lifetime

    @classmethod
    def open(cls, path: Path) -> Wal:
        """Open (or create) the log at ``path``, reading every intact record and truncating
        a torn tail. Raises WalError if the file cannot be read or repaired."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = path.read_bytes() if path.exists() else b""
        except OSError as exc:
            raise WalError(f"cannot read {path}: {exc}") from exc
        entries, good_length = _parse(data)
        truncated = len(data) - good_length
        if truncated:
            log.warning("wal %s: cutting a torn tail of %d bytes", path, truncated)
            try:
                with open(path, "r+b") as handle:
                    handle.truncate(good_length)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise WalError(f"cannot truncate {path}: {exc}") from exc
        return cls(path, entries, WalStats(records=len(entries), truncated_bytes=truncated))

    def close(self) -> None:
        """Close the file."""
        self._file.close()

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
        its slot already holds a message (same content or not: one signature per slot)."""
        slot = slot_of(signed)
        if slot in self._slots:
            raise ConflictingSignature(f"slot {slot} is already recorded")
        payload = encode_message(signed)
        if len(payload) > MAX_RECORD_BYTES:
            raise WalError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            self._file.write(record)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise WalError(f"cannot append to {self.path}: {exc}") from exc
        self._entries.append(signed)
        self._slots[slot] = signed

    def prune_below(self, height: int) -> None:
        """Drop the records of heights below ``height`` (atomic rewrite; a no-op when there
        are none)."""
        keep = [m for m in self._entries if m.height >= height]
        if len(keep) == len(self._entries):
            return
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        try:
            with open(temporary, "wb") as handle:
                for message in keep:
                    payload = encode_message(message)
                    handle.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
                handle.flush()
                os.fsync(handle.fileno())
            self._file.close()
            os.replace(temporary, self.path)
            _fsync_directory(self.path.parent)
            self._file = open(self.path, "ab")  # noqa: SIM115
        except OSError as exc:
            raise WalError(f"cannot rewrite {self.path}: {exc}") from exc
        self._entries = keep
        self._slots = {slot_of(m): m for m in keep}


def _parse(data: bytes) -> tuple[list[Message], int]:
    """Intact records of ``data`` and the length of the prefix they fill."""
    entries: list[Message] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + length
        if length > MAX_RECORD_BYTES or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            entries.append(decode_message(payload))
        except EncodingError:
            break
        offset = end
    return entries, offset


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
