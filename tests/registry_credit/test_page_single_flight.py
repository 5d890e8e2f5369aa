"""Requests that miss the same kept public page at once share one read
(registry.credit.page_cache.PageCache): the others wait for it and are served its page where
it holds at their own instant; a request earlier than the read, or one whose read failed,
reads for itself, and a failure is never handed on nor kept."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from registry.credit.page_cache import PageCache, Rendered

pytestmark = pytest.mark.no_database

AT = datetime.datetime(2023, 6, 1, 1, 0, tzinfo=datetime.UTC)
WAITERS = 4


class Reads:
    """A page's reads: each counted, the first held until released."""

    def __init__(self) -> None:
        self.count = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_first = False
        self._lock = threading.Lock()

    def reader(self, html: str) -> Callable[[], tuple[Rendered, datetime.datetime | None]]:
        def read() -> tuple[Rendered, datetime.datetime | None]:
            with self._lock:
                self.count += 1
                first = self.count == 1
            if first:
                self.started.set()
                assert self.release.wait(10)
                if self.fail_first:
                    raise RuntimeError("database gone")
            return Rendered(html, 200), None

        return read


def _missing_at_once(
    reads: Reads, waiter_at: datetime.datetime
) -> tuple[Future[Rendered], list[Future[Rendered]]]:
    """One request reading the page at AT, then WAITERS more missing it at ``waiter_at``
    while that read is held; then the read goes on."""
    cache = PageCache()
    pool = ThreadPoolExecutor(WAITERS + 1)
    first = pool.submit(cache.page, "subject", 7, AT, "", reads.reader("first"))
    assert reads.started.wait(10)
    waiting = [
        pool.submit(cache.page, "subject", 7, waiter_at, "", reads.reader(f"own {i}"))
        for i in range(WAITERS)
    ]
    time.sleep(0.3)  # the others reach the read in progress (or, later, the kept page)
    reads.release.set()
    pool.shutdown(wait=True)
    return first, waiting


def test_requests_missing_one_page_at_once_share_one_read() -> None:
    reads = Reads()
    first, waiting = _missing_at_once(reads, AT + datetime.timedelta(seconds=1))
    assert first.result().html == "first"
    assert [future.result().html for future in waiting] == ["first"] * WAITERS
    assert reads.count == 1


def test_a_request_earlier_than_the_read_reads_for_itself() -> None:
    reads = Reads()
    first, waiting = _missing_at_once(reads, AT - datetime.timedelta(seconds=1))
    assert first.result().html == "first"
    # Never the page read at the later instant (it may show what was not on display yet).
    assert all(future.result().html.startswith("own ") for future in waiting)
    assert reads.count >= 2


def test_a_failed_read_is_neither_handed_on_nor_kept() -> None:
    reads = Reads()
    reads.fail_first = True
    first, waiting = _missing_at_once(reads, AT + datetime.timedelta(seconds=1))
    with pytest.raises(RuntimeError, match="database gone"):
        first.result()
    pages = [future.result().html for future in waiting]
    assert all(page.startswith("own ") for page in pages)
    assert reads.count >= 2


def test_other_pages_and_versions_are_read_apart() -> None:
    cache = PageCache()
    reads = Reads()
    reads.release.set()
    assert cache.page("subject", 7, AT, "", reads.reader("a")).html == "a"
    assert cache.page("subject", 8, AT, "", reads.reader("b")).html == "b"
    assert cache.page("search", 7, AT, "", reads.reader("c")).html == "c"
    assert cache.page("subject", 7, AT, "", reads.reader("d")).html == "a"
    assert reads.count == 3
