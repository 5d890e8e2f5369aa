"""Canonical RLP: the only module that imports the ``rlp`` library.

Every ledger type encodes to exactly one byte string. Decoding is strict: trailing bytes,
non-minimal lengths, integers with leading zeros, wrong field counts and wrong fixed widths
are all rejected with :class:`chain.errors.EncodingError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import rlp
from rlp.exceptions import DecodingError

from chain.errors import EncodingError
from chain.limits import MAX_RLP_DEPTH

RLPItem = Union[bytes, "list[RLPItem]"]
"""A decoded RLP value: a byte string or a list of RLP values."""

MAX_INT_BYTES = 32
"""Integers in the ledger fit 256 bits (EVM word size)."""


def encode(item: RLPItem) -> bytes:
    """Return the canonical RLP encoding of ``item`` (byte strings and lists of items).

    Written out here rather than through ``rlp.encode``, whose per-node type inference
    cost several times more than the encoding itself; tests hold it to ``rlp.encode``."""
    if isinstance(item, bytes | bytearray):
        if len(item) == 1 and item[0] < 0x80:
            return bytes(item)
        return _length_prefix(len(item), 0x80) + item
    if isinstance(item, list | tuple):
        payload = b"".join([encode(child) for child in item])
        return _length_prefix(len(payload), 0xC0) + payload
    raise EncodingError(f"cannot RLP-encode {type(item).__name__}")


def encode_list_payload(payload: bytes) -> bytes:
    """The RLP list whose items, each already encoded, are concatenated in ``payload``: for
    encoders of one fixed shape that build the payload themselves (see
    :meth:`chain.merkle.MerkleProof.encode`)."""
    return _length_prefix(len(payload), 0xC0) + payload


def _length_prefix(length: int, offset: int) -> bytes:
    if length <= 55:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def decode(data: bytes) -> RLPItem:
    """Decode one RLP value that spans all of ``data`` (strict: no trailing bytes)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EncodingError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    check_depth(data, MAX_RLP_DEPTH)
    try:
        return _normalise(rlp.decode(data, strict=True))
    except DecodingError as exc:
        raise EncodingError(f"malformed RLP: {exc}") from exc
    except RecursionError as exc:
        # A few kilobytes of nested list headers exhaust the interpreter stack in the
        # recursive decoder; no ledger type nests more than a handful of levels.
        raise EncodingError("malformed RLP: lists nested too deeply") from exc


_LIST_HEADER_BYTES = bytes(range(0xC0))


def check_depth(data: bytes, max_depth: int) -> None:
    """Raise EncodingError if ``data`` holds lists nested deeper than ``max_depth``, found by
    walking the item headers without recursion (so before any recursive decoder runs).
    Malformed lengths are left for the decoder to report."""
    # Each level of nesting needs a list header byte (0xc0..0xff): with fewer such bytes in
    # the whole input than the bound, no walk is needed.
    if len(data.translate(None, _LIST_HEADER_BYTES)) <= max_depth:
        return
    ends: list[int] = []
    position, size = 0, len(data)
    while position < size:
        while ends and position >= ends[-1]:
            ends.pop()
        prefix = data[position]
        if prefix < 0x80:
            position += 1
        elif prefix < 0xB8:
            position += 1 + prefix - 0x80
        elif prefix < 0xC0:
            width = prefix - 0xB7
            length = int.from_bytes(data[position + 1 : position + 1 + width], "big")
            position += 1 + width + length
        else:
            if prefix < 0xF8:
                width, length = 0, prefix - 0xC0
            else:
                width = prefix - 0xF7
                length = int.from_bytes(data[position + 1 : position + 1 + width], "big")
            position += 1 + width
            ends.append(position + length)
            if len(ends) > max_depth:
                raise EncodingError(f"malformed RLP: lists nested deeper than {max_depth}")


def _normalise(item: object) -> RLPItem:
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    if isinstance(item, list | tuple):
        return [_normalise(x) for x in item]
    raise EncodingError(f"unexpected RLP node {type(item).__name__}")


def encode_int(value: int) -> bytes:
    """Big-endian minimal encoding of a non-negative integer (0 is the empty string)."""
    if value < 0:
        raise EncodingError("integers must be non-negative")
    if value == 0:
        return b""
    size = (value.bit_length() + 7) // 8
    if size > MAX_INT_BYTES:
        raise EncodingError(f"integer wider than {MAX_INT_BYTES * 8} bits")
    return value.to_bytes(size, "big")


def decode_int(item: RLPItem, field: str) -> int:
    """Decode a minimal big-endian integer; leading zeros are non-canonical."""
    raw = as_bytes(item, field)
    if raw[:1] == b"\x00":
        raise EncodingError(f"{field}: integer has leading zero bytes")
    if len(raw) > MAX_INT_BYTES:
        raise EncodingError(f"{field}: integer wider than {MAX_INT_BYTES * 8} bits")
    return int.from_bytes(raw, "big")


def as_bytes(item: RLPItem, field: str, size: int | None = None) -> bytes:
    """Return ``item`` as bytes, checking it is a string (not a list) of ``size`` if given."""
    if not isinstance(item, bytes):
        raise EncodingError(f"{field}: expected a byte string, got a list")
    if size is not None and len(item) != size:
        raise EncodingError(f"{field}: expected {size} bytes, got {len(item)}")
    return item


def as_list(item: RLPItem, field: str, count: int | None = None) -> list[RLPItem]:
    """Return ``item`` as a list, checking its length is ``count`` if given."""
    if not isinstance(item, list):
        raise EncodingError(f"{field}: expected a list, got a byte string")
    if count is not None and len(item) != count:
        raise EncodingError(f"{field}: expected {count} fields, got {len(item)}")
    return item


def encode_optional(item: RLPItem | None) -> RLPItem:
    """Encode an optional nested value as a list of zero or one elements."""
    return [] if item is None else [item]


def decode_optional(item: RLPItem, field: str) -> RLPItem | None:
    """Inverse of :func:`encode_optional`."""
    wrapper = as_list(item, field)
    if len(wrapper) > 1:
        raise EncodingError(f"{field}: optional value holds {len(wrapper)} elements")
    return wrapper[0] if wrapper else None


def encode_sequence(items: Sequence[RLPItem]) -> list[RLPItem]:
    """Encode a homogeneous sequence as an RLP list."""
    return list(items)
