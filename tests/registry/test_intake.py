"""Group commit of request rows (registry.intake): refusals stay per request inside one
transaction, and the in-process caches never keep a failed read."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from registry_harness import CLIENT_KEY, new_client, row_counts
from sqlalchemy import select

from chain.crypto import sm3
from registry.caches import TtlCache
from registry.db import Database
from registry.errors import AuthenticationFailed, Conflict
from registry.intake import NewRecord, NonceClaim, _Entry, commit_entries
from registry.models import Client, Record
from registry.notarization import prepare_record
from registry.record_schemas import SignedRecordCreate
from registry.schemas import RecordAccepted
from registry.settings import RegistrySettings
from sdk.record_signing import sign_record


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = Database.open(RegistrySettings(data_dir=tmp_path, database_url=database_url))
    yield database
    database.close()


def claim(client: Client, nonce: str) -> NonceClaim:
    return NonceClaim(client.id, nonce, datetime.now(UTC) + timedelta(minutes=5))


CHAIN_ID = 7


def record(client: Client, key: str, body: bytes) -> NewRecord:
    signed = sign_record(CLIENT_KEY, CHAIN_ID, idempotency_key=key, digest=sm3(body))
    return prepare_record(client, SignedRecordCreate(**signed.body), key, CHAIN_ID)


def test_one_group_refuses_replays_and_answers_retries_per_request(db: Database) -> None:
    client, _ = new_client(db)
    first = record(client, "order-1", b"first")
    outcomes = commit_entries(
        db,
        [
            _Entry(claim(client, "n" * 16), (first,)),
            _Entry(claim(client, "n" * 16), (record(client, "order-2", b"replayed nonce"),)),
            _Entry(claim(client, "m" * 16), (record(client, "order-1", b"first"),)),
            _Entry(claim(client, "k" * 16), (record(client, "order-1", b"other body"),)),
            _Entry(claim(client, "j" * 16)),
        ],
    )
    assert isinstance(outcomes[0], list)
    ((accepted, created),) = outcomes[0]
    assert created and accepted == first.accepted
    assert isinstance(outcomes[1], AuthenticationFailed) and outcomes[1].code == "replayed_nonce"
    assert isinstance(outcomes[2], list)
    ((retry, created),) = outcomes[2]
    assert created is False and retry.id == first.accepted.id
    assert isinstance(outcomes[3], Conflict)
    assert outcomes[4] is None
    # The replayed request stored nothing; the others spent their nonces.
    assert row_counts(db)["records"] == 1
    assert row_counts(db)["nonces"] == 4

    again = commit_entries(
        db,
        [
            _Entry(claim(client, "j" * 16)),
            _Entry(claim(client, "i" * 16), (record(client, "order-1", b"first"),)),
        ],
    )
    assert isinstance(again[0], AuthenticationFailed)
    assert isinstance(again[1], list)
    ((stored, created),) = again[1]
    assert isinstance(stored, RecordAccepted)
    assert stored.id == first.accepted.id and stored.salts == first.accepted.salts
    assert created is False


def test_ttl_cache_shares_one_load_and_never_keeps_a_failure() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60)
    calls = 0
    release = threading.Event()

    def slow_load() -> int:
        nonlocal calls
        calls += 1
        release.wait(5)
        return 7

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", slow_load)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [7] * 8 and calls == 1

    def unreachable() -> int:
        raise ConnectionError("node away")

    with pytest.raises(ConnectionError):
        cache.get_or_load("status", unreachable)
    assert cache.get_or_load("status", lambda: 3) == 3


def test_one_group_stores_rows_built_with_and_without_optional_columns(db: Database) -> None:
    client, _ = new_client(db)
    signed_once = record(client, "bulk#0", b"signed with its request")
    signed_once.values["department_proof"] = "c3"
    alone = record(client, "alone", b"signed alone")
    del alone.values["department_proof"]  # as built by code that predates the column
    outcomes = commit_entries(
        db,
        [
            _Entry(claim(client, "a" * 16), (signed_once,)),
            _Entry(claim(client, "b" * 16), (alone,)),
        ],
    )
    assert all(isinstance(outcome, list) for outcome in outcomes)
    with db.session() as session:
        proofs = dict(
            session.execute(
                select(Record.idempotency_key, Record.department_proof).where(
                    Record.client_id == client.id
                )
            ).all()
        )
    assert proofs == {"bulk#0": "c3", "alone": None}
