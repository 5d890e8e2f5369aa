"""Rendered public credit pages kept per registry process, each served again only while it is
exactly the page that would be rendered now.

A page (a subject's public profile, a search's hits) is kept with what it depends on:

- the credit version it was read at (:func:`registry.credit.queries.credit_version`, the
  last credit event's number): every change of a record — stored, corrected, stopped,
  withdrawn, repaired, a list exit — makes a credit event in the same transaction, so a
  page read before the change is never served after it, whichever process made it. The
  version is read before the page's records, so a page is at worst kept under an older
  version than it shows and read again;
- the instants it holds for: from the instant it was read at to the next instant at which
  one of its records enters or leaves public display (:func:`profile_changes_after`,
  :func:`search_changes_after`), so a record leaves the page exactly at its window's end;
- the time shown on it (to the minute), and the language and the link to the other one.
  The public pages are kept with their time left out and filled in as they are served
  (:func:`registry.credit.pages.show_at`), so they all pass the same ``shown_time`` and a
  kept page outlives its minute: otherwise every kept page is read and rendered again at
  once as each minute begins.

The cache is bounded (least recently used first); a miss reads and renders as without it.
The version is exact only where credit events commit in the order of their numbers (SQLite,
one writer at a time): the routes keep no page on PostgreSQL."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from registry.caches import LruCache

__all__ = ["PAGE_CACHE_SIZE", "CachedPage", "PageCache", "Rendered"]

PAGE_CACHE_SIZE = 2_048
"""Most pages kept per process (a page is a few kilobytes)."""


@dataclass(frozen=True)
class Rendered:
    """A page as rendered: its HTML and HTTP status."""

    html: str
    status: int


@dataclass(frozen=True)
class CachedPage:
    """A rendered page and the instants it holds for."""

    page: Rendered
    since: datetime.datetime
    """The instant it was read at."""
    until: datetime.datetime | None
    """The next instant at which one of its records enters or leaves display (exclusive);
    None: none ever does."""
    shown_time: str
    """The time the page shows (to the minute)."""

    def holds_at(self, at: datetime.datetime, shown_time: str) -> bool:
        """Whether the page read at ``at``, showing ``shown_time``, would be this one."""
        return (
            self.since <= at
            and (self.until is None or at < self.until)
            and self.shown_time == shown_time
        )


class PageCache:
    """Pages by what names them (the page kind, the subject or search text, the language,
    the link to the other language) and the credit version (see the module's text)."""

    def __init__(self, capacity: int = PAGE_CACHE_SIZE) -> None:
        """Keep at most ``capacity`` pages."""
        self._pages: LruCache[tuple[Hashable, int], CachedPage] = LruCache(capacity)

    def page(
        self,
        name: Hashable,
        version: int,
        at: datetime.datetime,
        shown_time: str,
        read: Callable[[], tuple[Rendered, datetime.datetime | None]],
    ) -> Rendered:
        """The page ``name`` at ``at``: kept, or ``read()`` (the page rendered at ``at`` and
        the next instant it changes) and kept. ``version`` is the credit version read
        BEFORE this call, so before ``read()`` reads the records."""
        key = (name, version)
        kept = self._pages.get(key)
        if kept is not None and kept.holds_at(at, shown_time):
            return kept.page
        page, until = read()
        self._pages.put(key, CachedPage(page, at, until, shown_time))
        return page

    def __len__(self) -> int:
        return len(self._pages)
