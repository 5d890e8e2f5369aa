"""Key and value layout of the LMDB block store.

Every sub-database, and how its keys and values are laid out::

    blocks        height (8 bytes, big-endian)  -> record(Block.encode())
    hash_index    block hash (32 bytes)         -> height (8 bytes)
    receipts      height (8 bytes)              -> record(RLP list of receipts)
    tx_index      tx hash (32 bytes)            -> height (8 bytes) || index (4 bytes)
    nonce_index   replay nonce (32 bytes)       -> height (8 bytes)
    certificates  height (8 bytes)              -> record(CommitCertificate.encode())
    state         raw key                       -> raw value (as execution wrote it)
    log_blocks    height (8 bytes)              -> block hash (32 bytes); blocks with logs only
    logs          log position (12 bytes)       -> record(log payload, see below)
    log_address   address (20) || log position  -> b""
    log_topic     topic (32) || log position    -> b""   (the topic at any position)
    meta          b"schema"                     -> SCHEMA_VERSION (1 byte)
                  b"head"                       -> record(Header.encode()) of the head block

A *log position* is height (8 bytes) || index of the log among all logs of its block (4 bytes),
so that key order is chain order within ``logs`` and within each address or topic of the two
log indexes. The log records repeat what the receipts hold, so that a query reads only the
logs it selects instead of decoding whole blocks of receipts. Their payload is fixed-width
rather than RLP, because a block may carry tens of thousands of logs::

    tx index (4) || tx hash (32) || address (20) || topic count (1) || topics (32 each) || data

Heights are fixed-width big-endian so that key order is height order: the last key of
``blocks`` is the head. A *record* is ``RECORD_FORMAT || crc32(payload) (4 bytes) || payload``:
the checksum catches a flipped byte that would otherwise still decode (a byte inside a hash
or inside transaction data), so corruption surfaces as an error instead of a wrong value.
The state space carries no framing: its keys are trie-node and code hashes that execution
verifies itself.

This module is pure byte layout; it does not import ``lmdb``.
"""

from __future__ import annotations

import zlib

from chain.errors import StorageError
from chain.primitives import ADDRESS_SIZE, HASH_SIZE, Address, Hash32
from chain.types import Log

BLOCKS = b"blocks"
HASH_INDEX = b"hash_index"
RECEIPTS = b"receipts"
TX_INDEX = b"tx_index"
NONCE_INDEX = b"nonce_index"
CERTIFICATES = b"certificates"
STATE = b"state"
LOG_BLOCKS = b"log_blocks"
LOGS = b"logs"
LOG_ADDRESS = b"log_address"
LOG_TOPIC = b"log_topic"
META = b"meta"

SUB_DATABASES = (
    BLOCKS,
    HASH_INDEX,
    RECEIPTS,
    TX_INDEX,
    NONCE_INDEX,
    CERTIFICATES,
    STATE,
    LOG_BLOCKS,
    LOGS,
    LOG_ADDRESS,
    LOG_TOPIC,
    META,
)
"""Every named sub-database, in the order they are opened."""

HEIGHT_KEYED = (BLOCKS, RECEIPTS, CERTIFICATES)
"""Sub-databases whose keys are heights."""

META_SCHEMA = b"schema"
META_HEAD = b"head"

SCHEMA_VERSION = b"\x02"
"""Version of this layout, stored under ``meta[b"schema"]``. Version 2 added the log index."""

RECORD_FORMAT = b"\x01"
"""First byte of every framed record."""

HEIGHT_SIZE = 8
TX_INDEX_SIZE = 4
LOG_INDEX_SIZE = 4
LOG_POSITION_SIZE = HEIGHT_SIZE + LOG_INDEX_SIZE
_CRC_SIZE = 4
_RECORD_HEADER_SIZE = len(RECORD_FORMAT) + _CRC_SIZE
_MAX_HEIGHT = (1 << (8 * HEIGHT_SIZE)) - 1
_MAX_TX_INDEX = (1 << (8 * TX_INDEX_SIZE)) - 1
MAX_LOG_INDEX = (1 << (8 * LOG_INDEX_SIZE)) - 1
"""Largest index of a log within its block."""


def height_key(height: int) -> bytes:
    """The fixed-width big-endian encoding of ``height`` (a key, or an index value)."""
    if not 0 <= height <= _MAX_HEIGHT:
        raise StorageError(f"height {height} does not fit {HEIGHT_SIZE} bytes")
    return height.to_bytes(HEIGHT_SIZE, "big")


def decode_height(raw: bytes, where: str) -> int:
    """Inverse of :func:`height_key`; raises StorageError on a wrong width."""
    if len(raw) != HEIGHT_SIZE:
        raise StorageError(f"{where}: height of {len(raw)} bytes, expected {HEIGHT_SIZE}")
    return int.from_bytes(raw, "big")


