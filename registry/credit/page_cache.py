"""Rendered public credit pages kept per registry process, each served again only while it is
exactly the page that would be rendered now.

A page (a subject's public profile, a search's hits) is kept with what it depends on:

- the credit version it was read at (:func:`registry.credit.credit_version.credit_version`,
  the last credit event's number): every change of a record — stored, corrected, stopped,
  withdrawn, repaired, a list exit — makes a credit event in the same transaction, so a
  page read before the change is never served after it, whichever process made it. The
  version is read before the page's records, so a page is at worst kept under an older
  version than it shows and read again;
- the instants it holds for: from the instant it was read at to the next instant at which
  one of its records enters or leaves public display (:func:`profile_changes_after`,
  :func:`search_changes_after` of :mod:`registry.credit.public_reads`), so a record leaves
  the page exactly at its window's end;
- the time shown on it (to the minute), and the language and the link to the other one.
  The public pages are kept with their time left out and filled in as they are served
  (:func:`registry.credit.pages.show_at`), so they all pass the same ``shown_time`` and a
  kept page outlives its minute: otherwise every kept page is read and rendered again at
  once as each minute begins.

The cache is bounded (least recently used first); a miss reads and renders as without it.
Requests that miss the same page at once share one read (:meth:`PageCache.page`): after a
credit event every kept page is missed together, and a page asked for by several requests
in that moment was read and rendered by each of them.
The version is exact only where credit events commit in the order of their numbers (SQLite,
one writer at a time): the routes keep no page on PostgreSQL."""

from __future__ import annotations

import datetime
import threading
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


class _Read:
    """A page being read; the requests that miss it meanwhile wait for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.kept: CachedPage | None = None
        """The page read (None: the read failed)."""


class PageCache:
    """Pages by what names them (the page kind, the subject or search text, the language,
    the link to the other language) and the credit version (see the module's text)."""

    def __init__(self, capacity: int = PAGE_CACHE_SIZE) -> None:
        """Keep at most ``capacity`` pages."""
        self._pages: LruCache[tuple[Hashable, int], CachedPage] = LruCache(capacity)
        self._reads: dict[tuple[Hashable, int], _Read] = {}
        self._lock = threading.Lock()

    def kept(
        self, name: Hashable, version: int, at: datetime.datetime, shown_time: str
    ) -> Rendered | None:
        """The page ``name`` at ``at`` if kept (``version`` read before this call), else
        None: nothing is read."""
        kept = self._pages.get((name, version))
        if kept is not None and kept.holds_at(at, shown_time):
            return kept.page
        return None

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
        BEFORE this call, so before ``read()`` reads the records.

        While one caller reads a page (a name and version), the others that miss it wait for
        that read and are served its page if it holds at their own instant, as a kept page
        would be; otherwise (read at a later instant than theirs, or the read failed) each
        reads for itself. A failure is never kept nor handed to another caller."""
        key = (name, version)
        found = self.kept(name, version, at, shown_time)
        if found is not None:
            return found
        with self._lock:
            found = self.kept(name, version, at, shown_time)
            if found is not None:
                return found
            reading = self._reads.get(key)
            first = reading is None
            if reading is None:
                reading = self._reads[key] = _Read()
        if first:
            return self._read(key, reading, at, shown_time, read)
        reading.done.wait()
        kept = reading.kept
        if kept is not None and kept.holds_at(at, shown_time):
            return kept.page
        return self._keep(key, at, shown_time, read).page

    def _read(
        self,
        key: tuple[Hashable, int],
        reading: _Read,
        at: datetime.datetime,
        shown_time: str,
        read: Callable[[], tuple[Rendered, datetime.datetime | None]],
    ) -> Rendered:
        """Read the page as the one caller reading ``key``; then let the others go on."""
        try:
            reading.kept = self._keep(key, at, shown_time, read)
            return reading.kept.page
        finally:
            with self._lock:
                del self._reads[key]
            reading.done.set()

    def _keep(
        self,
        key: tuple[Hashable, int],
        at: datetime.datetime,
        shown_time: str,
        read: Callable[[], tuple[Rendered, datetime.datetime | None]],
    ) -> CachedPage:
        page, until = read()
        kept = CachedPage(page, at, until, shown_time)
        self._pages.put(key, kept)
        return kept

    def __len__(self) -> int:
        return len(self._pages)
