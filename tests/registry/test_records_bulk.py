"""``POST /v1/records/bulk``: many records in one signed request, stored together or not at
all, each anchored and proven like a record sent alone. Runs on SQLite, or on PostgreSQL
with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_USCC,
    TrustChain,
    new_client,
    row_counts,
    signed,
    signed_bulk_body,
)
from sqlalchemy import func, select, update

from chain.crypto import PrivateKey, sm3
from chain.merkle import MerkleProof, verify_proof
from registry.app import create_app
from registry.db import Database
from registry.models import Batch, Record
from registry.settings import RegistrySettings
from sdk.bundle import ProofBundle, verify_bundle
from sdk.chain_reader import ChainReader
from sdk.record_signing import commit_record, sign_records

PATH = "/v1/records/bulk"
ANCHOR_TIMEOUT_S = 20.0


class Bulk:
    """The in-process registry app with one registered client."""

    def __init__(self, http: TestClient, db: Database, client_id: str, key: PrivateKey) -> None:
        self.http, self.db, self.client_id, self.key = http, db, client_id, key

    @property
    def chain_id(self) -> int:
        return int(self.http.app.state.registry.chain.chain_id())  # type: ignore[attr-defined]

    def sign(self, records: list[Any], key: str | None) -> dict[str, Any]:
        """The bulk body of ``records``, each salted and signed by the department."""
        return signed_bulk_body(self.key, self.chain_id, records, key)

    def post(self, payload: Any, key: str | None = None, **sign: Any) -> Any:
        if isinstance(payload, dict) and isinstance(payload.get("records"), list):
            payload = self.sign(payload["records"], key)
        return self.post_as_is(payload, key, **sign)

    def post_as_is(self, payload: Any, key: str | None = None, **sign: Any) -> Any:
        body, headers = signed(self.key, self.client_id, "POST", PATH, payload, **sign)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.http.post(PATH, content=body, headers=headers)

    def get(self, record_id: str) -> Any:
        path = f"/v1/records/{record_id}"
        _, headers = signed(self.key, self.client_id, "GET", path)
        return self.http.get(path, headers=headers)


@pytest.fixture
def bulk(settings: RegistrySettings) -> Iterator[Bulk]:
    small = settings.model_copy(update={"max_bulk_records": 50})
    with TestClient(create_app(small)) as http:
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        client, key = new_client(db)
        yield Bulk(http, db, client.id, key)


def digests(tag: str, count: int) -> list[dict[str, Any]]:
    return [{"digest": sm3(f"{tag}-{i}".encode()).hex()} for i in range(count)]


def test_bulk_records_are_stored_in_order_and_each_anchors_with_its_own_bundle(
    bulk: Bulk, trust_chain: TrustChain
) -> None:
    records = digests("bulk", 40)
    records[3] = {"document": "5Lqn5ZOB5qOA6aqM5oql5ZGK", "metadata": {"kind": "report"}}
    records[7] = {"digest": records[7]["digest"], "fields": {"holder": "张三", "amount": 12}}
    answer = bulk.post({"records": records}, key="upload-2026-11-27")
    assert answer.status_code == 202, answer.text
    accepted = answer.json()["records"]
    assert len(accepted) == 40 and len({a["id"] for a in accepted}) == 40
    for sent, got in zip(records, accepted, strict=True):
        if "digest" in sent:
            assert got["digest"] == sent["digest"]
    assert accepted[3]["digest"] == sm3("产品检验报告".encode()).hex()
    assert set(accepted[7]["salts"]) == {"holder", "amount"}
    with bulk.db.session() as session:
        seqs = [session.scalar(select(Record.seq).where(Record.id == a["id"])) for a in accepted]
    assert seqs == sorted(seqs), "records keep request order"

    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        views = [bulk.get(a["id"]).json() for a in (accepted[0], accepted[7], accepted[-1])]
        if all(v["status"] == "anchored" and v.get("bundle") for v in views):
            break
        assert time.monotonic() < deadline, views
        time.sleep(0.3)
    with ChainReader(trust_chain.chain.url) as reader:
        validators, chain_id = reader.validators(), reader.chain_id()
    for view in views:
        bundle = ProofBundle.from_json(view["bundle"])
        assert verify_bundle(bundle, validators, chain_id=chain_id).valid


def test_a_request_signed_once_covers_every_record_and_each_bundle_carries_its_path(
    bulk: Bulk, trust_chain: TrustChain
) -> None:
    records = [
        commit_record(
            bulk.key,
            idempotency_key=f"once#{i}",
            digest=sm3(f"once-{i}".encode()),
            metadata={"i": i},
        )
        for i in range(12)
    ]
    signed_once = sign_records(bulk.key, bulk.chain_id, records)
    before = row_counts(bulk.db)["records"]
    changed = signed_once.body()
    changed["records"][5] = {**changed["records"][5], "metadata": {"i": 99}}
    mixed = signed_once.body()
    mixed["records"][0] = {
        **mixed["records"][0],
        "department_signature": mixed["department_signature"],
    }
    fewer = {**signed_once.body(), "records": signed_once.body()["records"][:11]}
    for refused in (changed, mixed, fewer):
        answer = bulk.post_as_is(refused, key="once")
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "bad_department_signature"
    assert row_counts(bulk.db)["records"] == before

    answer = bulk.post_as_is(signed_once.body(), key="once")
    assert answer.status_code == 202, answer.text
    accepted = answer.json()["records"]
    assert [a["commitment"] for a in accepted] == [r.commitment.hex() for r in records]
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        views = [bulk.get(a["id"]).json() for a in (accepted[0], accepted[-1])]
        if all(v["status"] == "anchored" and v.get("bundle") for v in views):
            break
        assert time.monotonic() < deadline, views
        time.sleep(0.3)
    with ChainReader(trust_chain.chain.url) as reader:
        validators, chain_id = reader.validators(), reader.chain_id()
    for index, view in ((0, views[0]), (11, views[1])):
        assert view["department_proof"] == signed_once.proof(index).encode().hex()
        bundle = ProofBundle.from_json(view["bundle"])
        assert bundle.department is not None
        assert bundle.department.request_proof == signed_once.proof(index)
        verdict = verify_bundle(bundle, validators, chain_id=chain_id)
        assert verdict.valid, verdict.failures
        assert verdict.signed_by is not None
        assert (verdict.signed_by.uscc, verdict.signed_by.name) == (
            CLIENT_USCC,
            CLIENT_DEPARTMENT_NAME,
        )


def test_a_retry_answers_the_same_records_and_another_body_conflicts(bulk: Bulk) -> None:
    records = digests("retry", 5)
    first = bulk.post({"records": records}, key="k-1")
    assert first.status_code == 202
    again = bulk.post({"records": records}, key="k-1")
    assert again.status_code == 200
    for retried, original in zip(again.json()["records"], first.json()["records"], strict=True):
        # The status may have moved on (sealed, anchored), and the salts (the department's)
        # come back only in the first answer; everything else is the same.
        moved = {"status": None, "salts": None, "metadata_salt": None}
        assert {**retried, **moved} == {**original, **moved}
        assert retried["metadata_salt"] is None and original["metadata_salt"]
    counts = row_counts(bulk.db)
    changed = bulk.post({"records": digests("other", 5)}, key="k-1")
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "idempotency_conflict"
    shorter = bulk.post({"records": records[:2]}, key="k-1")
    assert shorter.status_code == 409
    after = row_counts(bulk.db)
    assert after["records"] == counts["records"]
    # Refused requests still spend their nonces (a replay of them gets 401).
    assert after["nonces"] == counts["nonces"] + 2


def test_one_bad_record_refuses_the_whole_request_and_stores_nothing(bulk: Bulk) -> None:
    before = row_counts(bulk.db)
    records = digests("bad", 10)
    records[6] = {"digest": "zz" * 32}
    answer = bulk.post({"records": records})
    assert answer.status_code == 422
    records[6] = {"document": "not base64 !!"}
    answer = bulk.post({"records": records})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_document"
    assert row_counts(bulk.db)["records"] == before["records"]


def test_limits_and_authentication(bulk: Bulk) -> None:
    before = row_counts(bulk.db)
    too_many = bulk.post({"records": digests("many", 51)})
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "too_many_records"
    empty = bulk.post({"records": []})
    assert empty.status_code == 422
    long_key = bulk.post({"records": digests("key", 1)}, key="x" * 193)
    assert (
        long_key.status_code == 422
        and long_key.json()["error"]["code"] == "invalid_idempotency_key"
    )
    sent = digests("s", 2)
    body, headers = signed(bulk.key, bulk.client_id, "POST", PATH, bulk.sign(sent, None))
    tampered = body.replace(sent[0]["digest"].encode(), sm3(b"other").hex().encode())
    assert tampered != body
    assert bulk.http.post(PATH, content=tampered, headers=headers).status_code == 401
    replay_body, replay_headers = signed(
        bulk.key, bulk.client_id, "POST", PATH, bulk.sign(digests("r", 2), None)
    )
    assert bulk.http.post(PATH, content=replay_body, headers=replay_headers).status_code == 202
    replayed = bulk.http.post(PATH, content=replay_body, headers=replay_headers)
    assert replayed.status_code == 401 and replayed.json()["error"]["code"] == "replayed_nonce"
    assert row_counts(bulk.db)["records"] == before["records"] + 2


def test_a_client_without_the_notarize_role_is_refused(bulk: Bulk) -> None:
    client, key = new_client(bulk.db, roles=("verify",))
    before = row_counts(bulk.db)["records"]
    body, headers = signed(key, client.id, "POST", PATH, {"records": digests("role", 2)})
    answer = bulk.http.post(PATH, content=body, headers=headers)
    assert answer.status_code == 403
    assert row_counts(bulk.db)["records"] == before


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    items=st.lists(
        st.one_of(
            st.fixed_dictionaries({"digest": st.text(max_size=70)}),
            st.fixed_dictionaries({"document": st.text(max_size=20)}),
            st.dictionaries(st.sampled_from(["digest", "metadata", "fields", "x"]), st.integers()),
            st.integers(),
            st.none(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_malformed_items_get_4xx_and_store_all_or_nothing(bulk: Bulk, items: list[Any]) -> None:
    before = row_counts(bulk.db)["records"]
    answer = bulk.post({"records": items})
    after = row_counts(bulk.db)["records"]
    assert answer.status_code < 500, answer.text
    if answer.status_code == 202:
        assert after == before + len(items)
    else:
        assert 400 <= answer.status_code < 500 and after == before


def test_batches_take_bulk_records_like_single_ones(bulk: Bulk) -> None:
    accepted = bulk.post({"records": digests("seal", 30)}).json()["records"]
    ids = {a["id"] for a in accepted}
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        with bulk.db.session() as session:
            rows = session.execute(
                select(Record.id, Record.batch_id, Record.leaf_index).where(Record.id.in_(ids))
            ).all()
            batch_ids = {batch_id for _, batch_id, _ in rows}
            if None not in batch_ids:
                batches = session.scalars(select(Batch).where(Batch.id.in_(batch_ids))).all()
                break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert sum(1 for _ in rows) == 30
    positions = {(batch_id, leaf) for _, batch_id, leaf in rows}
    assert len(positions) == 30, "every record has its own leaf"
    assert all(
        leaf is not None and leaf < b.leaf_count
        for b in batches
        for _, bid, leaf in rows
        if bid == b.id
    )


def test_a_full_batch_is_sealed_before_the_interval_is_over(settings: RegistrySettings) -> None:
    patient = settings.model_copy(update={"batch_interval": 120.0, "batch_size": 10})
    with TestClient(create_app(patient)) as http:
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        client, key = new_client(db)
        chain_id = int(http.app.state.registry.chain.chain_id())  # type: ignore[attr-defined]
        payload = signed_bulk_body(key, chain_id, digests("full", 25), None)
        body, headers = signed(key, client.id, "POST", PATH, payload)
        assert http.post(PATH, content=body, headers=headers).status_code == 202
        deadline = time.monotonic() + ANCHOR_TIMEOUT_S
        while True:
            with db.session() as session:
                sizes = sorted(session.scalars(select(Batch.leaf_count)).all())
                waiting = session.scalar(select(func.count()).where(Record.status == "accepted"))
            if len(sizes) >= 2:
                break
            assert time.monotonic() < deadline, sizes
            time.sleep(0.1)
        # Two full batches at once; the last 5 records wait for the interval.
        assert sizes == [10, 10] and waiting == 5


def test_sealed_records_keep_their_proof_and_older_ones_fall_back_to_the_tree(
    bulk: Bulk, trust_chain: TrustChain
) -> None:
    accepted = bulk.post({"records": digests("proofs", 12)}).json()["records"]
    ids = [a["id"] for a in accepted]
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        with bulk.db.session() as session:
            rows = session.execute(
                select(Record.id, Record.commitment, Record.leaf_index, Record.merkle_path, Batch)
                .join(Batch, Record.batch_id == Batch.id)
                .where(Record.id.in_(ids), Record.status == "anchored")
            ).all()
        if len(rows) == len(ids):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    for _, commitment, leaf_index, stored, batch in rows:
        assert stored is not None
        proof = MerkleProof.from_siblings(leaf_index, batch.leaf_count, stored)
        assert proof.leaf_index == leaf_index and proof.leaf_count == batch.leaf_count
        verify_proof(bytes.fromhex(batch.root), bytes.fromhex(commitment), proof)
    # A record sealed before proofs were stored has none: its bundle comes from the tree.
    older = ids[5]
    with bulk.db.session() as session:
        session.execute(update(Record).where(Record.id == older).values(merkle_path=None))
    view = bulk.get(older).json()
    with ChainReader(trust_chain.chain.url) as reader:
        validators, chain_id = reader.validators(), reader.chain_id()
    bundle = ProofBundle.from_json(view["bundle"])
    assert bundle.batch.proof.leaf_index == next(r[2] for r in rows if r[0] == older)
    assert verify_bundle(bundle, validators, chain_id=chain_id).valid
