"""The salted hashes of a record's text fields, computed in bulk: byte for byte what
:func:`sdk.commitments.field_hash` gives for a text or null value (SM3 of the prefix and
the RLP of ``[salt, name, canonical JSON of value]``), without its general machinery.

For strings, compact ``json.dumps`` without ASCII escaping is their RFC 8785 form (see
:func:`credit.records.content_hash`), and the RLP of three byte strings is written out
here; a test holds this to :func:`sdk.commitments.field_hash` on generated input. An
import hashes every field of every row, so this is where its time goes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring as _encode_string
from typing import Protocol, cast

from chain.crypto import sm3
from chain.primitives import Hash32
from credit.json_encoders import json_encoder
from credit.records import CONTENT_HASH_PREFIX, RecordKind
from sdk.commitments import COMMITMENT_SALT_SIZE, FIELD_HASH_PREFIX, NO_FIELDS

__all__ = [
    "SaltContext",
    "content_hash_of",
    "derived_salt",
    "fields_root_of",
    "text_field_hash",
    "text_field_hashes",
    "text_field_hashes_under",
]

SALT_SIZE = COMMITMENT_SALT_SIZE
"""Bytes of a field's salt."""


class SaltContext(Protocol):
    """An SM3 context (``hashlib.new("sm3", seed)``) fed a record's secret salt seed."""

    def copy(self) -> SaltContext:
        """The context, to be fed more without changing this one."""
        ...

    def update(self, data: bytes, /) -> None:
        """Feed ``data``."""
        ...

    def digest(self) -> bytes:
        """SM3 of what was fed."""
        ...


def derived_salt(seeded: SaltContext, name: str) -> bytes:
    """The salt of field ``name`` under a record's seed: the first 16 bytes of SM3 of the
    seed (fed to ``seeded``) followed by the name's UTF-8."""
    context = seeded.copy()
    context.update(name.encode())
    return context.digest()[:SALT_SIZE]


def _prefixed(length: int, offset: int) -> bytes:
    if length <= 55:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def _rlp_string(data: bytes) -> bytes:
    if len(data) == 1 and data[0] < 0x80:
        return data
    return _prefixed(len(data), 0x80) + data


def text_field_hash(name: str, value: str | None, salt: bytes) -> Hash32:
    """:func:`sdk.commitments.field_hash` of a text (or null) value."""
    encoded = b"null" if value is None else json.dumps(value, ensure_ascii=False).encode()
    payload = _rlp_string(bytes(salt)) + _rlp_string(name.encode()) + _rlp_string(encoded)
    digest = hashlib.new("sm3", FIELD_HASH_PREFIX + _prefixed(len(payload), 0xC0) + payload)
    return Hash32(digest.digest())


_SM3_START = hashlib.new("sm3")
"""An SM3 context fed nothing, copied for each fields root (cheaper than ``hashlib.new``)."""

_FIELD_HASH_START = hashlib.new("sm3", FIELD_HASH_PREFIX)
"""An SM3 context fed :data:`FIELD_HASH_PREFIX`, copied for each field hash."""

_STRING_HEADS = [bytes((0x80 + size,)) for size in range(56)]
"""The RLP header of a byte string of each length up to 55."""

_LIST_HEADS = [bytes((0xC0 + size,)) for size in range(56)]
"""The RLP header of a list of each payload length up to 55."""

_NAME_PARTS: dict[str, tuple[bytes, bytes]] = {}
"""Field name → its UTF-8 and the RLP of that (the few names of the layouts; bounded below)."""

_NAME_PAIR_HEAD: dict[str, bytes] = {}
"""Field name → the RLP list header, the RLP of the name and the header of a 32-byte
string: everything of a ``[name, hash]`` pair of the fields root but the hash."""

_NAMES_CACHED = 4_096
"""Most names kept in each table of names here (a record has about thirty)."""


def _name_parts(name: str) -> tuple[bytes, bytes]:
    parts = _NAME_PARTS.get(name)
    if parts is None:
        parts = (name.encode(), _rlp_string(name.encode()))
        if len(_NAME_PARTS) < _NAMES_CACHED:
            _NAME_PARTS[name] = parts
    return parts


