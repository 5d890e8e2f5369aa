"""TOML from files an operator hands in (genesis, ``node.toml``), parsed only once its size and
nesting depth are known to be bounded.

``tomllib`` parses arrays and inline tables by recursion, one Python call per level, so a file
of ``a = [[[[…`` is as deep as it is long; with a dependency's raised recursion limit that
can overflow the C stack (see :mod:`chain.limits`). :func:`loads_toml_bounded` measures the
depth with a linear scan first, skipping comments and the four kinds of strings, and refuses
what is too deep or too large before ``tomllib`` sees it.
"""

from __future__ import annotations

import tomllib
from typing import Any

from chain.errors import ChainError

_OPENERS = "[{"
_CLOSERS = "]}"


class TomlLimitError(ChainError):
    """A TOML document refused before or while it is parsed. ``reason`` is one of
    ``too_large``, ``too_deep`` and ``not_toml``; ``limit`` is the bound that was crossed,
    when there is one."""

    def __init__(self, reason: str, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.limit = limit


def _end_of_multiline(text: str, start: int, quote: str) -> int:
    """Index just past the multi-line string whose body starts at ``start``."""
    delimiter = quote * 3
    index = start
    while True:
        found = text.find(delimiter, index)
        if quote == '"':
            backslash = text.find("\\", index)
            if backslash != -1 and (found == -1 or backslash < found):
                index = backslash + 2  # an escape: the next character is content
                continue
        if found == -1:
            return len(text)
        end = found + 3
        # Up to two more quotes right before the delimiter belong to the string (TOML 1.0).
        extra = 0
        while extra < 2 and text.startswith(quote, end):
            end += 1
            extra += 1
        return end


def _end_of_line_string(text: str, start: int, quote: str) -> int:
    """Index just past the one-line string whose body starts at ``start`` (or its line's
    end, where an unterminated string stops the parser anyway)."""
    index = start
    while index < len(text):
        char = text[index]
        if char == quote:
            return index + 1
        if char == "\n":
            return index
        index += 2 if char == "\\" and quote == '"' else 1
    return index


def toml_nesting_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings and comments, counted without
    recursion. A table header ``[a]`` or ``[[a]]`` counts as one or two levels, closed on its
    own line. Malformed input gives a number too; the point is that it bounds what the
    parser would recurse into."""
    depth = 0
    deepest = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
            index += 1
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
            index += 1
        elif char == "#":
            newline = text.find("\n", index)
            index = length if newline == -1 else newline
        elif char in "\"'":
            if text.startswith(char * 3, index):
                index = _end_of_multiline(text, index + 3, char)
            else:
                index = _end_of_line_string(text, index + 1, char)
        else:
            index += 1
    return deepest


def loads_toml_bounded(text: str, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Parse ``text`` as TOML once it is known to be at most ``max_bytes`` long (UTF-8) and
    at most ``max_depth`` levels deep. Raises :class:`TomlLimitError` (``not_toml`` for a
    document ``tomllib`` refuses); never lets the parser recurse deeper than ``max_depth``."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise TomlLimitError(
            "too_large", f"document of {size} bytes; at most {max_bytes}", limit=max_bytes
        )
    depth = toml_nesting_depth(text)
    if depth > max_depth:
        raise TomlLimitError(
            "too_deep", f"TOML nested {depth} levels deep; at most {max_depth}", limit=max_depth
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlLimitError("not_toml", f"not valid TOML: {exc}") from exc
    except RecursionError:
        raise TomlLimitError("too_deep", "TOML nested too deeply", limit=max_depth) from None
