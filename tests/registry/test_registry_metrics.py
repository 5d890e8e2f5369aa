"""The registry's /metrics: scraped and parsed with prometheus-client's own parser, its
counters move as records are notarized and anchored on the real node; only loopback clients
(and networks the settings allow) may read it."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from registry_harness import TrustChain, new_client, registry_settings, signed
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from registry.app import create_app
from registry.db import Database
from registry.metrics import RegistryMetrics
from registry.models import Batch, BatchStatus, Outbox, OutboxState, Record, RecordStatus
from registry.settings import RegistrySettings
from sdk.trust import TrustClient

LOOPBACK = ("127.0.0.1", 50123)
ELSEWHERE = ("203.0.113.7", 50124)
ANCHOR_TIMEOUT_S = 30.0
RECORDS = 3

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: TestClient) -> Samples:
    """Every sample of one scrape, by name and labels."""
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a labelled series not created yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def http(settings: RegistrySettings) -> Iterator[TestClient]:
    """The in-process registry (lifespan running), reached from a loopback address."""
    with TestClient(create_app(settings), client=LOOPBACK) as client:
        yield client


def test_metrics_move_as_records_are_notarized_and_anchored(http: TestClient) -> None:
    db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
    client, key = new_client(db)
    before = scrape(http)
    assert value(before, "lianxin_registry_database_up") == 1
    assert value(before, "lianxin_registry_records_waiting", stage="sealing") == 0
    assert value(before, "lianxin_registry_outbox_depth", state="pending") == 0

    trust = TrustClient("http://testserver", client.id, key, http_client=http)
    accepted = [
        trust.notarize(document=f"营业执照 第{index}号".encode(), metadata={"n": index})
        for index in range(RECORDS)
    ]
    for record in accepted:
        trust.wait_until_anchored(record.record_id, timeout=ANCHOR_TIMEOUT_S)
    trust.get_record(accepted[0].record_id)
    verification = trust.verify(document="营业执照 第0号".encode())
    unknown = trust.verify(document=b"never notarized")
    # Unsigned, and signed with a nonce already spent: two reasons of refusal.
    assert http.get(f"/v1/records/{accepted[0].record_id}").status_code == 401
    _body, headers = signed(key, client.id, "GET", f"/v1/records/{accepted[0].record_id}")
    assert http.get(f"/v1/records/{accepted[0].record_id}", headers=headers).status_code == 200
    assert http.get(f"/v1/records/{accepted[0].record_id}", headers=headers).status_code == 401
    after = scrape(http)

    assert value(after, "lianxin_registry_requests_total", method="POST", route="/v1/records",
                 status="202") == RECORDS  # fmt: skip
    record_route = "/v1/records/{record_id}"
    assert value(after, "lianxin_registry_requests_total", method="GET", route=record_route,
                 status="200") >= RECORDS  # fmt: skip
    assert value(after, "lianxin_registry_request_seconds_count", method="GET",
                 route=record_route) >= RECORDS  # fmt: skip
    # Requests are labelled by their route's template, never by a raw path.
    assert not any(
        dict(labels).get("route", "").endswith(record.record_id)
        for (_, labels) in after
        for record in accepted
    )
    assert (
        value(after, "lianxin_registry_records_accepted_total")
        - value(before, "lianxin_registry_records_accepted_total")
        == RECORDS
    )
    assert value(after, "lianxin_registry_batches_anchored_total") > value(
        before, "lianxin_registry_batches_anchored_total"
    )
    assert (
        value(after, "lianxin_registry_anchoring_latency_seconds_count")
        - value(before, "lianxin_registry_anchoring_latency_seconds_count")
        == RECORDS
    )
    latency_sum = value(after, "lianxin_registry_anchoring_latency_seconds_sum")
    assert 0 < latency_sum < RECORDS * ANCHOR_TIMEOUT_S
    assert value(after, "lianxin_registry_records_waiting", stage="sealing") == 0
    assert value(after, "lianxin_registry_records_waiting", stage="anchoring") == 0
    assert value(after, "lianxin_registry_outbox_depth", state="sent") == 0
    # Each verification counts its four verdicts under their checks.
    for check in ("integrity", "issuance", "status", "issuer"):
        expected = Counter(
            str(getattr(answer, check).verdict) for answer in (verification, unknown)
        )
        for verdict, count in expected.items():
            assert value(after, "lianxin_registry_verdicts_total", check=check,
                         verdict=verdict) == count, (check, verdict)  # fmt: skip
    assert str(verification.integrity.verdict) == "VALID"
    assert str(unknown.integrity.verdict) != "VALID"
    reasons = {
        dict(labels)["reason"]: sample
        for (name, labels), sample in after.items()
        if name == "lianxin_registry_authentication_failures_total"
    }
    assert reasons == {"missing_credentials": 1.0, "replayed_nonce": 1.0}, reasons
    # A record is counted once: a later scrape observes no batch again.
    again = scrape(http)
    assert value(again, "lianxin_registry_anchoring_latency_seconds_count") == value(
        after, "lianxin_registry_anchoring_latency_seconds_count"
    )


def test_requests_no_route_served_and_database_errors_are_counted(http: TestClient) -> None:
    assert http.get("/no/such/page").status_code == 404
    refused = http.post(
        "/v1/records", content=b"x" * (128 * 1024), headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 413
    db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
    with pytest.raises(DBAPIError, match="no_such_table") as raised, db.session() as session:
        session.execute(text("SELECT * FROM no_such_table"))
    # OperationalError on SQLite, ProgrammingError on PostgreSQL.
    kind = type(raised.value).__name__
    samples = scrape(http)
    assert value(samples, "lianxin_registry_requests_total", method="GET", route="unmatched",
                 status="404") == 1  # fmt: skip
    assert value(samples, "lianxin_registry_requests_total", method="POST", route="unmatched",
                 status="413") == 1  # fmt: skip
    assert value(samples, "lianxin_registry_database_errors_total", kind=kind) >= 1


def test_other_clients_are_refused_unless_their_network_is_allowed(
    trust_chain: TrustChain, tmp_path: Path
) -> None:
    closed = create_app(registry_settings(trust_chain, tmp_path / "closed", None))
    for address in (ELSEWHERE, ("testclient", 50000)):
        answer = TestClient(closed, client=address).get("/metrics")
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "forbidden"
    opened = create_app(
        registry_settings(
            trust_chain, tmp_path / "open", None, metrics_allowed_networks=["203.0.113.0/24"]
        )
    )
    answer = TestClient(opened, client=ELSEWHERE).get("/metrics")
    assert answer.status_code == 200
    assert "lianxin_registry_requests_total" in answer.text
    assert TestClient(opened, client=("198.51.100.1", 1)).get("/metrics").status_code == 403


def test_a_bad_allowed_network_is_refused_at_configuration(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics_allowed_networks"):
        RegistrySettings.model_validate(
            {"data_dir": tmp_path, "metrics_allowed_networks": ["not a network"]}
        )


class Pipeline:
    """Batches written straight into a registry database, as the batcher and the anchorer
    would leave them, with records accepted at ``start``."""

    def __init__(self, db: Database, start: datetime) -> None:
        self.db = db
        self.start = start
        self.client_id = new_client(db)[0].id
        self.serial = 0

    def seal(self, records: int) -> int:
        """A sealed batch of ``records`` records with its pending outbox row; its id."""
        with self.db.session() as session:
            batch = Batch(
                root=os.urandom(32).hex(),
                leaf_count=records,
                metadata_hash="00" * 32,
                status=BatchStatus.SEALED.value,
                created_at=self.start,
            )
            session.add(batch)
            session.flush()
            for index in range(records):
                self.serial += 1
                session.add(
                    Record(
                        id=str(uuid.uuid4()),
                        client_id=self.client_id,
                        digest=os.urandom(32).hex(),
                        metadata_json={},
                        metadata_hash="00" * 32,
                        field_hashes={},
                        commitment=os.urandom(32).hex(),
                        idempotency_key=f"k{self.serial}",
                        request_hash="00" * 32,
                        status=RecordStatus.SEALED.value,
                        batch_id=batch.id,
                        leaf_index=index,
                        created_at=self.start,
                    )
                )
            session.add(
                Outbox(
                    batch_id=batch.id,
                    state=OutboxState.PENDING.value,
                    attempts=0,
                    updated_at=self.start,
                )
            )
            return batch.id

    def anchor(self, batch_id: int, after_seconds: float) -> None:
        """Batch ``batch_id`` anchored ``after_seconds`` after its records were accepted."""
        with self.db.session() as session:
            batch = session.get_one(Batch, batch_id)
            batch.status = BatchStatus.ANCHORED.value
            batch.anchored_at = self.start + timedelta(seconds=after_seconds)
            session.execute(
                update(Outbox)
                .where(Outbox.batch_id == batch_id)
                .values(state=OutboxState.CONFIRMED.value)
            )


def scrape_metrics(metrics: RegistryMetrics) -> tuple[float, float, float]:
    """Anchoring latency count and sum, and batches anchored, from one exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return (
        value(samples, "lianxin_registry_anchoring_latency_seconds_count"),
        value(samples, "lianxin_registry_anchoring_latency_seconds_sum"),
        value(samples, "lianxin_registry_batches_anchored_total"),
    )


