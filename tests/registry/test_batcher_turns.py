"""The anchorer writes only what must outlive a crash: each of its write transactions takes
the database's write turn, and the registry's request writers (a gated read's group, a
notarized record) wait behind it and its WAL sync. Confirming a batch takes the signed
transaction's write (none when the sealing stored it) and one confirmation (with the chain
half of the proof bundles when the node has it); what it only reads, it reads without the
turn. Counted in transactions, not
timed. Runs on SQLite, or on PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import free_port, new_client
from sqlalchemy import delete, event, select

from chain.types import Transaction
from registry.app import create_app
from registry.batcher import fetch_evidence, process_outbox, seal_batch, unconfirmed_outbox
from registry.chain_gateway import (
    NOTARY,
    VALIDATORS_FROM_PREFIX,
    ChainGateway,
    _validators_json,
)
from registry.db import READ_ONLY_OPTION, Database
from registry.models import Batch, ChainValue, Outbox, OutboxState, Record, RecordStatus
from registry.settings import RegistrySettings
from sdk.chain_reader import ChainUnavailable
from sdk.trust import TrustClient

RECEIPT_WAIT_S = 20.0
"""Longest a pass waits for the anchoring transaction's receipt."""
EVIDENCE_WAIT_S = 20.0
"""Longest the test waits for the node to certify the anchoring block."""
ANCHORER_WRITES = 2
"""Write transactions in a pass that confirms a batch: the signed transaction, then the
confirmation (with the bundles' chain half when ready, and the validator set of the
anchoring height the chain gateway read for it)."""


@pytest.fixture
def idle_registry(settings: RegistrySettings) -> Iterator[tuple[Database, ChainGateway, str]]:
    """A registry without its batcher and anchorer, holding one accepted record (its id)."""
    quiet = settings.model_copy(update={"run_workers": False})
    with TestClient(create_app(quiet)) as http:
        state = http.app.state.registry  # type: ignore[attr-defined]
        client, key = new_client(state.db)
        trust = TrustClient("http://testserver", client.id, key, http_client=http)
        accepted = trust.notarize(document=f"anchored in few turns {time.time_ns()}".encode())
        yield state.db, state.chain, accepted.record_id


