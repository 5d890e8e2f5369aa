"""Public-credit data behind the gateway: an authorization naming credit record classes
lets the recipient read exactly those classes of that subject (everything on file, the
non-public fields included), nothing beyond; another class, the whole of the subject's
credit, or another subject is refused with 403 naming the rule, and every read, allowed
or refused, is in the authorization's access log."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from credit_tables import (
    AUTHORITY_USCC,
    LICENSING_HEADERS,
    LICENSING_KEYS,
    PENALTY_HEADERS,
    PENALTY_KEYS,
    cells,
    licensing_row,
    penalty_row,
)
from credit_tables import ENTERPRISE_USCC as CREDIT_SUBJECT
from registry_harness import CLIENT_USCC, TrustChain, registry_settings
from sharing_harness import (
    OTHER_HOLDER_USCC,
    RECIPIENT_USCC,
    Scenario,
    add_party,
    module_database,
    scenario_on,
)

from sdk.credit_client import CreditClient
from sdk.data_receipts import AccessReceipt, verify_access_chain

PURPOSE = "supervision.credit-check"
PENALTIES = ["榕市监罚〔2023〕101号", "榕市监罚〔2023〕102号"]
LICENSINGS = ["榕食许〔2023〕201号"]


def table(headers: Sequence[str], keys: Sequence[str], rows: list[dict[str, object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(cells(keys, row))
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def scenario(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_database() as database_url:
        settings = registry_settings(
            trust_chain,
            tmp_path_factory.mktemp("credit-gateway"),
            database_url,
            max_upload_bytes=1024 * 1024,
        )
        for scenario in scenario_on(settings):
            office = add_party(scenario.db, AUTHORITY_USCC, ["credit", "credit_office"])
            credit = CreditClient(
                "http://testserver", office.client_id, office.key, http_client=scenario.http
            )
            penalties = [penalty_row(decision_number=number) for number in PENALTIES]
            licensings = [licensing_row(decision_number=number) for number in LICENSINGS]
            assert credit.import_file(
                table(PENALTY_HEADERS, PENALTY_KEYS, penalties), table_format="csv"
            ).published == len(PENALTIES)
            assert credit.import_file(
                table(LICENSING_HEADERS, LICENSING_KEYS, licensings), table_format="csv"
            ).published == len(LICENSINGS)
            yield scenario


def authorization(scenario: Scenario, items: list[str]) -> str:
    """A statutory-duty authorization (granted at once) of the credit subject's ``items``
    for the recipient."""
    now = int(time.time())
    answer = scenario.recipient.post(
        scenario.http,
        "/v1/authorizations",
        {
            "subject_kind": "enterprise",
            "subject_id": CREDIT_SUBJECT,
            "controller": CLIENT_USCC,
            "recipient": RECIPIENT_USCC,
            "items": items,
            "purpose": PURPOSE,
            "legal_basis": "statutory_duty",
            "basis_citation": "《社会信用体系建设条例》第二十条",
            "valid_from": now - 60,
            "valid_until": now + 3_600,
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "granted"
    return str(answer.json()["id"])


def read(
    scenario: Scenario, authorization_id: str, item: str, resource: str = CREDIT_SUBJECT
) -> Any:
    return scenario.recipient.post(
        scenario.http,
        "/v1/data/read",
        {
            "authorization_id": authorization_id,
            "item": item,
            "purpose": PURPOSE,
            "resource": resource,
        },
    )


def refused(response: Any, rule: str) -> AccessReceipt:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == rule
    receipt = AccessReceipt.from_json(error["details"]["receipt"])
    assert receipt.entry["outcome"] == rule
    return receipt


def test_the_authorized_class_is_read_and_nothing_beyond(scenario: Scenario) -> None:
    penalties_only = authorization(scenario, ["credit.penalty"])
    allowed = read(scenario, penalties_only, "credit.penalty")
    assert allowed.status_code == 200, allowed.text
    data = allowed.json()["data"]
    assert data["item"] == "credit.penalty"
    assert sorted(r["decisionNumber"] for r in data["records"]) == PENALTIES
    assert {r["kind"] for r in data["records"]} == {"penalty"}
    # What the public page never shows: the authority's full fields.
    assert all(r["fields"].get("violation_facts") for r in data["records"])
    assert "checks" not in data and "lists" not in data
    assert allowed.json()["receipt"]["entry"]["outcome"] == "allowed"

    refused(read(scenario, penalties_only, "credit.licensing"), "item_out_of_scope")
    refused(read(scenario, penalties_only, "credit"), "item_out_of_scope")
    refused(read(scenario, penalties_only, "credit.check"), "item_out_of_scope")
    refused(read(scenario, penalties_only, "credit.penalty", OTHER_HOLDER_USCC), "subject_mismatch")
    refused(read(scenario, penalties_only, "credit.penalty", "not-a-subject"), "subject_mismatch")

    # Every read, allowed or refused, is logged in the authorization's stream.
    stream = scenario.recipient.get(
        scenario.http, f"/v1/authorizations/{penalties_only}/accesses"
    ).json()["accesses"]
    assert [(a["item"], a["outcome"]) for a in stream] == [
        ("credit.penalty", "allowed"),
        ("credit.licensing", "item_out_of_scope"),
        ("credit", "item_out_of_scope"),
        ("credit.check", "item_out_of_scope"),
        ("credit.penalty", "subject_mismatch"),
        ("credit.penalty", "subject_mismatch"),
    ]
    verify_access_chain([a["receipt"]["entry"] for a in stream])


def test_two_classes_are_read_one_at_a_time(scenario: Scenario) -> None:
    both = authorization(scenario, ["credit.licensing", "credit.penalty"])
    licensing = read(scenario, both, "credit.licensing")
    assert licensing.status_code == 200, licensing.text
    records = licensing.json()["data"]["records"]
    assert [r["decisionNumber"] for r in records] == LICENSINGS
    assert {r["kind"] for r in records} == {"licensing"}
    penalties = read(scenario, both, "credit.penalty").json()["data"]["records"]
    assert {r["kind"] for r in penalties} == {"penalty"}
    refused(read(scenario, both, "credit"), "item_out_of_scope")


def test_the_whole_credit_item_reads_every_class(scenario: Scenario) -> None:
    everything = authorization(scenario, ["credit"])
    data = read(scenario, everything, "credit").json()["data"]
    assert sorted(r["decisionNumber"] for r in data["records"]) == sorted(PENALTIES + LICENSINGS)
    assert data["checks"] == [] and data["lists"] == []
    checks = read(scenario, everything, "credit.check").json()["data"]
    assert "records" not in checks and checks["checks"] == []
