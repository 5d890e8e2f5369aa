"""The data tracker served: every access to an enterprise's data, allowed or refused,
appears in its tracker with a receipt whose proof bundle verifies offline; a changed or
missing log entry shows against the anchors; an investigation's accesses stay hidden
until the disclosure date, then appear with the block they were anchored in at the time;
and the citizen's page behind the identity provider lists and revokes."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from registry_harness import CLIENT_USCC, TrustChain, registry_settings
from sharing_harness import (
    CITIZEN_ID,
    ENTERPRISE_USCC,
    PURPOSE,
    RECIPIENT_USCC,
    Scenario,
    issue,
    module_database,
    scenario_on,
)

from authorizations.access_log import RequestFacts
from chain.commit import ValidatorSet
from registry.authorizations.access import Attempt
from registry.authorizations.gateway import resource_hash
from registry.authorizations.models import AccessLogRow
from sdk.data_client import AccessRecord, AccessRefused, Authorization, DataClient
from sdk.data_receipts import (
    AccessReceipt,
    ReceiptInvalid,
    access_entry_hash,
    verify_receipt,
    verify_receipt_signature,
)

ANCHOR_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def scenario(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("tracker"), database_url)
        yield from scenario_on(settings)


def client_of(scenario: Scenario, party: Any) -> DataClient:
    return DataClient(
        "http://testserver", party.client_id, party.key, http_client=scenario.http, retries=0
    )


def validators(scenario: Scenario) -> ValidatorSet:
    return scenario.http.app.state.registry.chain.validator_set()  # type: ignore[attr-defined,no-any-return]


def anchored_accesses(client: DataClient, expected: int) -> list[AccessRecord]:
    """The tracker's accesses once ``expected`` of them carry their proof bundle (the
    batcher seals every 0.2 s; the wait ends as soon as they do)."""
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        accesses = client.tracker_accesses()
        if len([a for a in accesses if a.receipt.bundle is not None]) >= expected:
            return accesses
        assert time.monotonic() < deadline, "accesses not anchored in time"
        time.sleep(0.2)


def test_every_access_is_in_the_tracker_with_a_proof_that_verifies_offline(
    scenario: Scenario,
) -> None:
    granted = scenario.granted(max_uses=2)
    outcomes = [
        scenario.read(granted["id"]).status_code,
        scenario.read(granted["id"], party=scenario.other).status_code,
        scenario.read(granted["id"], purpose="subsidy.eligibility").status_code,
        scenario.read(granted["id"]).status_code,
        scenario.read(granted["id"]).status_code,
    ]
    assert outcomes == [200, 403, 403, 200, 403]
    enterprise = client_of(scenario, scenario.enterprise)
    key = enterprise.registry_key()
    accesses = [a for a in anchored_accesses(enterprise, 5) if a.authorization_id == granted["id"]]
    assert sorted(a.outcome for a in accesses) == sorted(
        ["allowed", "caller_not_recipient", "purpose_mismatch", "allowed", "no_uses_left"]
    )
    trusted = validators(scenario)
    for access in accesses:
        verdict = verify_receipt(
            access.receipt, trusted, chain_id=scenario.chain_id, registry_key=key
        )
        assert verdict.valid and verdict.signed_by is not None
    # One unbroken chain, oldest first, ending at the newest entry.
    ordered = sorted(accesses, key=lambda a: a.receipt.entry["position"])
    DataClient.verify_stream(ordered, head=access_entry_hash(ordered[-1].receipt.entry))


def test_a_changed_or_missing_entry_shows_against_the_anchors(scenario: Scenario) -> None:
    granted = scenario.granted()
    for _ in range(3):
        assert scenario.read(granted["id"]).status_code == 200
    enterprise = client_of(scenario, scenario.enterprise)
    key = enterprise.registry_key()
    anchored_accesses(enterprise, 3)
    stream = (
        enterprise.stream(granted["id"])
        if False
        else client_of(scenario, scenario.recipient).stream(granted["id"])
    )
    assert len(stream) == 3
    # Someone with the database rewrites the middle entry as refused.
    with scenario.db.session() as session:
        row = session.query(AccessLogRow).filter_by(record_id=stream[1].record_id).one()
        row.entry_json = row.entry_json.replace('"outcome":"allowed"', '"outcome":"no_uses_left"')
    tampered = client_of(scenario, scenario.recipient).stream(granted["id"])
    with pytest.raises(ReceiptInvalid):
        verify_receipt(
            tampered[1].receipt, validators(scenario), chain_id=scenario.chain_id, registry_key=key
        )
    with pytest.raises(ReceiptInvalid):
        DataClient.verify_stream(tampered)
    # A missing entry breaks the chain too.
    with pytest.raises(ReceiptInvalid):
        DataClient.verify_stream([stream[0], stream[2]])


def test_investigation_is_disclosed_only_from_its_date(scenario: Scenario) -> None:
    now = int(time.time())
    disclose = now + 600
    investigation = scenario.recipient.post(
        scenario.http,
        "/v1/authorizations",
        {
            "subject_kind": "enterprise",
            "subject_id": ENTERPRISE_USCC,
            "controller": CLIENT_USCC,
            "recipient": RECIPIENT_USCC,
            "items": ["license.metadata"],
            "purpose": "investigation.case",
            "legal_basis": "investigation",
            "basis_citation": "《行政处罚法》第五十四条",
            "valid_from": now - 60,
            "valid_until": now + 3_600,
            "disclose_after": disclose,
        },
    ).json()
    assert investigation["status"] == "granted"
    read = scenario.read(investigation["id"], purpose="investigation.case")
    assert read.status_code == 200
    record_id = read.json()["receipt"]["recordId"]
    enterprise = client_of(scenario, scenario.enterprise)

    def seen() -> list[AccessRecord]:
        return [a for a in enterprise.tracker_accesses() if a.record_id == record_id]

    assert seen() == []
    assert investigation["id"] not in {a.id for a in enterprise.tracker_authorizations()}
    # It is anchored now, while hidden.
    recipient = client_of(scenario, scenario.recipient)
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while recipient.access(record_id).receipt.bundle is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    sharing = scenario.gateway.sharing
    try:
        sharing.clock = lambda: float(disclose)
        (shown,) = seen()
    finally:
        sharing.clock = time.time
    bundle = shown.receipt.bundle
    assert bundle is not None and shown.block_number == bundle.header.height
    # Recorded at the time: the block's timestamp is before the disclosure date.
    assert bundle.header.timestamp_ms < disclose * 1_000
    verify_receipt(
        shown.receipt,
        validators(scenario),
        chain_id=scenario.chain_id,
        registry_key=enterprise.registry_key(),
    )


def test_citizen_page_lists_and_revokes(scenario: Scenario) -> None:
    citizen_license = issue(scenario.http, scenario.controller, CITIZEN_ID, "resident_id")
    now = int(time.time())
    asked = scenario.recipient.post(
        scenario.http,
        "/v1/authorizations",
        {
            "subject_kind": "citizen",
            "subject_id": CITIZEN_ID,
            "controller": CLIENT_USCC,
            "recipient": RECIPIENT_USCC,
            "items": ["license.metadata"],
            "purpose": "subsidy.eligibility",
            "legal_basis": "consent",
            "valid_from": now - 60,
            "valid_until": now + 3_600,
        },
    ).json()
    identity = client_of(scenario, scenario.identity)
    granted = identity.attest_approval(
        Authorization.from_json(asked), CITIZEN_ID, chain_id=scenario.chain_id
    )
    assert granted.status == "granted"
    assert granted.consent is not None and granted.consent["method"] == "identity_provider"
    recipient = client_of(scenario, scenario.recipient)
    allowed = recipient.read(
        asked["id"],
        item="license.metadata",
        purpose="subsidy.eligibility",
        resource=citizen_license,
    )
    assert allowed.data["identifier"] == citizen_license
    session = identity.open_tracker_session(CITIZEN_ID)
    page = scenario.http.get(str(session["path"]))
    assert page.status_code == 200 and asked["id"] in page.text
    assert "Content-Security-Policy" in page.headers and "<script" not in page.text
    revoked = scenario.http.post(
        "/tracker/revoke",
        content=f"s={session['session']}&authorization_id={asked['id']}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    after = scenario.http.get(revoked.headers["location"])
    assert "授权已撤回" in after.text
    assert re.search(rf'data-authorization="{asked["id"]}"', after.text)
    with pytest.raises(AccessRefused) as refused:
        recipient.read(
            asked["id"],
            item="license.metadata",
            purpose="subsidy.eligibility",
            resource=citizen_license,
        )
    assert refused.value.code == "authorization_revoked"
    assert scenario.http.get("/tracker?s=lx-tracker-v1.forged").status_code == 403


def test_a_group_of_entries_signed_once_verifies_entry_by_entry(scenario: Scenario) -> None:
    """The writer signs a whole group at once (over the Merkle root of its commitments):
    each receipt still verifies alone, before and after anchoring."""
    granted = scenario.granted()
    gateway = scenario.gateway
    provider = gateway.provider_for("license.metadata")
    assert provider is not None
    commitment = gateway.resource_commitment(provider, granted["id"], scenario.license_id)
    attempts = [
        Attempt(
            authorization_id=granted["id"],
            caller_client=scenario.recipient.client_id,
            caller_uscc=RECIPIENT_USCC,
            subject_commitment=commitment,
            item=item,
            purpose=PURPOSE,
            resource_hash=resource_hash(scenario.license_id),
            request=RequestFacts("POST", "/v1/data/read", "c", "0", f"n{index}", "00", "c2ln"),
        )
        for index, item in enumerate(["license.metadata", "license.holder_id", "license.metadata"])
    ]
    decisions = gateway.writer.write(attempts)
    assert [d.outcome for d in decisions] == ["allowed", "item_out_of_scope", "allowed"]
    enterprise = client_of(scenario, scenario.enterprise)
    key = enterprise.registry_key()
    receipts = [AccessReceipt.from_json(d.receipt.to_sdk_json()) for d in decisions]
    assert all(r.proof is not None for r in receipts)
    assert len({r.signature for r in receipts}) == 1
    for receipt in receipts:
        verify_receipt_signature(receipt, key)
    forged = dataclasses.replace(receipts[0], entry={**receipts[0].entry, "outcome": "x"})
    with pytest.raises(ReceiptInvalid):
        verify_receipt_signature(forged, key)
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        stream = client_of(scenario, scenario.recipient).stream(granted["id"])
        if all(a.receipt.bundle is not None for a in stream):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    for access in stream:
        assert verify_receipt(
            access.receipt, validators(scenario), chain_id=scenario.chain_id, registry_key=key
        ).valid
    DataClient.verify_stream(stream)
