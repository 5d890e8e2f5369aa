"""Frames on a p2p connection.

Every frame is::

    4 bytes   length of what follows, big-endian (at least 1, at most the configured limit)
    1 byte    kind (:class:`FrameKind`)
    rest      body, whose format the kind defines

A length above the limit drops the connection before its body is read, so a peer cannot make
the node buffer more than the limit.
"""

from __future__ import annotations

import asyncio
import enum
import struct

_LENGTH = struct.Struct(">I")


class FrameKind(enum.IntEnum):
    """What a frame carries."""

    HELLO = 1
    """Handshake, first frame: version, chain id, node key, nonce."""
    AUTH = 2
    """Handshake, second frame: signature over the handshake transcript."""
    CONSENSUS = 3
    """A signed proposal or vote (:func:`chain.consensus.encode_message`)."""
    TX = 4
    """A transaction's canonical encoding (gossip)."""
    STATUS = 5
    """The sender's committed height (RLP)."""
    SYNC_REQUEST = 6
    """Ask for committed blocks: RLP ``[from height, count]``."""
    SYNC_RESPONSE = 7
    """Committed blocks with their certificates: RLP ``[[block, certificate], ...]``."""


class FrameError(Exception):
    """A frame that breaks the format: empty, unknown kind, or cut short."""


class OversizeFrame(FrameError):
    """A frame announcing more bytes than the limit."""


def encode_frame(kind: FrameKind, body: bytes) -> bytes:
    """The bytes of one frame."""
    return _LENGTH.pack(len(body) + 1) + bytes([int(kind)]) + body


async def read_frame(reader: asyncio.StreamReader, max_bytes: int) -> tuple[FrameKind, bytes]:
    """Read one frame; raises OversizeFrame, FrameError, or asyncio.IncompleteReadError at
    end of stream."""
    header = await reader.readexactly(_LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if length > max_bytes:
        raise OversizeFrame(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    if length == 0:
        raise FrameError("empty frame")
    payload = await reader.readexactly(length)
    try:
        kind = FrameKind(payload[0])
    except ValueError as exc:
        raise FrameError(f"unknown frame kind {payload[0]}") from exc
    return kind, payload[1:]
