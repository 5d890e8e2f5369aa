"""E-archives behind the gateway: a package ingested as about an enterprise (or a
citizen: kept only as a blind index) is read by the department an authorization names —
its description and file list, and a file's content streamed — within the authorized
class and nothing beyond (a package of another class is refused 403 item_out_of_scope,
logged); a revocation between two reads refuses the second; every read, allowed or
refused, is in the subject's tracker with a proof that verifies offline."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from archive_samples import make_sample_bag, standard_files
from registry_harness import CLIENT_KEY, CLIENT_USCC, TrustChain, registry_settings, signed
from sharing_harness import (
    CITIZEN_ID,
    ENTERPRISE_USCC,
    OTHER_HOLDER_USCC,
    PURPOSE,
    Party,
    Scenario,
    add_party,
    module_database,
    scenario_on,
)
from sqlalchemy import select

from archives.submission import sign_bag
from chain.crypto import sm3
from registry.authorizations.trail_models import ArchiveSubjectRow
from sdk.data_client import Authorization, DataClient
from sdk.data_receipts import AccessReceipt, verify_receipt, verify_receipt_signature

ANCHOR_TIMEOUT_S = 60.0
WS_CODE = "J001-WS·2023-Y-BGS-0201"
"""A 文书 (document) package."""
KJ_CODE = "J001-KJ·2023-Y-BGS-0202"
"""A 科技 (science and technology) package: not a document archive."""
NOTICE = "关于印发某区档案工作要点的通知\n".encode()


@dataclasses.dataclass
class Archives:
    scenario: Scenario
    ingester: Party
    work: Path
    packages: dict[str, str] = dataclasses.field(default_factory=dict)

    def ingest(self, name: str, code: str, subject: dict[str, str] | None) -> Any:
        folder = self.work / name
        files = {**standard_files(), "0004.txt": NOTICE}
        bag = make_sample_bag(folder / "bag", files, 档号=code)
        archive = Path(shutil.make_archive(str(folder / "bag"), "zip", bag.parent, "bag"))
        submission = sign_bag(archive, CLIENT_KEY, self.scenario.chain_id, folder / "scratch")
        body: dict[str, Any] = {
            "bag": base64.b64encode(archive.read_bytes()).decode(),
            "records": submission.records,
        }
        if subject is not None:
            body["subject"] = subject
        return self.ingester.post(self.scenario.http, "/v1/archives/packages", body)


@pytest.fixture(scope="module")
def archives(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Archives]:
    work = tmp_path_factory.mktemp("archives-gateway")
    with module_database() as database_url:
        settings = registry_settings(trust_chain, work / "registry", database_url)
        for scenario in scenario_on(settings):
            ingester = add_party(scenario.db, CLIENT_USCC, ["notarize"], CLIENT_KEY)
            found = Archives(scenario, ingester, work)
            enterprise = {"kind": "enterprise", "id": ENTERPRISE_USCC}
            for name, code, subject in (
                ("ws", WS_CODE, enterprise),
                ("kj", KJ_CODE, enterprise),
                ("nobody", "J001-WS·2023-Y-BGS-0203", None),
                ("citizen", "J001-WS·2023-Y-BGS-0204", {"kind": "citizen", "id": CITIZEN_ID}),
            ):
                answer = found.ingest(name, code, subject)
                assert answer.status_code == 201, answer.text
                found.packages[name] = answer.json()["packageId"]
            yield found


def client_of(scenario: Scenario, party: Party) -> DataClient:
    return DataClient(
        "http://testserver", party.client_id, party.key, http_client=scenario.http, retries=0
    )


def _signed(party: Party, path: str, payload: Any) -> dict[str, Any]:
    body, headers = signed(party.key, party.client_id, "POST", path, payload)
    return {"content": body, "headers": headers}


def read(archives: Archives, authorization_id: str, resource: str, item: str) -> Any:
    scenario = archives.scenario
    return scenario.read(authorization_id, item=item, resource=resource)


def test_a_subject_is_validated_at_ingest_and_kept_only_as_a_blind_index(
    archives: Archives,
) -> None:
    bad = archives.ingest("bad", "J001-WS·2023-Y-BGS-0209", {"kind": "citizen", "id": "1" * 18})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_subject"
    with archives.scenario.db.read_session() as session:
        rows = session.scalars(select(ArchiveSubjectRow)).all()
        stored = {row.package_id: (row.subject_kind, row.subject_index) for row in rows}
    assert set(stored) == {
        archives.packages[name] for name in ("ws", "kj", "citizen")
    }  # the refused ingest stored nothing, the package about no one has no subject
    kind, index = stored[archives.packages["citizen"]]
    assert kind == "citizen" and CITIZEN_ID not in index and len(index) == 64


def test_the_authorized_class_is_read_and_nothing_beyond(archives: Archives) -> None:
    scenario, packages = archives.scenario, archives.packages
    granted = scenario.granted(items=["archive.document"])
    allowed = read(archives, granted["id"], packages["ws"], "archive.document")
    assert allowed.status_code == 200, allowed.text
    data = allowed.json()["data"]
    assert data["description"]["档号"] == WS_CODE and data["item"] == "archive.document"
    assert {f["path"] for f in data["files"]} >= {"data/0004.txt"}
    beyond = read(archives, granted["id"], packages["kj"], "archive")
    assert beyond.status_code == 403
    assert beyond.json()["error"]["code"] == "item_out_of_scope"
    assert beyond.json()["error"]["details"]["receipt"]["entry"]["item"] == "archive"
    nobody = read(archives, granted["id"], packages["nobody"], "archive.document")
    assert nobody.json()["error"]["code"] == "subject_mismatch"
    logged = client_of(scenario, scenario.recipient).stream(granted["id"])
    assert [(a.item, a.outcome) for a in logged] == [
        ("archive.document", "allowed"),
        ("archive", "item_out_of_scope"),
        ("archive.document", "subject_mismatch"),
    ]


def test_a_file_is_streamed_with_its_hash_and_receipt(archives: Archives) -> None:
    scenario, packages = archives.scenario, archives.packages
    granted = scenario.granted(items=["archive"])
    body = {
        "authorization_id": granted["id"],
        "item": "archive",
        "purpose": PURPOSE,
        "resource": f"{packages['ws']}/data/0004.txt",
    }
    with scenario.http.stream(
        "POST", "/v1/data/file", **_signed(scenario.recipient, "/v1/data/file", body)
    ) as answer:
        assert answer.status_code == 200
        content = b"".join(answer.iter_bytes())
        headers = answer.headers
    assert content == NOTICE
    assert headers["x-lianxin-content-sm3"] == sm3(NOTICE).hex()
    receipt = AccessReceipt.from_json(
        json.loads(base64.urlsafe_b64decode(headers["x-lianxin-receipt"]))
    )
    assert receipt.entry["outcome"] == "allowed" and receipt.entry["item"] == "archive.document"
    verify_receipt_signature(receipt, client_of(scenario, scenario.recipient).registry_key())
    no_file = scenario.http.post(
        "/v1/data/file",
        **_signed(scenario.recipient, "/v1/data/file", {**body, "resource": packages["ws"]}),
    )
    assert no_file.status_code == 404  # a package, not a file: allowed, but nothing to stream
    unlisted = scenario.http.post(
        "/v1/data/file",
        **_signed(
            scenario.recipient,
            "/v1/data/file",
            {**body, "resource": f"{packages['ws']}/data/../../../package.json"},
        ),
    )
    assert unlisted.status_code == 403
    assert unlisted.json()["error"]["code"] == "subject_mismatch"


def test_a_revocation_between_two_reads_refuses_the_second(archives: Archives) -> None:
    scenario, packages = archives.scenario, archives.packages
    granted = scenario.granted(items=["archive.document"])
    first = read(archives, granted["id"], packages["ws"], "archive.document")
    assert first.status_code == 200
    client_of(scenario, scenario.enterprise).revoke(granted["id"])
    second = read(archives, granted["id"], packages["ws"], "archive.document")
    assert second.status_code == 403
    assert second.json()["error"]["code"] == "authorization_revoked"


def test_every_archive_read_is_in_the_trackers_with_an_offline_proof(archives: Archives) -> None:
    scenario, packages = archives.scenario, archives.packages
    granted = scenario.granted(items=["archive.document"])
    read(archives, granted["id"], packages["ws"], "archive.document")
    read(archives, granted["id"], packages["kj"], "archive.document")
    enterprise = client_of(scenario, scenario.enterprise)
    validators = scenario.http.app.state.registry.chain.validator_set()  # type: ignore[attr-defined]
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        mine = [a for a in enterprise.tracker_accesses() if a.authorization_id == granted["id"]]
        if len(mine) == 2 and all(a.receipt.bundle is not None for a in mine):
            break
        assert time.monotonic() < deadline, "archive reads not anchored in time"
        time.sleep(0.2)
    assert sorted((a.item, a.outcome) for a in mine) == [
        ("archive", "item_out_of_scope"),
        ("archive.document", "allowed"),
    ]
    for access in mine:
        verify_receipt(
            access.receipt,
            validators,
            chain_id=scenario.chain_id,
            registry_key=enterprise.registry_key(),
        )
    other = add_party(scenario.db, OTHER_HOLDER_USCC, ["subject"])
    assert client_of(scenario, other).tracker_accesses() == []


def test_a_citizens_package_is_read_under_the_citizens_approval(archives: Archives) -> None:
    scenario, packages = archives.scenario, archives.packages
    asked = scenario.ask(subject_kind="citizen", subject_id=CITIZEN_ID, items=["archive"])
    identity = client_of(scenario, scenario.identity)
    identity.attest_approval(Authorization.from_json(asked), CITIZEN_ID, chain_id=scenario.chain_id)
    allowed = read(archives, asked["id"], packages["citizen"], "archive")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"]["description"]["档号"] == "J001-WS·2023-Y-BGS-0204"
    enterprises = read(archives, asked["id"], packages["ws"], "archive")
    assert enterprises.json()["error"]["code"] == "subject_mismatch"
    session = identity.open_tracker_session(CITIZEN_ID)
    page = scenario.http.get(str(session["path"]))
    assert page.status_code == 200 and "archive.document" in page.text
