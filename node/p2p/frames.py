"""Frames on a p2p connection.

Before and during the handshake every frame is in clear::

    4 bytes   length of what follows, big-endian (at least 1, at most the limit)
    1 byte    kind (:class:`FrameKind`)
    rest      body, whose format the kind defines

After the handshake, kind and body are sealed (:mod:`node.p2p.channel`). A length above the
limit drops the connection before its body is read, so a peer cannot make the node buffer
more than the limit: :data:`chain.limits.MAX_PREAUTH_FRAME_BYTES` before the peer is
authenticated, the configured ``max_frame_bytes`` after.
"""

from __future__ import annotations

import asyncio
import enum
import struct

LENGTH = struct.Struct(">I")
"""The length prefix of every frame."""


class FrameKind(enum.IntEnum):
    """What a frame carries."""

    HELLO = 1
    """Handshake, first frame (in clear): version, chain id, node key, ephemeral key."""
    AUTH = 2
    """Handshake, second frame (sealed): signature over the handshake transcript."""
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
    PING = 8
    """Heartbeat: up to 8 opaque bytes, answered by a PONG carrying the same bytes."""
    PONG = 9
    """The answer to a PING."""


class FrameError(Exception):
    """A frame that breaks the format: empty, unknown kind, or cut short. ``reason`` names
    the counter it feeds."""

    reason = "bad_frame"


class OversizeFrame(FrameError):
    """A frame announcing more bytes than the limit."""

    reason = "oversize_frame"


class FrameAuthFailed(FrameError):
    """A sealed frame whose MAC does not verify: altered, injected, replayed or reordered."""

    reason = "frame_auth_failed"


def encode_frame(kind: FrameKind, body: bytes) -> bytes:
    """The bytes of one frame in clear."""
    return LENGTH.pack(len(body) + 1) + bytes([int(kind)]) + body


def frame_kind(payload: bytes) -> tuple[FrameKind, bytes]:
    """Split a frame's payload into kind and body; raises FrameError."""
    if not payload:
        raise FrameError("empty frame")
    try:
        kind = FrameKind(payload[0])
    except ValueError as exc:
        raise FrameError(f"unknown frame kind {payload[0]}") from exc
    return kind, payload[1:]


async def read_frame(reader: asyncio.StreamReader, max_bytes: int) -> tuple[FrameKind, bytes]:
    """Read one frame in clear; raises OversizeFrame, FrameError, or
    asyncio.IncompleteReadError at end of stream."""
    header = await reader.readexactly(LENGTH.size)
    (length,) = LENGTH.unpack(header)
    if length > max_bytes:
        raise OversizeFrame(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    if length == 0:
        raise FrameError("empty frame")
    return frame_kind(await reader.readexactly(length))
