"""The record keys an import has met so far, kept compactly: a million rows take 40 MiB
here (60 MiB for a moment while the table doubles), against about 130 MiB as a dict of digest
bytes to row numbers (an object per key and per row number besides the dict's own table).

An open-addressing hash table over three arrays: each slot holds a key's 16-byte digest as
two unsigned 64-bit halves (both zero for an empty slot) and the row it was first met on
(4 bytes). A key's first slot is its low half hashed by multiply-shift with a random odd
multiplier drawn per table, so whoever writes a file cannot choose decision numbers whose keys
pile into one run of slots (the record id is an SM3 hash anyone can compute)."""

from __future__ import annotations

import secrets
from array import array

KEY_SIZE = 16
"""Bytes of a key kept: 128 bits, so two different records of one import are taken for the
same one with probability under 2**-88 for a million rows."""

MAX_ROW = 2**32 - 1
"""The largest row number kept (4-byte row numbers: no spreadsheet comes near)."""

_INITIAL_BITS = 12
_MASK64 = (1 << 64) - 1
_EMPTY = 0


class SeenKeys:
    """Which 16-byte keys were met, and on which row first."""

    def __init__(self) -> None:
        """An empty set."""
        slots = 1 << _INITIAL_BITS
        self._high = array("Q", bytes(8 * slots))
        self._low = array("Q", bytes(8 * slots))
        self._rows = array("I", bytes(4 * slots))
        self._mask = slots - 1
        self._shift = 64 - _INITIAL_BITS
        self._multiplier = secrets.randbits(64) | 1
        self._count = 0
        self._zero_row: int | None = None
        """The first row of the all-zero key, which the table cannot hold (empty marker)."""

    def __len__(self) -> int:
        return self._count + (self._zero_row is not None)

    def first_row(self, key: bytes, row: int) -> int | None:
        """The row ``key`` was first met on, or ``None`` if this is the first time (and
        ``row`` is recorded as its first)."""
        if len(key) != KEY_SIZE:
            raise ValueError(f"a key is {KEY_SIZE} bytes, not {len(key)}")
        if not 0 < row <= MAX_ROW:
            raise ValueError(f"row {row} is outside 1..{MAX_ROW}")
        high = int.from_bytes(key[:8])
        low = int.from_bytes(key[8:])
        if not (high or low):
            if self._zero_row is None:
                self._zero_row = row
                return None
            return self._zero_row
        # The probe, inline: this runs once per row of a file.
        highs, lows, mask = self._high, self._low, self._mask
        slot = ((low * self._multiplier) & _MASK64) >> self._shift
        while True:
            found = lows[slot]
            if found == low and highs[slot] == high:
                return self._rows[slot]
            if not found and not highs[slot]:
                self._put(slot, high, low, row)
                return None
            slot = (slot + 1) & mask

    def _find(self, high: int, low: int) -> int:
        """The slot holding the key, or the empty slot where it would go."""
        highs, lows, mask = self._high, self._low, self._mask
        slot = ((low * self._multiplier) & _MASK64) >> self._shift
        while True:
            found = lows[slot]
            if (found == low and highs[slot] == high) or not (found or highs[slot]):
                return slot
            slot = (slot + 1) & mask

    def _put(self, slot: int, high: int, low: int, row: int) -> None:
        self._high[slot] = high
        self._low[slot] = low
        self._rows[slot] = row
        self._count += 1
        if self._count * 3 > 2 * len(self._high):
            self._grow()

    def _grow(self) -> None:
        """Double the table (kept at most two thirds full, so probes stay short)."""
        old = zip(self._high, self._low, self._rows, strict=True)
        size = 2 * len(self._high)
        self._high = array("Q", bytes(8 * size))
        self._low = array("Q", bytes(8 * size))
        self._rows = array("I", bytes(4 * size))
        self._mask = size - 1
        self._shift -= 1
        for high, low, row in old:
            if high != _EMPTY or low != _EMPTY:
                slot = self._find(high, low)
                self._high[slot] = high
                self._low[slot] = low
                self._rows[slot] = row


__all__ = ["KEY_SIZE", "MAX_ROW", "SeenKeys"]
