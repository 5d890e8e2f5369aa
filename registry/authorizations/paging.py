"""Pages of the data-sharing listings: at most ``limit`` entries and an opaque ``next``
cursor naming the last entry given, so the following page starts right after it.

Every listing is ordered by a key no later insert can take a place before (a row's
creation second with its id, a stream position, the access log's sequence), and a page
is the rows strictly after the cursor's key: walking the pages finds every entry that was
there when the walk began exactly once, whatever is inserted meanwhile. A cursor names its
listing, so one listing's cursor is refused by another."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query

from registry.errors import InvalidInput
from registry.limits import MAX_PAGE_CURSOR_CHARS, MAX_PAGE_ENTRIES

T = TypeVar("T")

DEFAULT_LIMIT = 50
"""Entries of a page when the caller names no ``limit``."""

MAX_LIMIT = MAX_PAGE_ENTRIES
"""Most entries of one page (the registry's limits table)."""

MAX_CURSOR_LENGTH = MAX_PAGE_CURSOR_CHARS
"""Longest cursor accepted, checked before it is decoded (the registry's limits table)."""

MAX_KEY_TEXT = 64
"""Longest text part of a cursor's key."""

CursorKey = tuple[int | str, ...]
"""The ordering key of the last entry of a page."""

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"entries per page (1 to {MAX_LIMIT})")
]
"""The ``limit`` parameter of every paged listing."""

AfterQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="the ``next`` cursor of the previous page; omit for the first page",
    ),
]
"""The ``after`` parameter of every paged listing."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    """Its entries, in the listing's order."""
    next: str | None
    """The cursor of the following page; None on the last page."""


def encode_cursor(listing: str, key: CursorKey) -> str:
    """The opaque cursor of ``key`` in ``listing``."""
    text = json.dumps([listing, *key], separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _invalid() -> InvalidInput:
    return InvalidInput("not a cursor of this listing", code="invalid_cursor")


def decode_cursor(listing: str, cursor: str | None, shape: Sequence[type]) -> CursorKey | None:
    """The key of a cursor of ``listing`` whose parts have the types of ``shape`` (int or
    str); None for no cursor. Raises InvalidInput (422, ``invalid_cursor``) for anything
    else, before parsing more than :data:`MAX_CURSOR_LENGTH` characters."""
    if cursor is None:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _invalid()
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        value = json.loads(text)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid() from None
    if not isinstance(value, list) or len(value) != len(shape) + 1 or value[0] != listing:
        raise _invalid()
    key = value[1:]
    for part, kind in zip(key, shape, strict=True):
        if kind is int and (isinstance(part, bool) or not isinstance(part, int)):
            raise _invalid()
        if kind is str and (not isinstance(part, str) or len(part) > MAX_KEY_TEXT):
            raise _invalid()
    return tuple(key)


def check_limit(limit: int) -> int:
    """``limit`` if it is 1 to :data:`MAX_LIMIT`; raises InvalidInput."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}", code="invalid_limit")
    return limit


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_CURSOR_LENGTH",
    "MAX_LIMIT",
    "AfterQuery",
    "CursorKey",
    "LimitQuery",
    "Page",
    "check_limit",
    "decode_cursor",
    "encode_cursor",
]