def test_each_anchored_record_is_observed_once_whatever_the_order_or_the_scrape_limit(
    tmp_path: Path, database_url: str | None
) -> None:
    db = Database.open(RegistrySettings(data_dir=tmp_path, database_url=database_url))
    try:
        pipeline = Pipeline(db, datetime.now(UTC) - timedelta(hours=1))
        already = pipeline.seal(2)
        pipeline.anchor(already, 5)
        metrics = RegistryMetrics(max_records_per_scrape=3)
        metrics.watch_database(db)
        # The first scrape counts what is anchored already and observes nothing of it.
        assert scrape_metrics(metrics) == (0, 0, 1)

        first, second, third = pipeline.seal(2), pipeline.seal(2), pipeline.seal(2)
        pipeline.anchor(first, 10)
        pipeline.anchor(third, 30)  # before the second: its transaction went first
        # At most 3 records a scrape, whole batches: the first batch now, then the third.
        assert scrape_metrics(metrics) == (2, 20, 2)
        assert scrape_metrics(metrics) == (4, 80, 3)
        assert scrape_metrics(metrics) == (4, 80, 3)
        pipeline.anchor(second, 40)
        assert scrape_metrics(metrics) == (6, 160, 4)
        # A batch larger than the limit is still read whole; and batches are followed by
        # id, not by the time they were anchored (a clock set back loses nothing).
        big = pipeline.seal(5)
        pipeline.anchor(big, 1)
        assert scrape_metrics(metrics) == (11, 165, 5)
        assert scrape_metrics(metrics) == (11, 165, 5)
    finally:
        db.close()
