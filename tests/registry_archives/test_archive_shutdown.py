"""A registry process told to stop (SIGTERM) while its scheduled fixity audit runs stops
the audit and its hashing workers before it exits, at once, even with a worker stuck
reading a file (a FIFO no one writes to): no worker outlives it, none is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from archive_samples import make_sample_bag
from process_tree import Proc, children, fifo_held_open, kill_sessions, still_running
from registry_harness import TrustChain, free_port, registry_environment, registry_settings

from archives.ingest import ingest
from archives.store import LocalArchiveStore

pytestmark = pytest.mark.no_database

AUDIT_START_S = 180.0
"""Longest the registry may take to start and its audit's workers to take up their first
task (each imports the registry, on a loaded machine)."""

EXIT_S = 30.0
"""Longest the registry may take to exit once told to (it waits 5 s at most for the audit,
which stops within a fraction of one)."""

LEFT_S = 15.0
"""Longest the processes it started may take to end after it (its resource tracker)."""


@pytest.fixture
def registry_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started registry processes; each is killed at the end with every process of its
    session."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    kill_sessions(started)


def test_a_registry_stopped_mid_audit_ends_the_audit_and_its_workers_first(
    trust_chain: TrustChain,
    tmp_path: Path,
    registry_processes: list[subprocess.Popen[bytes]],
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", None)
    store = LocalArchiveStore(tmp_path / "store")
    # Two hashing tasks, one per worker; the first is held up by the FIFO.
    files = {f"{n:04d}.txt": f"第{n}件\n".encode() for n in range(1, 101)}
    stored = ingest(
        make_sample_bag(tmp_path / "bag", files, 件数="100"), store, now=datetime.now(UTC)
    ).version
    fifo = store.bag_path(stored.package_id, 1) / "data" / "0000.txt"
    os.mkfifo(fifo)
    environment = registry_environment(settings) | {
        "LIANXIN_ARCHIVES_STORE_DIR": str(store.root),
        "LIANXIN_ARCHIVES_AUDIT_INTERVAL_S": "3600",
        "LIANXIN_ARCHIVES_PROCESSES": "2",
    }
    log = tmp_path / "registry.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry.cli", "start", "--port", str(free_port())],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    registry_processes.append(process)
    registry = Proc.of(process.pid)
    assert registry is not None
    # No audit recorded yet: the first is due at once, and reads the FIFO.
    with fifo_held_open(fifo, AUDIT_START_S, alive=[registry]):
        started = children(process.pid)
        workers = [p for p in started if "multiprocessing.spawn" in p.command]
        assert len(workers) == 2, [p.command for p in started]
        process.terminate()
        process.wait(EXIT_S)
        # Stopped before the registry exited, the workers were gone by then.
        assert not [p for p in workers if p.running], log.read_text()
        left = still_running(started, LEFT_S)
        assert not left, [(p.pid, p.command) for p in left]
    assert "did not stop" not in log.read_text()
