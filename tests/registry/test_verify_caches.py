"""What ``POST /v1/verify`` keeps per record and per batch (the record read, its proof
bundle and the bundle's JSON text) never answers for another record, never changes an
answer, and never holds a status: a record revoked after it was verified is reported
revoked on the next verification once the revocation index has the revoking block. Runs on
SQLite, or on PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import new_client
from test_revocation_index import WAIT_S, revoke_batch

from chain.crypto import PrivateKey, sm3
from contracts.trust import Reason
from registry.app import create_app
from registry.notarization import VerifyCaches, verify
from registry.revocations import RevocationIndex
from registry.schemas import VerifyRequest
from registry.settings import RegistrySettings
from registry.verification import verify_text
from sdk.bundle import ProofBundle, verify_bundle
from sdk.trust import TrustClient, signed_headers

App = tuple[TestClient, TrustClient, str, PrivateKey]


@pytest.fixture
def app(settings: RegistrySettings) -> Iterator[App]:
    with TestClient(create_app(settings)) as http:
        state = http.app.state.registry  # type: ignore[attr-defined]
        client, key = new_client(state.db)
        yield (
            http,
            TrustClient("http://testserver", client.id, key, http_client=http),
            client.id,
            key,
        )


def post_verify(app: App, payload: dict[str, Any]) -> bytes:
    """The body of a signed ``POST /v1/verify`` answered 200."""
    http, _, client_id, key = app
    body = json.dumps(payload).encode()
    headers = signed_headers(key, client_id=client_id, method="POST", path="/v1/verify", body=body)
    headers["Content-Type"] = "application/json"
    response = http.post("/v1/verify", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def without_read_height(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` less the one fact that moves with the chain (the block a status was read at),
    which the status verdict's detail also names: any block made meanwhile moves it."""
    height = answer["facts"]["status_read_at_block"]
    assert answer["status"]["detail"] == f"active at block {height}"
    facts = {k: v for k, v in answer["facts"].items() if k != "status_read_at_block"}
    status = {**answer["status"], "detail": "active"}
    return {**answer, "facts": facts, "status": status}


def test_every_answer_is_its_own_records_and_a_kept_one_is_unchanged(app: App) -> None:
    http, trust, _, _ = app
    documents = [f"kept answers {n}".encode() for n in range(5)]
    # One document twice: two records with one digest, told apart by record id.
    accepted = [trust.notarize(document=d) for d in documents]
    accepted.append(trust.notarize(document=documents[0]))
    for result in accepted:
        trust.wait_until_anchored(result.record_id, timeout=WAIT_S)
    questions: list[tuple[bytes, str | None]] = [(d, None) for d in documents]
    questions += [(documents[0], accepted[0].record_id), (documents[0], accepted[-1].record_id)]
    validators = http.app.state.registry.chain.validator_set()  # type: ignore[attr-defined]
    first: dict[tuple[bytes, str | None], dict[str, Any]] = {}
    order = random.Random(7)
    for round_ in range(3):  # the first asks cold, the others find everything kept
        order.shuffle(questions)
        for document, record_id in questions:
            payload: dict[str, Any] = {"digest": sm3(document).hex()}
            if record_id is not None:
                payload["record_id"] = record_id
            answer = json.loads(post_verify(app, payload))
            assert answer["digest"] == sm3(document).hex()
            if record_id is not None:
                assert answer["record_id"] == record_id
            bundle = answer["bundle"]
            assert bundle["record"]["recordId"] == answer["record_id"]
            assert bundle["record"]["digest"] == "0x" + sm3(document).hex()
            parsed = ProofBundle.from_json(bundle)
            assert verify_bundle(
                parsed, validators, chain_id=parsed.chain_id, expected_digest=sm3(document)
            ).valid
            assert [
                answer[v]["verdict"] for v in ("integrity", "issuance", "status", "issuer")
            ] == ["VALID"] * 4, answer
            if round_ == 0:
                first[(document, record_id)] = answer
            else:
                assert without_read_height(answer) == without_read_height(
                    first[(document, record_id)]
                )
    # The record chosen for a digest without a record id is the first one notarized.
    assert first[(documents[0], None)]["record_id"] == accepted[0].record_id
    assert (
        first[(documents[0], accepted[-1].record_id)]["bundle"]
        != first[(documents[0], None)]["bundle"]
    )


def test_the_text_answer_is_the_models_json_byte_for_byte(app: App) -> None:
    http, trust, _, _ = app
    state = http.app.state.registry  # type: ignore[attr-defined]
    documents = [f"text answer {n}".encode() for n in range(3)]
    for d in documents:
        trust.wait_until_anchored(trust.notarize(document=d).record_id, timeout=WAIT_S)
    caches = VerifyCaches()
    # An index polled once and fresh for ever: both ways see the same status and height.
    caches.revocations = RevocationIndex(state.chain, clock=lambda: 0.0)
    caches.revocations.poll()
    payloads = [VerifyRequest(digest=sm3(d).hex()) for d in documents]
    payloads.append(VerifyRequest(digest="ab" * 32))  # not notarized
    for _ in range(2):  # cold, then from what the first round kept
        for payload in payloads:
            text = verify_text(state.db, state.chain, caches, payload)
            model = verify(state.db, state.chain, caches, payload).model_dump_json().encode()
            assert text == model


def test_a_record_revoked_after_it_was_verified_is_reported_revoked_next_time(app: App) -> None:
    http, trust, _, _ = app
    state = http.app.state.registry  # type: ignore[attr-defined]
    document = b"revoked after its answer was kept"
    record = trust.wait_until_anchored(trust.notarize(document=document).record_id, timeout=WAIT_S)
    assert record.batch is not None
    payload = {"digest": sm3(document).hex()}
    before = json.loads(post_verify(app, payload))
    assert before["status"]["verdict"] == "VALID"
    assert json.loads(post_verify(app, payload))["status"]["verdict"] == "VALID"
    revoked_at = revoke_batch(
        state.chain, bytes.fromhex(record.batch["root"]), Reason.KEY_COMPROMISE
    )
    deadline = time.monotonic() + WAIT_S
    while state.caches.revocations.height < revoked_at:
        assert time.monotonic() < deadline, "the revocation never reached the index"
        time.sleep(0.05)
    after = json.loads(post_verify(app, payload))
    assert after["status"]["verdict"] == "INVALID", after["status"]
    assert f"revoked at block {revoked_at}" in after["status"]["detail"]
    assert after["facts"]["revoked_at_block"] == revoked_at
    # What is kept stays true: the record was anchored and its bundle is the same.
    assert after["issuance"]["verdict"] == "VALID"
    assert after["bundle"] == before["bundle"]