class WriteCount:
    """Write transactions begun on a database (read transactions are not counted)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.count = 0

    def _begin(self, connection: Any) -> None:
        if not connection.get_execution_options().get(READ_ONLY_OPTION, False):
            self.count += 1

    def __enter__(self) -> WriteCount:
        event.listen(self.db.engine, "begin", self._begin)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.db.engine, "begin", self._begin)


def _record_status(db: Database, record_id: str) -> str:
    with db.read_session() as session:
        return str(session.scalars(select(Record.status).where(Record.id == record_id)).one())


def _outbox_row(db: Database) -> tuple[str, str | None]:
    with db.read_session() as session:
        row = session.scalars(select(Outbox)).one()
        return row.state, row.tx_hash


def test_confirming_a_batch_takes_few_write_turns(
    idle_registry: tuple[Database, ChainGateway, str],
) -> None:
    db, gateway, record_id = idle_registry
    assert seal_batch(db, batch_size=100) is not None
    (outbox_id,) = unconfirmed_outbox(db)
    with WriteCount(db) as writes:
        assert process_outbox(db, gateway, outbox_id, receipt_wait=RECEIPT_WAIT_S)
    assert writes.count <= ANCHORER_WRITES, writes.count
    assert _record_status(db, record_id) == RecordStatus.ANCHORED.value
    assert _outbox_row(db)[0] == OutboxState.CONFIRMED.value
    # A pass over a confirmed row writes nothing.
    with WriteCount(db) as writes:
        assert process_outbox(db, gateway, outbox_id)
    assert writes.count == 0
    deadline = time.monotonic() + EVIDENCE_WAIT_S
    while not fetch_evidence(db, gateway, _batch_id(db)):
        assert time.monotonic() < deadline, "the anchoring block was never certified"
        time.sleep(0.2)
    # The set of the anchoring height was recorded along: it answers without the node.
    assert _recorded_through(db) >= _anchoring_height(db)


def test_a_batch_sealed_with_the_gateway_holds_its_signed_anchoring_transaction(
    idle_registry: tuple[Database, ChainGateway, str],
) -> None:
    db, gateway, record_id = idle_registry
    assert seal_batch(db, batch_size=100, gateway=gateway) is not None
    with db.read_session() as session:
        batch = session.scalars(select(Batch)).one()
        outbox = session.scalars(select(Outbox)).one()
        root, leaf_count, metadata = batch.root, batch.leaf_count, batch.metadata_hash
        raw_hex, tx_hash = outbox.raw_tx, outbox.tx_hash
    assert raw_hex is not None
    tx = Transaction.decode(bytes.fromhex(raw_hex))
    assert tx.hash.hex() == tx_hash
    assert tx.to == gateway.contracts().notary
    assert tx.data == NOTARY.encode_call(
        "anchor", bytes.fromhex(root), leaf_count, bytes.fromhex(metadata)
    )
    # Nothing left to store before sending: confirming is the pass's only write.
    with WriteCount(db) as writes:
        assert process_outbox(db, gateway, outbox.id, receipt_wait=RECEIPT_WAIT_S)
    assert writes.count == 1
    assert _outbox_row(db) == (OutboxState.CONFIRMED.value, tx_hash)
    assert _record_status(db, record_id) == RecordStatus.ANCHORED.value


def test_a_batch_sealed_while_the_node_is_away_is_signed_by_the_anchorer(
    idle_registry: tuple[Database, ChainGateway, str], settings: RegistrySettings
) -> None:
    db, gateway, record_id = idle_registry
    away = ChainGateway(
        settings.model_copy(
            update={"node_url": f"http://127.0.0.1:{free_port()}", "chain_timeout": 0.5}
        ),
        db,
    )
    try:
        assert seal_batch(db, batch_size=100, gateway=away) is not None
    finally:
        away.close()
    assert _outbox_row(db) == (OutboxState.PENDING.value, None)
    (outbox_id,) = unconfirmed_outbox(db)
    assert process_outbox(db, gateway, outbox_id, receipt_wait=RECEIPT_WAIT_S)
    assert _record_status(db, record_id) == RecordStatus.ANCHORED.value


def _recorded_through(db: Database) -> int:
    """The highest height a recorded validator set is known to rule (0: none recorded)."""
    with db.read_session() as session:
        values = session.scalars(
            select(ChainValue.value).where(ChainValue.name.startswith(VALIDATORS_FROM_PREFIX))
        ).all()
    return max((int(json.loads(value)["through"]) for value in values), default=0)


def _anchoring_height(db: Database) -> int:
    with db.read_session() as session:
        height = session.scalars(select(Batch.block_number)).one()
    assert height is not None
    return int(height)


def _anchored_raw_tx(db: Database, gateway: ChainGateway) -> bytes:
    """The raw anchoring transaction of the one batch, confirmed, its evidence fetched."""
    assert seal_batch(db, batch_size=100) is not None
    (outbox_id,) = unconfirmed_outbox(db)
    assert process_outbox(db, gateway, outbox_id, receipt_wait=RECEIPT_WAIT_S)
    deadline = time.monotonic() + EVIDENCE_WAIT_S
    while not fetch_evidence(db, gateway, _batch_id(db)):
        assert time.monotonic() < deadline, "the anchoring block was never certified"
        time.sleep(0.2)
    with db.read_session() as session:
        raw_hex = session.scalars(select(Outbox.raw_tx)).one()
    assert raw_hex is not None
    return bytes.fromhex(raw_hex)


def _forget_ruling_sets(db: Database) -> None:
    with db.session() as session:
        session.execute(
            delete(ChainValue).where(ChainValue.name.startswith(VALIDATORS_FROM_PREFIX))
        )


def test_the_anchorers_ruling_set_is_recorded_by_its_own_write_transaction(
    idle_registry: tuple[Database, ChainGateway, str], settings: RegistrySettings
) -> None:
    db, gateway, _record_id = idle_registry
    raw_tx = _anchored_raw_tx(db, gateway)
    height = _anchoring_height(db)
    _forget_ruling_sets(db)
    fresh = ChainGateway(settings, db)
    away = ChainGateway(
        settings.model_copy(
            update={"node_url": f"http://127.0.0.1:{free_port()}", "chain_timeout": 0.5}
        ),
        db,
    )
    try:
        # Read for a caller that records it: no write transaction of the gateway's own.
        with WriteCount(db) as writes:
            evidence = fresh.batch_evidence(raw_tx, record_ruling_set=False)
        assert writes.count == 0
        assert _recorded_through(db) == 0
        with pytest.raises(ChainUnavailable):
            away.validator_set_at(height)
        with db.session() as session:
            fresh.record_ruling_sets(session)
        assert _recorded_through(db) == height
        assert away.validator_set_at(height) == fresh.validator_set_at(height)
        assert _validators_json(away.validator_set_at(height)) == evidence["validators"]
    finally:
        fresh.close()
        away.close()


def _batch_id(db: Database) -> int:
    with db.read_session() as session:
        batch = session.scalars(select(Batch)).one()
        return int(batch.id)


def test_a_row_sent_without_an_answer_is_marked_sent_then_confirmed_unsigned_again(
    idle_registry: tuple[Database, ChainGateway, str],
) -> None:
    db, gateway, record_id = idle_registry
    assert seal_batch(db, batch_size=100) is not None
    (outbox_id,) = unconfirmed_outbox(db)
    # No wait for the receipt: the transaction is signed, stored, sent and marked sent.
    with WriteCount(db) as writes:
        assert not process_outbox(db, gateway, outbox_id)
    assert writes.count == 2
    state, tx_hash = _outbox_row(db)
    assert state == OutboxState.SENT.value and tx_hash is not None
    assert process_outbox(db, gateway, outbox_id, receipt_wait=RECEIPT_WAIT_S)
    assert _outbox_row(db) == (OutboxState.CONFIRMED.value, tx_hash)
    assert _record_status(db, record_id) == RecordStatus.ANCHORED.value


def test_a_batch_is_confirmed_even_when_its_evidence_cannot_be_fetched(
    idle_registry: tuple[Database, ChainGateway, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, gateway, record_id = idle_registry
    assert seal_batch(db, batch_size=100) is not None
    (outbox_id,) = unconfirmed_outbox(db)

    def broken(_raw_tx: bytes, **_options: Any) -> dict[str, Any]:
        raise RuntimeError("the node answered something unexpected")

    monkeypatch.setattr(gateway, "batch_evidence", broken)
    assert process_outbox(db, gateway, outbox_id, receipt_wait=RECEIPT_WAIT_S)
    assert _record_status(db, record_id) == RecordStatus.ANCHORED.value
    with db.read_session() as session:
        assert session.scalars(select(Batch.evidence_json)).one() is None
