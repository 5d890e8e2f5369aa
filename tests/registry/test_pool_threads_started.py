"""The registry's thread pools have all their threads running once it has started, so that
no request's call into a pool waits on the event loop for a new thread to start."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry import threads
from registry.app import create_app
from registry.settings import RegistrySettings

pytestmark = pytest.mark.no_database


def _running(prefix: str) -> int:
    return sum(1 for thread in threading.enumerate() if thread.name.startswith(prefix))


def test_both_pools_run_every_thread_once_the_registry_has_started(tmp_path: Path) -> None:
    settings = RegistrySettings(
        data_dir=tmp_path / "registry", node_url="http://127.0.0.1:9", run_workers=False
    )
    with TestClient(create_app(settings)):
        assert _running("registry-io") == threads.POOL_THREADS
        assert _running("registry-verify") == threads.VERIFY_THREADS


def test_starting_again_starts_nothing_more_and_gives_up_on_a_busy_pool() -> None:
    threads.start_threads()
    before = _running("registry-io")
    assert before == threads.POOL_THREADS
    # One thread held by other work: the barrier cannot fill, and the start gives up.
    release = threading.Event()
    held = threads._executor().submit(release.wait)
    try:
        threads.start_threads(timeout_s=0.5)
    finally:
        release.set()
        held.result()
    assert _running("registry-io") == before
