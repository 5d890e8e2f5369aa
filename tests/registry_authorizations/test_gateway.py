"""The data gateway served: an enterprise consents, the recipient reads its license
metadata, and each of the gateway's rules refuses on its own with 403 naming it (another
department reusing the authorization id, another subject's data, an item out of scope, a
purpose mismatch, the window's end at the exact second, a revocation between two reads,
no uses left), a replayed signed request is refused, and every access, allowed or refused,
is logged with a receipt the registry signed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_KEY,
    CLIENT_USCC,
    TrustChain,
    registry_settings,
    signed,
)
from sharing_harness import (
    ENTERPRISE_USCC,
    IDENTITY_USCC,
    OTHER_HOLDER_USCC,
    OTHER_USCC,
    RECIPIENT_USCC,
    Scenario,
    add_party,
    issue,
    module_database,
)
from sqlalchemy import func, select

from registry.app import create_app
from registry.authorizations.expiry import record_expiry
from registry.authorizations.models import AccessLogRow
from registry.settings import RegistrySettings
from sdk.data_client import AccessRefused, AsyncDataClient, Authorization
from sdk.data_receipts import (
    AccessReceipt,
    verify_access_chain,
    verify_receipt_signature,
)


@pytest.fixture(scope="module")
def scenario(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("sharing"), database_url)
        yield from _scenario(settings)


def _scenario(settings: RegistrySettings) -> Iterator[Scenario]:
    with TestClient(create_app(settings)) as http:
        db = http.app.state.registry.db  # type: ignore[attr-defined]
        controller = add_party(
            db, CLIENT_USCC, ["licenses", "data", "verify"], CLIENT_KEY, CLIENT_DEPARTMENT_NAME
        )
        scenario = Scenario(
            http=http,
            db=db,
            controller=controller,
            recipient=add_party(db, RECIPIENT_USCC, ["data"]),
            other=add_party(db, OTHER_USCC, ["data"]),
            enterprise=add_party(db, ENTERPRISE_USCC, ["subject"]),
            identity=add_party(db, IDENTITY_USCC, ["identity"]),
            license_id=issue(http, controller, ENTERPRISE_USCC),
            other_license_id=issue(http, controller, OTHER_HOLDER_USCC),
            chain_id=int(http.get("/v1/records/signing").json()["chainId"]),
        )
        yield scenario


def refused(response: Any, rule: str) -> AccessReceipt:
    """The 403 naming ``rule``, and the receipt it carries."""
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == rule
    return AccessReceipt.from_json(error["details"]["receipt"])


def log_count(scenario: Scenario) -> int:
    with scenario.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AccessLogRow)) or 0)


def test_consented_read_returns_data_and_a_signed_receipt(scenario: Scenario) -> None:
    asked = scenario.ask()
    assert asked["status"] == "requested"
    # Before consent the authorization is no authorization.
    refused(scenario.read(asked["id"]), "unknown_authorization")
    granted = scenario.consent(asked)
    assert granted["status"] == "granted"
    assert granted["consent"]["method"] == "enterprise_signature"
    assert [event["kind"] for event in granted["events"]] == ["grant"]
    # The grant event names the subject by commitment only.
    assert ENTERPRISE_USCC not in json.dumps(granted["events"])

    response = scenario.read(granted["id"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"]["identifier"] == scenario.license_id
    assert "holder_id" not in answer["data"]  # the field is an item of its own
    receipt = AccessReceipt.from_json(answer["receipt"])
    key = bytes.fromhex(scenario.http.get("/v1/data/registry-key").json()["registryKey"])
    verify_receipt_signature(receipt, key)
    assert receipt.entry["outcome"] == "allowed"
    assert receipt.entry["caller"] == RECIPIENT_USCC
    assert receipt.entry["request"]["client"] == scenario.recipient.client_id
    assert ENTERPRISE_USCC not in json.dumps(receipt.entry)
    assert scenario.license_id not in json.dumps(receipt.entry)


def test_another_department_reusing_the_authorization_id(scenario: Scenario) -> None:
    granted = scenario.granted()
    receipt = refused(scenario.read(granted["id"], party=scenario.other), "caller_not_recipient")
    assert receipt.entry["caller"] == OTHER_USCC


def test_data_about_another_subject(scenario: Scenario) -> None:
    granted = scenario.granted()
    refused(scenario.read(granted["id"], resource=scenario.other_license_id), "subject_mismatch")
    refused(scenario.read(granted["id"], resource="no-such-license"), "subject_mismatch")


def test_item_outside_scope(scenario: Scenario) -> None:
    granted = scenario.granted()
    # The holder's identifier is an item of its own, not part of the (masked) metadata.
    refused(scenario.read(granted["id"], item="license.holder_id"), "item_out_of_scope")
    refused(scenario.read(granted["id"], item="license"), "item_out_of_scope")
    wider = scenario.granted(items=["license.holder_id"])
    answer = scenario.read(wider["id"], item="license.holder_id").json()
    assert answer["data"]["holder_id"] == ENTERPRISE_USCC


def test_purpose_mismatch(scenario: Scenario) -> None:
    granted = scenario.granted()
    refused(scenario.read(granted["id"], purpose="subsidy.eligibility"), "purpose_mismatch")


def test_window_ends_at_the_exact_second(scenario: Scenario) -> None:
    end = int(time.time()) + 1_000
    granted = scenario.granted(valid_until=end)
    sharing = scenario.gateway.sharing
    try:
        sharing.clock = lambda: end - 0.001
        assert scenario.read(granted["id"]).status_code == 200
        sharing.clock = lambda: float(end)
        refused(scenario.read(granted["id"]), "outside_validity_window")
    finally:
        sharing.clock = time.time


def test_revoked_between_two_reads(scenario: Scenario) -> None:
    granted = scenario.granted()
    assert scenario.read(granted["id"]).status_code == 200
    revoked = scenario.enterprise.post(scenario.http, f"/v1/authorizations/{granted['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert [e["kind"] for e in revoked.json()["events"]] == ["grant", "revoke"]
    refused(scenario.read(granted["id"]), "authorization_revoked")


def test_no_uses_left(scenario: Scenario) -> None:
    granted = scenario.granted(max_uses=2)
    assert scenario.read(granted["id"]).status_code == 200
    assert scenario.read(granted["id"]).status_code == 200
    refused(scenario.read(granted["id"]), "no_uses_left")


def test_replay_of_a_signed_gateway_request_is_refused(scenario: Scenario) -> None:
    granted = scenario.granted()
    payload = {
        "authorization_id": granted["id"],
        "item": "license.metadata",
        "purpose": "approval.food-business-license",
        "resource": scenario.license_id,
    }
    recipient = scenario.recipient
    body, headers = signed(recipient.key, recipient.client_id, "POST", "/v1/data/read", payload)
    assert scenario.http.post("/v1/data/read", content=body, headers=headers).status_code == 200
    before = log_count(scenario)
    replay = scenario.http.post("/v1/data/read", content=body, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"
    assert log_count(scenario) == before


def test_a_read_whose_signature_fails_is_refused_before_anything(scenario: Scenario) -> None:
    """A bad signature is 401 ``bad_signature``, nothing is logged, and its nonce is not
    spent (the same request, signed as it should be, then reads)."""
    granted = scenario.granted()
    payload = {
        "authorization_id": granted["id"],
        "item": "license.metadata",
        "purpose": "approval.food-business-license",
        "resource": scenario.license_id,
    }
    recipient = scenario.recipient
    body, headers = signed(recipient.key, recipient.client_id, "POST", "/v1/data/read", payload)
    # Another key's signature, under the recipient's client id and nonce.
    other_key = scenario.other.key
    _body, forgery = signed(other_key, recipient.client_id, "POST", "/v1/data/read", payload)
    forged_headers = dict(headers)
    forged_headers["X-Lianxin-Signature"] = forgery["X-Lianxin-Signature"]
    before = log_count(scenario)
    refused_read = scenario.http.post("/v1/data/read", content=body, headers=forged_headers)
    assert refused_read.status_code == 401
    assert refused_read.json()["error"]["code"] == "bad_signature"
    assert log_count(scenario) == before
    assert scenario.http.post("/v1/data/read", content=body, headers=headers).status_code == 200
    assert log_count(scenario) == before + 1


def test_statutory_duty_is_granted_without_consent_and_cites_its_basis(scenario: Scenario) -> None:
    missing = scenario.recipient.post(
        scenario.http,
        "/v1/authorizations",
        {**_statutory(), "basis_citation": ""},
    )
    assert missing.status_code == 422
    granted = scenario.recipient.post(scenario.http, "/v1/authorizations", _statutory()).json()
    assert granted["status"] == "granted" and granted["consent"]["method"] == "not_required"
    assert scenario.read(granted["id"], purpose="supervision.credit-check").status_code == 200
    shown = scenario.enterprise.get(scenario.http, "/v1/tracker/authorizations").json()
    mine = {a["id"]: a for a in shown["authorizations"]}
    assert mine[granted["id"]]["terms"]["basisCitation"] == "《优化营商环境条例》第三十七条"


def _statutory() -> dict[str, Any]:
    now = int(time.time())
    return {
        "subject_kind": "enterprise",
        "subject_id": ENTERPRISE_USCC,
        "controller": CLIENT_USCC,
        "recipient": RECIPIENT_USCC,
        "items": ["license.metadata"],
        "purpose": "supervision.credit-check",
        "legal_basis": "statutory_duty",
        "basis_citation": "《优化营商环境条例》第三十七条",
        "valid_from": now - 60,
        "valid_until": now + 3_600,
    }


def test_consent_must_be_the_subjects_own(scenario: Scenario) -> None:
    asked = scenario.ask()
    forged = scenario.other.post(
        scenario.http, f"/v1/authorizations/{asked['id']}/consent", {"signature": "AAAAAAAAAAA="}
    )
    assert forged.status_code == 403
    bad = scenario.enterprise.post(
        scenario.http, f"/v1/authorizations/{asked['id']}/consent", {"signature": "AAAAAAAAAAA="}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "consent_invalid"


def test_every_stream_is_one_hash_chain(scenario: Scenario, tmp_path: Path) -> None:
    granted = scenario.granted(max_uses=1)
    scenario.read(granted["id"])
    scenario.read(granted["id"], party=scenario.other)
    scenario.read(granted["id"])
    listed = scenario.recipient.get(scenario.http, f"/v1/authorizations/{granted['id']}/accesses")
    accesses = listed.json()["accesses"]
    assert [a["outcome"] for a in accesses] == ["allowed", "caller_not_recipient", "no_uses_left"]
    verify_access_chain([a["receipt"]["entry"] for a in accesses])


def test_expiry_is_recorded_as_an_anchored_event(scenario: Scenario) -> None:
    end = int(time.time()) + 1_000
    granted = scenario.granted(valid_until=end)
    sharing = scenario.gateway.sharing
    try:
        sharing.clock = lambda: float(end)
        # The process's own expiry worker may have claimed it already: either way, once.
        record_expiry(sharing, granted["id"])
        assert not record_expiry(sharing, granted["id"])
        listed = scenario.enterprise.get(scenario.http, "/v1/tracker/authorizations").json()
    finally:
        sharing.clock = time.time
    (mine,) = [a for a in listed["authorizations"] if a["id"] == granted["id"]]
    assert mine["status"] == "expired"
    assert [event["kind"] for event in mine["events"]] == ["grant", "expire"]
    assert mine["events"][1]["event"]["actor"] == "registry"


def test_amendment_replaces_the_authorization_once_consented(scenario: Scenario) -> None:
    old = scenario.granted()
    new = scenario.ask(f"/v1/authorizations/{old['id']}/amend", max_uses=1)
    assert new["status"] == "requested" and new["terms"]["amends"] == old["id"]
    # In force until the subject consents to the new terms.
    assert scenario.read(old["id"]).status_code == 200
    scenario.consent(new)
    replaced = scenario.recipient.get(scenario.http, f"/v1/authorizations/{old['id']}").json()
    assert replaced["status"] == "amended"
    assert [event["kind"] for event in replaced["events"]] == ["grant", "amend"]
    refused(scenario.read(old["id"]), "authorization_revoked")
    assert scenario.read(new["id"]).status_code == 200
    refused(scenario.read(new["id"]), "no_uses_left")
    other_subject = scenario.recipient.post(
        scenario.http,
        f"/v1/authorizations/{new['id']}/amend",
        {**_statutory(), "subject_id": "91350102MA2Y0002X7"},
    )
    assert other_subject.status_code == 422


def test_the_async_client_reads_and_revokes(scenario: Scenario) -> None:
    transport = httpx.ASGITransport(app=scenario.http.app)

    def client(party: Any) -> AsyncDataClient:
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        return AsyncDataClient("http://testserver", party.client_id, party.key, http_client=http)

    async def run() -> None:
        async with client(scenario.recipient) as department, client(scenario.enterprise) as owner:
            asked = await department.request_authorization(
                **{
                    **_statutory(),
                    "legal_basis": "consent",
                    "basis_citation": "",
                    "purpose": "approval.food-business-license",
                }
            )
            assert isinstance(asked, Authorization) and asked.status == "requested"
            granted = await owner.grant(asked, chain_id=scenario.chain_id)
            read = await department.read(
                granted.id,
                item="license.metadata",
                purpose="approval.food-business-license",
                resource=scenario.license_id,
            )
            assert read.data["identifier"] == scenario.license_id
            assert (await owner.revoke(granted.id)).status == "revoked"
            with pytest.raises(AccessRefused) as refused:
                await department.read(
                    granted.id,
                    item="license.metadata",
                    purpose="approval.food-business-license",
                    resource=scenario.license_id,
                )
            assert refused.value.code == "authorization_revoked"
            outcomes = [
                a.outcome
                for a in await owner.tracker_accesses()
                if a.authorization_id == granted.id
            ]
            assert sorted(outcomes) == ["allowed", "authorization_revoked"]

    asyncio.run(run())
