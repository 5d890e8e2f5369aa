"""Frames over one authenticated connection, sealed or in clear.

A sealed frame is::

    4 bytes   n = length of what follows, big-endian
    n - 32    SM4-CTR(kind || body)
    32 bytes  HMAC-SM3(frame counter || the 4 length bytes || ciphertext)

with the construction of :mod:`chain.crypto.channel` (per-direction keys, implicit frame
counters). The length is checked against the limit before anything else is read, and the
MAC before anything is decrypted or parsed; a frame that fails it ends the connection.

Frames must be encoded in the order they are written: the sealer's counter advances on each
:meth:`Channel.encode`.
"""

from __future__ import annotations

import asyncio
import time

from chain.crypto.channel import TAG_SIZE, FrameAuthError, FrameOpener, FrameSealer
from chain.limits import MAX_FRAME_BYTES

from .frames import LENGTH, FrameAuthFailed, FrameError, FrameKind, OversizeFrame, frame_kind

READ_CHUNK_BYTES = 64 * 1024
"""A large frame is read in pieces of this size, so progress is seen while it arrives."""


class Channel:
    """Encode and read frames of one connection (sealed when built with a sealer/opener)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sealer: FrameSealer | None,
        opener: FrameOpener | None,
        max_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.sealed = sealer is not None
        self._sealer = sealer
        self._opener = opener
        self.max_bytes = max_bytes
        """Largest kind-and-body accepted by :meth:`read` (without the seal's overhead)."""
        self.last_received = time.monotonic()
        """When bytes last arrived (monotonic seconds): the liveness watchdog reads it."""

    def encode(self, kind: FrameKind, body: bytes) -> bytes:
        """The wire bytes of the next frame."""
        payload = bytes([int(kind)]) + body
        if self._sealer is None:
            return LENGTH.pack(len(payload)) + payload
        header = LENGTH.pack(len(payload) + TAG_SIZE)
        return header + self._sealer.seal(header, payload)

    async def read(self, max_bytes: int | None = None) -> tuple[FrameKind, bytes]:
        """Read the next frame (at most ``max_bytes`` of kind and body, default
        :attr:`max_bytes`). Raises OversizeFrame, FrameAuthFailed, FrameError, or
        asyncio.IncompleteReadError at end of stream."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        overhead = TAG_SIZE if self._opener is not None else 0
        header = await self.reader.readexactly(LENGTH.size)
        self.last_received = time.monotonic()
        (length,) = LENGTH.unpack(header)
        if length > limit + overhead:
            raise OversizeFrame(f"frame of {length} bytes exceeds the limit of {limit}")
        if length <= overhead:
            raise FrameError("empty frame")
        payload = await self._read_exactly(length)
        if self._opener is not None:
            try:
                payload = self._opener.open(header, payload)
            except FrameAuthError as exc:
                raise FrameAuthFailed(str(exc)) from exc
        return frame_kind(payload)

    async def _read_exactly(self, size: int) -> bytes:
        if size <= READ_CHUNK_BYTES:
            data = await self.reader.readexactly(size)
            self.last_received = time.monotonic()
            return data
        parts: list[bytes] = []
        left = size
        while left:
            part = await self.reader.readexactly(min(left, READ_CHUNK_BYTES))
            self.last_received = time.monotonic()
            parts.append(part)
            left -= len(part)
        return b"".join(parts)
