"""Listings the registry answers page by page: one :class:`Page` of entries and the cursor
of the next, and the walks that follow the cursors to the end, bounded so that a registry
repeating a cursor or paging without end cannot hold the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sdk.json_shapes import json_text
from sdk.trust_types import MalformedAnswer

_T = TypeVar("_T")

MAX_PAGES = 100_000
"""Most pages a listing walk follows."""


@dataclass(frozen=True)
class Page(Generic[_T]):
    """One page of a listing."""

    items: list[_T]
    """Its entries, in the listing's order."""
    next: str | None
    """The cursor of the following page (pass it as ``after``); None on the last."""


def cursor_of(value: dict[str, Any]) -> str | None:
    """The ``next`` cursor of a page's JSON (None on the last page)."""
    after = value.get("next")
    return None if after is None else json_text(after)


def _following(page: Page[Any], after: str | None) -> str | None:
    if page.next is not None and page.next == after:
        raise MalformedAnswer("the registry gave the same cursor twice")
    return page.next


def walk(fetch: Callable[[str | None], Page[_T]]) -> list[_T]:
    """Every entry of a listing: ``fetch(after)`` gives the page after cursor ``after``."""
    items: list[_T] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = fetch(after)
        items.extend(page.items)
        if (after := _following(page, after)) is None:
            return items
    raise MalformedAnswer(f"a listing of more than {MAX_PAGES} pages")


async def walk_async(fetch: Callable[[str | None], Awaitable[Page[_T]]]) -> list[_T]:
    """As :func:`walk`, with ``fetch`` a coroutine function."""
    items: list[_T] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(after)
        items.extend(page.items)
        if (after := _following(page, after)) is None:
            return items
    raise MalformedAnswer(f"a listing of more than {MAX_PAGES} pages")
