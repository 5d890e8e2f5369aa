"""The one canonical JSON encoding of everything lianxin hashes: RFC 8785, the JSON
Canonicalization Scheme (JCS), through the ``rfc8785`` package (Trail of Bits), with one
documented extension.

What the encoding is:

- UTF-8, no insignificant white space;
- object members sorted by the UTF-16 code units of their names (RFC 8785 §3.2.3);
- strings written as RFC 8785 §3.2.2.2 says: ``"`` and ``\\`` escaped, the controls
  U+0000–U+001F escaped (``\\b \\t \\n \\f \\r``, others as ``\\u00xx``), every other
  character as itself;
- numbers as ECMAScript writes a double (RFC 8785 §3.2.2.3): ``1.0`` → ``1``,
  ``1e16`` → ``10000000000000000``, ``1e-7`` → ``1e-7``, ``-0.0`` → ``0``;
- ``true``, ``false``, ``null``.

Refused (:class:`CanonicalJsonError`): ``NaN`` and the infinities, strings or names with a
lone UTF-16 surrogate, names that are not strings, and values of any other Python type.

The extension: an integer beyond ±(2**53 − 1), which RFC 8785 would round through a double,
is written with its exact decimal digits. Proof bundles carry such integers (a key whose
validity has no end is valid until block 2**64 − 1); under :func:`canonical_json` they stay
exact, and every value inside the I-JSON range encodes exactly as RFC 8785 says. Data that
arrives from outside (a record's metadata, say) is held to strict RFC 8785 with
:func:`strict_canonical_json`, which refuses those integers instead.

Encodings before this one (version 1, :func:`legacy_canonical_json`) were Python's
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``. The two agree on
every value made of strings, integers within ±(2**53 − 1), booleans, null, arrays and objects
whose names hold no character at or above U+E000; they differ for non-integral or large
floats (``1.5e+16`` against ``15000000000000000``, ``1.0`` against ``1``), and in the order
of names where a character above U+FFFF meets one in U+E000–U+FFFF. A hash made before the
change is checked against both forms (:func:`canonical_forms`): both are JSON texts that
parse back to the same value, so accepting either never lets one text stand for two values.

The encoder walks the value with its own stack, never recursing, so a deeply nested value
costs memory, not the interpreter's C stack. The common case — no floats, names below
U+E000, safe integers, shallow — is where Python's sorted ``json.dumps`` writes the very
same bytes, and is handed to it (in C, five times faster); everything else goes through the
walk, with ``rfc8785`` for strings and numbers. The tests hold both paths to the package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import rfc8785

from sdk.errors import SdkError

SAFE_INTEGER_MAX = 2**53 - 1
"""The largest integer a double holds exactly (I-JSON, RFC 7493 §2.2); strict encoding
refuses integers beyond ± this."""

CANONICAL_JSON_VERSION = 2
"""The encoding :func:`canonical_json` writes: 2 = RFC 8785 (1 was Python's sorted
``json.dumps``, :func:`legacy_canonical_json`)."""


class CanonicalJsonError(SdkError):
    """A value that has no canonical JSON encoding: NaN or an infinity, a lone surrogate,
    a name that is not a string, an unsupported type, or (strict) an integer beyond
    ±(2**53 − 1)."""


class _Raw(bytes):
    """Output bytes queued on the encoder's stack (told apart from values by type)."""


_OPEN_OBJECT = _Raw(b"{")
_CLOSE_OBJECT = _Raw(b"}")
_OPEN_ARRAY = _Raw(b"[")
_CLOSE_ARRAY = _Raw(b"]")
_COMMA = _Raw(b",")
_COLON = _Raw(b":")


def _string(text: str) -> bytes:
    try:
        return rfc8785.dumps(text)
    except rfc8785.CanonicalizationError:
        raise CanonicalJsonError("a string holds a lone UTF-16 surrogate") from None


def _sort_key(name: Any) -> bytes:
    if not isinstance(name, str):
        raise CanonicalJsonError(f"object names must be strings, not {type(name).__name__}")
    try:
        # Big-endian UTF-16 compares byte-wise in code-unit order (RFC 8785 §3.2.3).
        return name.encode("utf-16-be")
    except UnicodeEncodeError:
        raise CanonicalJsonError("an object name holds a lone UTF-16 surrogate") from None