def tx_location_value(height: int, index: int) -> bytes:
    """The ``tx_index`` value: height then position within the block."""
    if not 0 <= index <= _MAX_TX_INDEX:
        raise StorageError(f"transaction index {index} does not fit {TX_INDEX_SIZE} bytes")
    return height_key(height) + index.to_bytes(TX_INDEX_SIZE, "big")


def decode_tx_location(raw: bytes, where: str) -> tuple[int, int]:
    """Inverse of :func:`tx_location_value`: ``(height, index)``."""
    if len(raw) != HEIGHT_SIZE + TX_INDEX_SIZE:
        raise StorageError(f"{where}: location of {len(raw)} bytes")
    return decode_height(raw[:HEIGHT_SIZE], where), int.from_bytes(raw[HEIGHT_SIZE:], "big")


def log_position(height: int, log_index: int) -> bytes:
    """The key of a log: its block height then its index among the block's logs."""
    if not 0 <= log_index <= MAX_LOG_INDEX:
        raise StorageError(f"log index {log_index} does not fit {LOG_INDEX_SIZE} bytes")
    return height_key(height) + log_index.to_bytes(LOG_INDEX_SIZE, "big")


def decode_log_position(raw: bytes, where: str) -> tuple[int, int]:
    """Inverse of :func:`log_position`: ``(height, log index)``."""
    if len(raw) != LOG_POSITION_SIZE:
        raise StorageError(f"{where}: log position of {len(raw)} bytes")
    return decode_height(raw[:HEIGHT_SIZE], where), int.from_bytes(raw[HEIGHT_SIZE:], "big")


_MAX_TOPICS = 4
_LOG_FIXED_SIZE = TX_INDEX_SIZE + HASH_SIZE + ADDRESS_SIZE + 1


def log_payload(tx_index: int, tx_hash: Hash32, log: Log) -> bytes:
    """The payload of a ``logs`` record: the log and the transaction that emitted it."""
    if not 0 <= tx_index <= _MAX_TX_INDEX:
        raise StorageError(f"transaction index {tx_index} does not fit {TX_INDEX_SIZE} bytes")
    return b"".join(
        (
            tx_index.to_bytes(TX_INDEX_SIZE, "big"),
            tx_hash,
            log.address,
            len(log.topics).to_bytes(1, "big"),
            *log.topics,
            log.data,
        )
    )


def decode_log_payload(payload: bytes, where: str) -> tuple[int, Hash32, Log]:
    """Inverse of :func:`log_payload`: ``(tx index, tx hash, log)``."""
    if len(payload) < _LOG_FIXED_SIZE:
        raise StorageError(f"{where}: log record of {len(payload)} bytes is truncated")
    tx_index = int.from_bytes(payload[:TX_INDEX_SIZE], "big")
    offset = TX_INDEX_SIZE
    tx_hash = Hash32(payload[offset : offset + HASH_SIZE])
    offset += HASH_SIZE
    address = Address(payload[offset : offset + ADDRESS_SIZE])
    offset += ADDRESS_SIZE
    topic_count = payload[offset]
    offset += 1
    if topic_count > _MAX_TOPICS or len(payload) < offset + HASH_SIZE * topic_count:
        raise StorageError(f"{where}: log record with {topic_count} topics is malformed")
    topics = tuple(
        Hash32(payload[offset + HASH_SIZE * i : offset + HASH_SIZE * (i + 1)])
        for i in range(topic_count)
    )
    offset += HASH_SIZE * topic_count
    return tx_index, tx_hash, Log(address=address, topics=topics, data=payload[offset:])


def frame(payload: bytes) -> bytes:
    """Wrap ``payload`` as a checksummed record."""
    return RECORD_FORMAT + zlib.crc32(payload).to_bytes(_CRC_SIZE, "big") + payload


def unframe(record: bytes, where: str) -> bytes:
    """Return the payload of a record, or raise StorageError if the frame or checksum is off."""
    if len(record) < _RECORD_HEADER_SIZE:
        raise StorageError(f"{where}: record of {len(record)} bytes is truncated")
    if record[:1] != RECORD_FORMAT:
        raise StorageError(f"{where}: unknown record format {record[0]:#04x}")
    payload = record[_RECORD_HEADER_SIZE:]
    stored = int.from_bytes(record[len(RECORD_FORMAT) : _RECORD_HEADER_SIZE], "big")
    if zlib.crc32(payload) != stored:
        raise StorageError(f"{where}: checksum mismatch (corrupt record)")
    return payload
