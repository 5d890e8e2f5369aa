"""JSON from outside, parsed only after its size and nesting depth are known to be bounded.

``json.loads`` recurses once per nesting level, in C. Its guard is the interpreter's recursion
limit, which a dependency may raise far past what the C stack holds (``py_ecc`` sets 100,000 at
import), so a few hundred kilobytes of ``[[[[…`` could overflow the stack and kill the process
before any check runs. Every byte string that arrives from outside and is parsed as JSON goes
through :func:`loads_bounded`, which measures the depth with a linear scan first, never
recursing, and refuses what is too deep or too large before ``json.loads`` sees it.

:func:`loads_bounded` also refuses the JSON that cannot be hashed canonically: ``NaN``,
``Infinity``, numbers out of the IEEE-754 double range, and lone UTF-16 surrogates.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from chain.errors import ChainError

DEFAULT_MAX_DEPTH = 64
"""The nesting depth allowed by default: far more than any request of ours needs."""

_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_BRACKET_STEP = {0x5B: 1, 0x7B: 1, 0x5D: -1, 0x7D: -1}
_LONE_SURROGATE = re.compile(
    r"[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]"
)


class JsonLimitError(ChainError):
    """JSON from outside that is refused before or while it is parsed. ``reason`` is one of
    ``too_large``, ``too_deep``, ``not_json``, ``not_utf8``, ``non_finite_number`` and
    ``lone_surrogate``; ``limit`` is the bound that was crossed, when there is one."""

    def __init__(self, reason: str, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.limit = limit


def nesting_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data``, counted without recursion.
    Brackets inside strings do not count. Malformed input gives a number too (``json.loads``
    refuses it later); the point is only that the number bounds what the parser would
    recurse into."""
    if data.count(b"[") + data.count(b"{") == 0:
        return 0
    if b'"' in data:
        data = outside_strings(data)
    brackets = data.translate(None, _NOT_BRACKETS)
    openers = brackets.count(b"[") + brackets.count(b"{")
    if openers <= 1:
        return openers
    # One pass over the brackets alone, in C: a bomb of N levels is N bytes here.
    return max(0, max(accumulate(map(_BRACKET_STEP.__getitem__, brackets))))


def outside_strings(data: bytes) -> bytes:
    """``data`` without its JSON strings — its structure, numbers and literals: escaped
    backslashes and quotes dropped first (left to right, as the parser reads them), then
    every other stretch between quotes. Byte-string operations only, so a large document
    costs milliseconds, not a regex step per byte."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(data.split(b'"')[0::2])


def check_bounds(data: bytes, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise :class:`JsonLimitError` if ``data`` is longer than ``max_bytes`` or nests deeper
    than ``max_depth``; return nothing otherwise."""
    if len(data) > max_bytes:
        raise JsonLimitError(
            "too_large", f"body of {len(data)} bytes; at most {max_bytes}", limit=max_bytes
        )
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return  # cannot nest deeper than it has openers: skip the scan
    depth = nesting_depth(data)
    if depth > max_depth:
        raise JsonLimitError(
            "too_deep", f"JSON nested {depth} levels deep; at most {max_depth}", limit=max_depth
        )


def _refuse_constant(name: str) -> Any:
    raise JsonLimitError("non_finite_number", f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonLimitError("non_finite_number", f"number {text[:40]} is out of range")
    return value


_STRICT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_parse_float)
"""The decoder of strict values, made once: ``json.loads`` given these hooks builds a new
decoder and scanner on every call, which cost twice the parse of a JSON-RPC request. Like
``json.loads``' own default decoder, it keeps no state between calls."""


def _find_lone_surrogate(value: Any) -> bool:
    """Whether any string in the (already depth-bounded) value holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            for key, member in item.items():
                if _LONE_SURROGATE.search(key):
                    return True
                stack.append(member)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads_bounded(
    data: bytes | str,
    *,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    strict_values: bool = True,
) -> Any:
    """Parse ``data`` as JSON once it is known to be at most ``max_bytes`` long and at most
    ``max_depth`` levels deep. With ``strict_values`` (the default), ``NaN``, ``Infinity``,
    numbers beyond the double range and lone surrogates are refused as well, so that what is
    accepted re-encodes to the same value. Raises :class:`JsonLimitError`; never recurses
    deeper than ``max_depth``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    check_bounds(raw, max_bytes=max_bytes, max_depth=max_depth)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonLimitError("not_utf8", f"body is not UTF-8: {exc.reason}") from None
    try:
        value = _STRICT_DECODER.decode(text) if strict_values else json.loads(text)
    except JsonLimitError:
        raise
    except RecursionError:
        raise JsonLimitError("too_deep", "JSON nested too deeply", limit=max_depth) from None
    except ValueError as exc:
        raise JsonLimitError("not_json", f"not JSON: {exc}") from None
    if strict_values and "\\" in text and _find_lone_surrogate(value):
        raise JsonLimitError("lone_surrogate", "a string holds a lone UTF-16 surrogate")
    return value
