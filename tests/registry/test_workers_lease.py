"""Several API processes on one database: exactly one runs the batcher and anchorer (the
holder of the workers lease), and when it is SIGKILLed another takes over; every accepted
record is anchored exactly once. Runs on SQLite, or on PostgreSQL with
LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from registry_harness import (
    TrustChain,
    free_port,
    new_client,
    registry_environment,
    registry_settings,
)
from sqlalchemy import create_engine, select

from chain.crypto import sm3
from registry.chain_gateway import BATCH_ANCHORED_TOPIC
from registry.db import Database
from registry.lease import AdvisoryLease, FileLease, workers_lease
from registry.models import Batch, Record
from sdk.chain_reader import ChainReader
from sdk.trust import TrustClient

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 40.0
HOLD_SCRIPT = """
import sys, time
from pathlib import Path
from registry.lease import FileLease
lease = FileLease(Path(sys.argv[1]))
assert lease.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_file_lease_is_exclusive_and_freed_when_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "registry.db.workers.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lease = FileLease(path)
        assert not lease.try_acquire()
        assert path.read_text().strip() == str(holder.pid)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert lease.try_acquire()
        assert lease.try_acquire(), "taking a held lease again is a no-op"
        assert path.read_text().strip() == str(os.getpid())
        other = FileLease(path)
        assert not other.try_acquire()
        lease.release()
        assert other.try_acquire()
        other.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_advisory_lease_is_exclusive(database_url: str | None) -> None:
    if database_url is None or not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL advisory locks: set LIANXIN_TEST_DATABASE_URL")
    first_engine, second_engine = create_engine(database_url), create_engine(database_url)
    try:
        first, second = workers_lease(first_engine), workers_lease(second_engine)
        assert isinstance(first, AdvisoryLease)
        assert first.try_acquire() and first.try_acquire()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        second.release()
    finally:
        first_engine.dispose()
        second_engine.dispose()


def children(pid: int) -> set[int]:
    """Worker processes of the uvicorn supervisor ``pid`` (not multiprocessing's resource
    tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in command:
                    found.add(int(entry.name))
    return found


@contextlib.contextmanager
def registry_processes(environment: dict[str, str], port: int, log: Path) -> Iterator[int]:
    """``registry start --workers 2``; yields the supervisor's pid once the API answers."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry.cli", "start", "--port", str(port), "--workers", "2"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_all_anchored(db: Database, accepted: set[str]) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        with db.session() as session:
            statuses = dict(session.execute(select(Record.id, Record.status)).all())
        if accepted <= set(statuses) and set(statuses.values()) == {"anchored"}:
            return
        assert time.monotonic() < deadline, "accepted records not anchored in time"
        time.sleep(0.2)


def test_two_api_processes_anchor_everything_once_and_survive_the_lease_holder_dying(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(
        trust_chain, tmp_path / "registry", database_url, batch_interval=0.2, batch_size=9
    )
    db = Database.open(settings)
    client, key = new_client(db)
    port = free_port()
    lock = Path(settings.effective_database_url.removeprefix("sqlite:///") + ".workers.lock")
    accepted: set[str] = set()
    with registry_processes(registry_environment(settings), port, tmp_path / "reg.log") as pid:
        workers = children(pid)
        assert len(workers) == 2, workers
        trust = TrustClient(f"http://127.0.0.1:{port}", client.id, key, timeout=10)
        for index in range(25):
            accepted.add(trust.notarize(digest=sm3(b"first %d" % index)).record_id)
        accepted.update(
            a.record_id
            for a in trust.notarize_many([{"digest": sm3(b"bulk %d" % i)} for i in range(30)])
        )
        wait_all_anchored(db, accepted)

        if database_url is None:
            holder = int(lock.read_text())
            assert holder in workers
            os.kill(holder, signal.SIGKILL)
            for index in range(25):
                accepted.add(trust.notarize(digest=sm3(b"after %d" % index)).record_id)
            wait_all_anchored(db, accepted)
            new_holder = int(lock.read_text())
            assert new_holder != holder and new_holder in children(pid)
        trust.close()

    with db.session() as session:
        batches = session.scalars(select(Batch)).all()
        in_batches = session.execute(select(Record.batch_id, Record.leaf_index)).all()
    db.close()
    assert len(in_batches) == len(set(in_batches)) == len(accepted)
    notary = bytes.fromhex(trust_chain.addresses["notary"][2:])
    with ChainReader(trust_chain.chain.url) as reader:
        for batch in batches:
            logs = reader.get_logs(
                address=notary, topics=[BATCH_ANCHORED_TOPIC, bytes.fromhex(batch.root)]
            )
            assert len(logs) == 1, (batch.id, logs)
