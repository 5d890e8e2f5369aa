"""A subject files the repair application for its own record: an enterprise signing the
terms with its own key, a citizen through the identity provider that attests their
approval. Refused for another subject's record (403), with a signature that does not
verify or terms not of this evidence (422), and replayed (409); the authority decides as
for any application, and every step shows in the subject's tracker."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from credit_harness import RESIDENT_ID, CreditApp, penalties, penalty_file, person_penalty
from credit_tables import ENTERPRISE_USCC
from registry_harness import signed

from chain.crypto import PrivateKey
from registry.cli import add_client
from sdk.credit_subject import (
    OWN_REPAIR_PATH,
    CreditSubjectClient,
    citizen_filing,
    enterprise_filing,
)
from sdk.data_client import DataClient

CST = datetime.timezone(datetime.timedelta(hours=8))
MINIMUM_END = datetime.datetime(2023, 8, 1, tzinfo=CST)
"""Decided 2023-05-01, an ordinary penalty: repairable after 3 months."""
IDENTITY_USCC = "11350102MB0001003C"
OTHER_ENTERPRISE = "91350102MA2Y0002X7"
EVIDENCE = "罚款已缴清，缴款书号 0001"


class Party:
    def __init__(self, app: CreditApp, uscc: str, roles: list[str]) -> None:
        self.app = app
        self.key = PrivateKey.generate()
        self.uscc = uscc
        self.id = add_client(
            app.db,
            name=f"party {uscc}",
            uscc=uscc,
            public_key_pem=self.key.public_key.to_pem(),
            roles=roles,
        ).id

    def post(self, path: str, payload: Any) -> Any:
        body, headers = signed(self.key, self.id, "POST", path, payload)
        return self.app.http.post(path, content=body, headers=headers)

    def credit(self) -> CreditSubjectClient:
        return CreditSubjectClient(
            "http://testserver", self.id, self.key, http_client=self.app.http, retries=0
        )


def _records(app: CreditApp) -> tuple[str, str]:
    """The enterprise's record and the citizen's, repairable from now on."""
    app.sdk.import_file(penalty_file([*penalties(1), person_penalty()]))
    (enterprise_record,) = app.sdk.authority_profile(ENTERPRISE_USCC)["records"]
    (person_record,) = app.sdk.authority_profile(RESIDENT_ID)["records"]
    app.clock.set(MINIMUM_END)
    return enterprise_record["current"]["id"], person_record["current"]["id"]


def _chain_id(app: CreditApp) -> int:
    return int(app.http.get("/v1/records/signing").json()["chainId"])


def _code(answer: Any) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


def test_an_enterprise_files_its_own_repair_once_and_follows_the_decision(
    chain_app: CreditApp,
) -> None:
    app = chain_app
    own, persons = _records(app)
    enterprise = Party(app, ENTERPRISE_USCC, ["subject"])
    chain_id = _chain_id(app)

    others = enterprise_filing(enterprise.key, chain_id, ENTERPRISE_USCC, persons, EVIDENCE, True)
    assert _code(enterprise.post(OWN_REPAIR_PATH, others)) == (403, "not_own_record")
    forged = enterprise_filing(
        PrivateKey.generate(), chain_id, ENTERPRISE_USCC, own, EVIDENCE, True
    )
    assert _code(enterprise.post(OWN_REPAIR_PATH, forged)) == (422, "bad_signature")
    body = enterprise_filing(enterprise.key, chain_id, ENTERPRISE_USCC, own, EVIDENCE, True)
    changed = {**body, "evidence": "别的证据"}
    assert _code(enterprise.post(OWN_REPAIR_PATH, changed)) == (422, "invalid_repair_terms")
    pretending = enterprise_filing(enterprise.key, chain_id, OTHER_ENTERPRISE, own, EVIDENCE, True)
    assert _code(enterprise.post(OWN_REPAIR_PATH, pretending)) == (422, "invalid_repair_terms")
    assert enterprise.credit().own_repairs() == []  # nothing refused was stored

    filed = enterprise.post(OWN_REPAIR_PATH, body)
    assert filed.status_code == 200, filed.text
    application = filed.json()
    assert (application["record_id"], application["state"]) == (own, "pending")
    assert _code(enterprise.post(OWN_REPAIR_PATH, body)) == (409, "repair_replayed")

    (shown,) = enterprise.credit().own_repairs()
    assert (shown["applicationId"], shown["state"]) == (application["id"], "pending")
    decided = app.sdk.decide_repair(application["id"], approve=True, reason="已履行，同意修复")
    assert decided["state"] == "approved"
    (shown,) = enterprise.credit().own_repairs()
    assert (shown["state"], shown["decisionReason"]) == ("approved", "已履行，同意修复")
    assert shown["decidedAt"] is not None
    (repair,) = app.sdk.authority_profile(ENTERPRISE_USCC)["repairs"]
    assert repair["id"] == application["id"]
    stranger = Party(app, OTHER_ENTERPRISE, ["subject"])
    assert stranger.credit().own_repairs() == []
    department = Party(app, IDENTITY_USCC, ["credit"])
    assert department.post(OWN_REPAIR_PATH, body).status_code == 403


def test_a_citizen_files_through_the_identity_provider_and_sees_it_on_the_page(
    chain_app: CreditApp,
) -> None:
    app = chain_app
    enterprises, own = _records(app)
    identity = Party(app, IDENTITY_USCC, ["identity"])
    chain_id = _chain_id(app)
    others = citizen_filing(identity.key, chain_id, RESIDENT_ID, enterprises, EVIDENCE, True)
    assert _code(identity.post(OWN_REPAIR_PATH, others)) == (403, "not_own_record")
    unsigned = {**citizen_filing(identity.key, chain_id, RESIDENT_ID, own, EVIDENCE, True)}
    unsigned["signature"] = base64.b64encode(b"\x30\x00").decode()
    assert _code(identity.post(OWN_REPAIR_PATH, unsigned)) == (422, "bad_signature")

    application = identity.credit().attest_own_repair(
        RESIDENT_ID, own, EVIDENCE, obligations_fulfilled=True
    )
    assert application["state"] == "pending"
    data = DataClient("http://testserver", identity.id, identity.key, http_client=app.http)
    session = data.open_tracker_session(RESIDENT_ID)
    page = app.http.get(str(session["path"]))
    assert page.status_code == 200
    assert f'data-repair="{application["id"]}"' in page.text and "待决定" in page.text
    app.sdk.decide_repair(application["id"], approve=False, reason="证据不足")
    page = app.http.get(str(session["path"]))
    assert "未同意修复" in page.text and "证据不足" in page.text
