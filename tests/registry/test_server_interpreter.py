"""The registry process's interpreter is set up for request traffic: threads waiting for the
GIL (the access writer back from a SQLite statement, the event loop) get it within half a
millisecond, not CPython's 5 ms, and what was alive at start is frozen out of the collector."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from registry.server import GC_THRESHOLDS, THREAD_SWITCH_INTERVAL_S, tune_interpreter

pytestmark = pytest.mark.no_database


@pytest.fixture
def restored() -> Iterator[None]:
    """Give the test process its own settings back afterwards."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def test_tuning_shortens_the_thread_switch_interval(restored: None) -> None:
    sys.setswitchinterval(0.005)
    tune_interpreter()
    assert sys.getswitchinterval() == pytest.approx(THREAD_SWITCH_INTERVAL_S)
    assert THREAD_SWITCH_INTERVAL_S <= 0.001
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
