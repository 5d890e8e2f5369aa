"""The workers of the archive's process pools end once the process that made the pool is
gone. A process running a fixity audit, or the hashing of a bag's files, is killed
(SIGKILL) while one of its workers is held up reading a file (a FIFO no one writes to) and
the other waits for its next task; each worker then exits, and so do the pool's helper
processes (the resource tracker)."""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from archive_samples import make_sample_bag
from process_tree import Proc, children, fifo_held_open, kill_sessions, still_running

from archives.ingest import ingest
from archives.store import LocalArchiveStore
from archives.worker_pools import process_pool

REPO = Path(__file__).resolve().parents[2]

WORKERS = 2

START_S = 120.0
"""Longest the workers may take to start and take up the file that holds one up (fresh
interpreters on a loaded machine)."""

EXIT_S = 15.0
"""Longest a worker may outlive the process that made its pool (it looks once a second)."""

_REPORT_WORKERS = textwrap.dedent(
    """
    import json, multiprocessing, sys, threading, time
    from pathlib import Path

    def report_workers(workers):
        # The pool's worker pids, once all have started; then wait to be killed.
        while len(started := multiprocessing.active_children()) < workers:
            time.sleep(0.05)
        print(json.dumps([process.pid for process in started]), flush=True)
        time.sleep(3600)
    """
)
"""The start of each script below."""

_AUDIT = _REPORT_WORKERS + textwrap.dedent(
    """
    if __name__ == "__main__":
        from archives.audit import audit_store
        from archives.store import LocalArchiveStore

        store, checkpoint, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
        threading.Thread(
            target=audit_store,
            args=(LocalArchiveStore(store), checkpoint),
            kwargs={"processes": workers},
            daemon=True,
        ).start()
        report_workers(workers)
    """
)
"""A fixity audit of a store by ``workers`` processes (the script's arguments: the store,
the checkpoint, the number of workers)."""

_HASHING = _REPORT_WORKERS + textwrap.dedent(
    """
    if __name__ == "__main__":
        from archives.bag_reader import _hash_all
        from archives.usability import ReadingBudget

        root, workers = Path(sys.argv[1]), int(sys.argv[2])
        budget = ReadingBudget.start()
        work = [(str(root), p.name, ("sha256",), budget) for p in sorted(root.iterdir())]
        threading.Thread(target=_hash_all, args=(work, workers), daemon=True).start()
        report_workers(workers)
    """
)
"""The hashing of every file of a directory as a bag's files are read (the script's
arguments: the directory, the number of workers)."""


@pytest.fixture
def scripts(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Started scripts; each is killed at the end with every process of its session."""
    started: list[subprocess.Popen[str]] = []
    yield started
    kill_sessions(started)
    for process in started:
        if process.stdout is not None:
            process.stdout.close()


def _start(scripts: list[subprocess.Popen[str]], script: str, *arguments: object) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", script, *(str(a) for a in arguments)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    scripts.append(process)


def _workers(process: subprocess.Popen[str]) -> list[Proc]:
    """The worker pids the script prints once they have started (within START_S)."""
    assert process.stdout is not None
    waiting = select.poll()
    waiting.register(process.stdout, select.POLLIN)
    assert waiting.poll(START_S * 1000), f"no workers started within {START_S} s"
    line = process.stdout.readline()
    assert line, f"the script ended ({process.wait()}) before its workers started"
    found = [Proc.of(pid) for pid in json.loads(line)]
    assert len(found) == WORKERS and all(p is not None for p in found), found
    return [p for p in found if p is not None]


def _kill_and_watch(process: subprocess.Popen[str], workers: list[Proc], fifo: Path) -> None:
    """Once a worker reads ``fifo``: kill the script, and see its workers and every other
    process it started end."""
    script = Proc.of(process.pid)
    assert script is not None
    with fifo_held_open(fifo, START_S, alive=[script, *workers]):
        helpers = [p for p in children(process.pid) if p not in workers]
        process.kill()
        process.wait()
        left = still_running(workers + helpers, EXIT_S)
        assert not left, [(p.pid, p.command) for p in left]


def test_an_audits_workers_end_when_the_audit_process_is_killed(
    tmp_path: Path, now: datetime, scripts: list[subprocess.Popen[str]]
) -> None:
    store = LocalArchiveStore(tmp_path / "store")
    # Two tasks (64 files each at most): one worker each; the first is held up by the FIFO.
    files = {f"{n:04d}.txt": f"第{n}件\n".encode() for n in range(1, 101)}
    version = ingest(make_sample_bag(tmp_path / "bag", files, 件数="100"), store, now=now).version
    fifo = store.bag_path(version.package_id, 1) / "data" / "0000.txt"
    os.mkfifo(fifo)
    _start(scripts, _AUDIT, store.root, tmp_path / "audit.ckpt", WORKERS)
    workers = _workers(scripts[0])
    assert all("multiprocessing.spawn" in p.command for p in workers)
    _kill_and_watch(scripts[0], workers, fifo)


def test_a_bag_readers_workers_end_when_the_reading_process_is_killed(
    tmp_path: Path, scripts: list[subprocess.Popen[str]]
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    # More files than a bag hashed in one process has; the first is a FIFO.
    for n in range(1, 81):
        (files / f"{n:04d}.txt").write_text(f"第{n}件\n", encoding="utf-8")
    fifo = files / "0000.txt"
    os.mkfifo(fifo)
    _start(scripts, _HASHING, files, WORKERS)
    workers = _workers(scripts[0])
    _kill_and_watch(scripts[0], workers, fifo)


def test_a_pool_whose_workers_are_not_this_processs_is_refused() -> None:
    with pytest.raises(ValueError, match="forkserver"):
        process_pool(1, multiprocessing.get_context("forkserver"))


def test_a_pools_own_initializer_still_runs() -> None:
    name = "LIANXIN_TEST_POOL_INITIALIZER"
    with process_pool(
        1,
        multiprocessing.get_context("fork"),
        initializer=os.environ.__setitem__,
        initargs=(name, "ran"),
    ) as pool:
        assert pool.submit(os.getenv, name).result(timeout=START_S) == "ran"
    assert name not in os.environ
