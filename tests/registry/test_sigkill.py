"""Crash safety of notarization: the registry runs as a real process and is SIGKILLed
several times (seeded) while records keep arriving and batches are sealed and anchored.
After a final restart every accepted record is anchored, and the Notary saw exactly one
BatchAnchored event per batch root — nothing lost, nothing anchored twice.

Each registry process is forked from one process that imported ``registry.server`` once
(``tests/support/fork_server.py``) and then runs ``python -m registry``: the import was most of a
start's CPU, and the forked process reads its settings, opens its database and serves only
after the fork, as a freshly started one does."""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path

import fork_server as fs
import pytest
from registry_harness import (
    TrustChain,
    free_port,
    new_client,
    registry_environment,
    registry_settings,
    wait_serving,
)
from sqlalchemy import select

from chain.crypto import sm3
from registry.chain_gateway import BATCH_ANCHORED_TOPIC
from registry.db import Database
from registry.models import Batch, Outbox, Record
from sdk.chain_reader import ChainReader
from sdk.trust import RegistryError, TrustClient

pytestmark = pytest.mark.slow

SEED = 20_261_126
KILLS = 4
START_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 120.0

ForkServer = fs.ForkServer
Child = fs.Child


def start_registry(server: ForkServer, port: int, log: Path, timeout_s: float) -> Child:
    """``python -m registry`` forked by ``server`` (output appended to ``log``), waited for
    until it answers; killed, with its log in the failure, if it exits or does not answer in
    ``timeout_s``."""
    process = server.start("module", "registry", [], output=log)
    wait_serving(process, port, log, timeout_s)
    return process


def test_sigkill_during_batching_and_anchoring_loses_and_duplicates_nothing(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(
        trust_chain, tmp_path / "registry", database_url, batch_interval=0.1, batch_size=7
    )
    db = Database.open(settings)
    client, key = new_client(db)
    port = free_port()
    environment = registry_environment(settings) | {"LIANXIN_REGISTRY_PORT": str(port)}
    log = tmp_path / "registry.log"
    server = fs.ForkServer(["registry.server"], environment, tmp_path / "fork-server.log")
    rng = random.Random(SEED)
    accepted: set[str] = set()
    counter = 0
    process: Child | None = None
    try:
        for _ in range(KILLS):
            process = start_registry(server, port, log, START_TIMEOUT_S)
            trust = TrustClient(f"http://127.0.0.1:{port}", client.id, key, retries=0, timeout=2)
            run_for = rng.uniform(0.3, 1.5)
            deadline = time.monotonic() + run_for
            accepted_before = len(accepted)
            # Each run lasts its drawn time, and at least until it has acknowledged a record
            # (on a loaded machine the first answers can take longer than the whole draw).
            while time.monotonic() < deadline or len(accepted) == accepted_before:
                assert time.monotonic() < deadline + START_TIMEOUT_S, "no record acknowledged"
                counter += 1
                with contextlib.suppress(RegistryError):
                    result = trust.notarize(digest=sm3(b"record %d" % counter))
                    accepted.add(result.record_id)
            process.kill()
            process.wait(timeout=10)
            trust.close()

        process = start_registry(server, port, log, START_TIMEOUT_S)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            with db.session() as session:
                statuses = dict(session.execute(select(Record.id, Record.status)).all())
            # Records stored by a request whose answer the kill cut off count as well.
            if accepted <= set(statuses) and set(statuses.values()) == {"anchored"}:
                break
            assert time.monotonic() < deadline, "accepted records not anchored in time"
            time.sleep(0.2)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        server.close()

    assert len(accepted) >= KILLS
    with db.session() as session:
        batches = session.scalars(select(Batch)).all()
        outbox = session.scalars(select(Outbox)).all()
    db.close()
    assert {row.batch_id for row in outbox} == {batch.id for batch in batches}
    assert {row.state for row in outbox} == {"confirmed"}
    notary = bytes.fromhex(trust_chain.addresses["notary"][2:])
    with ChainReader(trust_chain.chain.url) as reader:
        for batch in batches:
            logs = reader.get_logs(
                address=notary, topics=[BATCH_ANCHORED_TOPIC, bytes.fromhex(batch.root)]
            )
            assert len(logs) == 1, (batch.id, logs)
            assert logs[0].tx_hash.hex() == batch.tx_hash