def _scalar(value: Any, *, strict: bool) -> bytes:
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        if -SAFE_INTEGER_MAX <= value <= SAFE_INTEGER_MAX:
            return str(int(value)).encode("ascii")
        if strict:
            raise CanonicalJsonError(f"integer {value} is beyond ±(2**53 − 1)")
        return str(int(value)).encode("ascii")
    if isinstance(value, float):
        try:
            return rfc8785.dumps(value)
        except rfc8785.CanonicalizationError:
            raise CanonicalJsonError(f"{value!r} is not a JSON number") from None
    raise CanonicalJsonError(f"{type(value).__name__} has no JSON encoding")


PLAIN_DEPTH_LIMIT = 64
"""Deepest value handed to Python's C encoder by the fast path (it recurses)."""

_NAME_ORDER_DIFFERS_FROM = "\ue000"
"""Code-point order and UTF-16 order of names agree below this character."""


def plain(value: Any, *, strict: bool) -> bool:
    """Whether sorted ``json.dumps`` writes ``value`` exactly as RFC 8785 does: only dicts,
    lists, strings, booleans, None and integers (within ±(2**53 − 1) when ``strict``), names
    below U+E000, at most :data:`PLAIN_DEPTH_LIMIT` levels."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if strict and not -SAFE_INTEGER_MAX <= item <= SAFE_INTEGER_MAX:
                return False
        elif kind is dict or kind is list:
            if depth >= PLAIN_DEPTH_LIMIT:
                return False
            if kind is dict:
                for name in item:
                    if type(name) is not str or (name and max(name) >= _NAME_ORDER_DIFFERS_FROM):
                        return False
                members = item.values()
            else:
                members = item
            stack.extend((member, depth + 1) for member in members)
        else:
            return False
    return True


def _encode(value: Any, *, strict: bool) -> bytes:
    if plain(value, strict=strict):
        # The common case, in C: the same bytes (tests/sdk/test_canonical.py holds both
        # paths to the rfc8785 package).
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
        except UnicodeEncodeError:
            raise CanonicalJsonError("a string holds a lone UTF-16 surrogate") from None
    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Raw:
            out.append(item)
        elif isinstance(item, Mapping):
            names = sorted(item, key=_sort_key)
            queued: list[Any] = [_CLOSE_OBJECT]
            for index in range(len(names) - 1, -1, -1):
                name = names[index]
                queued.append(item[name])
                queued.append(_COLON)
                queued.append(_Raw(_string(name)))
                if index:
                    queued.append(_COMMA)
            queued.append(_OPEN_OBJECT)
            stack.extend(queued)
        elif isinstance(item, list | tuple):
            queued = [_CLOSE_ARRAY]
            for index in range(len(item) - 1, -1, -1):
                queued.append(item[index])
                if index:
                    queued.append(_COMMA)
            queued.append(_OPEN_ARRAY)
            stack.extend(queued)
        else:
            out.append(_scalar(item, strict=strict))
    return b"".join(out)


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (RFC 8785, integers beyond ±(2**53 − 1)
    written exactly; see the module's text). Raises :class:`CanonicalJsonError` for a value
    that has none."""
    return _encode(value, strict=False)


def strict_canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``, refusing (CanonicalJsonError) every integer beyond
    ±(2**53 − 1) as well: what data from outside is held to before it is hashed."""
    return _encode(value, strict=True)


def legacy_canonical_json(value: Any) -> bytes:
    """Version 1 of the encoding (sorted ``json.dumps``), for hashes made before RFC 8785;
    raises CanonicalJsonError where it has no UTF-8 form (NaN and the infinities are
    refused too, although version 1 wrote them)."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        raise CanonicalJsonError(f"no version 1 encoding: {exc}") from None


def canonical_forms(value: Any) -> tuple[bytes, ...]:
    """The encodings a hash of ``value`` may have been made over, newest first: the
    canonical one, then version 1 where it differs. Raises CanonicalJsonError if ``value``
    has no canonical encoding."""
    current = canonical_json(value)
    try:
        legacy = legacy_canonical_json(value)
    except CanonicalJsonError:
        return (current,)
    return (current,) if legacy == current else (current, legacy)