def _pair_head(name: str) -> bytes:
    head = _NAME_PAIR_HEAD.get(name)
    if head is None:
        encoded = _rlp_string(name.encode())
        head = _prefixed(len(encoded) + 33, 0xC0) + encoded + b"\xa0"
        if len(_NAME_PAIR_HEAD) < _NAMES_CACHED:
            _NAME_PAIR_HEAD[name] = head
    return head


def text_field_hashes(
    fields: Mapping[str, str | None], salt: Callable[[str], bytes]
) -> dict[str, Hash32]:
    """The hash of every field of ``fields`` under its salt ``salt(name)``: what
    :func:`text_field_hash` gives for each, with the per-name encodings computed once per
    process and one SM3 context copied per field."""
    hashes: dict[str, Hash32] = {}
    for name, value in fields.items():
        salted = salt(name)
        head = b"\x90" + salted if len(salted) == 16 else _rlp_string(bytes(salted))
        if value is None:
            tail = b"\x84null"
        else:
            encoded = _encode_string(value).encode()
            size = len(encoded)
            tail = (_STRING_HEADS[size] if size < 56 else _prefixed(size, 0x80)) + encoded
        payload = head + _name_parts(name)[1] + tail
        size = len(payload)
        context = _FIELD_HASH_START.copy()
        context.update(_LIST_HEADS[size] if size < 56 else _prefixed(size, 0xC0))
        context.update(payload)
        hashes[name] = Hash32(context.digest())
    return hashes


def text_field_hashes_under(
    fields: Mapping[str, str | None], seeded: SaltContext
) -> dict[str, Hash32]:
    """:func:`text_field_hashes` of ``fields`` with each field's salt
    :func:`derived_salt` of ``seeded`` (an SM3 context fed the record's salt seed): the
    same hashes, each salt derived in this loop rather than by a call per field."""
    hashes: dict[str, bytes] = {}
    field_start = _FIELD_HASH_START
    salt_head = _STRING_HEADS[SALT_SIZE]
    for name, value in fields.items():
        encoded_name, name_rlp = _name_parts(name)
        context = seeded.copy()
        context.update(encoded_name)
        head = salt_head + context.digest()[:SALT_SIZE] + name_rlp
        if value is None:
            payload = head + b"\x84null"
        else:
            encoded = _encode_string(value).encode()
            size = len(encoded)
            payload = head + (_STRING_HEADS[size] if size < 56 else _prefixed(size, 0x80)) + encoded
        size = len(payload)
        context = field_start.copy()
        context.update((_LIST_HEADS[size] if size < 56 else _prefixed(size, 0xC0)) + payload)
        hashes[name] = context.digest()
    return cast(dict[str, Hash32], hashes)


def fields_root_of(hashes: Mapping[str, bytes]) -> Hash32:
    """:func:`sdk.commitments.fields_root` of ``hashes`` (name → 32-byte hash): SM3 of the
    RLP of the ``[name, hash]`` pairs sorted by name; NO_FIELDS if there are none."""
    if not hashes:
        return NO_FIELDS
    heads = _NAME_PAIR_HEAD
    pairs = []
    for name, value in sorted(hashes.items()):
        head = heads.get(name)
        if head is not None and len(value) == 32:
            pairs.append(head + value)
            continue
        value = bytes(value)
        if len(value) == 32:
            pairs.append(_pair_head(name) + value)
            continue
        pair = _rlp_string(name.encode()) + _rlp_string(value)
        pairs.append(_prefixed(len(pair), 0xC0) + pair)
    payload = b"".join(pairs)
    context = _SM3_START.copy()
    context.update(_prefixed(len(payload), 0xC0) + payload)
    return Hash32(context.digest())


_CANONICAL_TEXT = json_encoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
"""The canonical JSON of a record's kind and fields, as ``json.dumps`` writes it with these
settings, by an encoder made once."""


def content_hash_of(kind: RecordKind, fields: Mapping[str, str | None]) -> Hash32:
    """:func:`credit.records.content_hash` of a record of ``kind`` whose
    :func:`credit.records.record_fields` are ``fields``, for a caller that has them already
    (canonical JSON of strings and nulls: compact, sorted ASCII keys, no ASCII escaping)."""
    payload = _CANONICAL_TEXT([kind.value, fields]).encode()
    return sm3(CONTENT_HASH_PREFIX + payload)
