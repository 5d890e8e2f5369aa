"""The events of an import signed with ONE department signature: over the SM3 Merkle root
of their commitments (the scheme of a bulk notarization signed once), each event's bundle
carrying the signature and its path to the root and verifying offline. The per-event form
still works; a signature that does not cover exactly the listed events, in their order,
for this chain, is refused and signs nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from credit_harness import CreditApp, penalties, penalty_file, wait_for
from registry_harness import CLIENT_KEY, TrustChain
from sqlalchemy import select

from chain.crypto import PrivateKey
from registry.models import Record
from sdk.bundle import ProofBundle, verify_bundle
from sdk.chain_reader import ChainReader
from sdk.credit_client import sign_events, sign_events_once
from sdk.trust_core import signed_headers

SIGNATURES_PATH = "/v1/credit/events/signatures"


def _post(app: CreditApp, body: Any) -> Any:
    data = json.dumps(body).encode()
    headers = signed_headers(
        CLIENT_KEY, client_id=app.client_id, method="POST", path=SIGNATURES_PATH, body=data
    )
    headers["Content-Type"] = "application/json"
    return app.http.post(SIGNATURES_PATH, content=data, headers=headers)


def _signatures_of(app: CreditApp, record_ids: list[str]) -> set[str]:
    with app.db.read_session() as session:
        return set(
            session.scalars(select(Record.department_signature).where(Record.id.in_(record_ids)))
        )


def _verified_bundles(
    app: CreditApp, trust_chain: TrustChain, record_ids: list[str]
) -> list[ProofBundle]:
    with ChainReader(trust_chain.chain.url) as reader:
        validators, chain_id = reader.validators(), reader.chain_id()
    bundles = []
    for record_id in record_ids:

        def anchored(record_id: str = record_id) -> dict[str, Any] | None:
            proof: dict[str, Any] | None = app.sdk.record_proof(record_id)["proof"]
            return proof

        proof = wait_for(anchored)
        bundle = ProofBundle.from_json(proof["bundle"])
        verdict = verify_bundle(bundle, validators, chain_id=chain_id)
        assert verdict.valid, verdict.failures
        bundles.append(bundle)
    return bundles


def _record_ids(app: CreditApp) -> list[str]:
    profile = app.sdk.authority_profile("91350100M000100Y43")
    return [record["current"]["id"] for record in profile["records"]]


def test_an_import_is_signed_once_and_each_bundle_verifies_with_its_path(
    chain_app: CreditApp, trust_chain: TrustChain
) -> None:
    app = chain_app
    app.sdk.import_file(penalty_file(penalties(5)))
    pending = app.sdk.pending_events()
    assert len(pending) == 6  # the rule set and five penalties
    notarized = app.sdk.sign_pending()
    assert set(notarized) == {event["id"] for event in pending}
    assert app.sdk.pending_events() == []
    assert len(_signatures_of(app, list(notarized.values()))) == 1

    bundles = _verified_bundles(app, trust_chain, _record_ids(app))
    for bundle in bundles:
        assert bundle.department is not None
        proof = bundle.department.request_proof
        assert proof is not None and proof.leaf_count == 6


def test_the_per_event_form_still_signs_each_event_alone(
    chain_app: CreditApp, trust_chain: TrustChain
) -> None:
    app = chain_app
    app.sdk.import_file(penalty_file(penalties(3)))
    notarized = app.sdk.sign_pending(per_event=True)
    assert len(notarized) == 4
    assert len(_signatures_of(app, list(notarized.values()))) == 4
    for bundle in _verified_bundles(app, trust_chain, _record_ids(app)):
        assert bundle.department is not None and bundle.department.request_proof is None


def test_pending_events_page_after_an_event(chain_app: CreditApp) -> None:
    app = chain_app
    app.sdk.import_file(penalty_file(penalties(4)))
    every = app.sdk.pending_events()
    first = app.sdk.pending_events(2)
    rest = app.sdk.pending_events(after=first[-1]["id"])
    assert first + rest == every and len(every) == 5


def _refusals(app: CreditApp, events: list[dict[str, Any]], chain_id: int) -> dict[str, Any]:
    once = sign_events_once(CLIENT_KEY, chain_id, events)
    reversed_order = {**once, "events": once["events"][::-1]}
    return {
        "the listed order differs from the signed one": (reversed_order, 422),
        "one event fewer than signed": ({**once, "events": once["events"][:-1]}, 422),
        "signed for another chain": (sign_events_once(CLIENT_KEY, chain_id + 1, events), 422),
        "signed by another key": (sign_events_once(PrivateKey.generate(), chain_id, events), 422),
        "an event listed twice": ({**once, "events": [*once["events"], once["events"][0]]}, 422),
        "an unknown event": ({**once, "events": [*once["events"][:-1], "no-such-event"]}, 404),
        "both forms": ({**once, "signatures": sign_events(CLIENT_KEY, chain_id, events)}, 422),
        "events without a signature": ({"events": once["events"]}, 422),
        "a signature without events": (
            {"department_signature": once["department_signature"]},
            422,
        ),
        "not base64": ({**once, "department_signature": "%%%"}, 422),
    }


@pytest.mark.parametrize(
    "case",
    [
        "the listed order differs from the signed one",
        "one event fewer than signed",
        "signed for another chain",
        "signed by another key",
        "an event listed twice",
        "an unknown event",
        "both forms",
        "events without a signature",
        "a signature without events",
        "not base64",
    ],
)
def test_a_root_signature_that_does_not_cover_the_listed_events_signs_nothing(
    chain_app: CreditApp, case: str
) -> None:
    app = chain_app
    app.sdk.import_file(penalty_file(penalties(3)))
    events = app.sdk.pending_events()
    body, status = _refusals(app, events, app.sdk.credit_chain_id())[case]
    answer = _post(app, body)
    assert answer.status_code == status, answer.text
    assert "code" in answer.json()["error"]
    assert app.sdk.pending_events() == events
    assert app.records() == 3


def test_an_event_signed_already_is_a_conflict(chain_app: CreditApp) -> None:
    app = chain_app
    app.sdk.import_file(penalty_file(penalties(2)))
    events = app.sdk.pending_events()
    chain_id = app.sdk.credit_chain_id()
    assert _post(app, sign_events_once(CLIENT_KEY, chain_id, events[:1])).status_code == 200
    again = _post(app, sign_events_once(CLIENT_KEY, chain_id, events))
    assert again.status_code == 409 and again.json()["error"]["code"] == "event_signed"
    assert app.sdk.pending_events() == events[1:]
