"""A credit check in the checked subject's tracker: when department B checks an enterprise
or a citizen, the subject sees who checked, when, for which activity and with which
answer, with a receipt whose proof bundle verifies offline (the same verifier as for
accesses); another subject sees nothing of it, and a changed entry no longer verifies."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterator

import pytest
from registry_harness import TrustChain, registry_settings
from sharing_harness import (
    CITIZEN_ID,
    ENTERPRISE_USCC,
    OTHER_HOLDER_USCC,
    Party,
    Scenario,
    add_party,
    module_database,
    scenario_on,
)

from sdk.credit_client import CreditClient
from sdk.data_client import CheckRecord, DataClient
from sdk.data_receipts import CHECK_KIND, ReceiptInvalid, verify_receipt

CHECKER_USCC = "11350102MB0002001D"
"""Department B: an approving department that checks credit."""
ANCHOR_TIMEOUT_S = 60.0


@dataclasses.dataclass
class Checks:
    scenario: Scenario
    checker: Party
    other_subject: Party


@pytest.fixture(scope="module")
def checks(trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checks]:
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("checks"), database_url)
        for scenario in scenario_on(settings):
            checker = add_party(scenario.db, CHECKER_USCC, ["verify"], name="某区发展和改革局")
            other = add_party(scenario.db, OTHER_HOLDER_USCC, ["subject"])
            yield Checks(scenario, checker, other)


def data_client(scenario: Scenario, party: Party) -> DataClient:
    return DataClient(
        "http://testserver", party.client_id, party.key, http_client=scenario.http, retries=0
    )


def check(checks: Checks, subject: str, activity: str) -> str:
    credit = CreditClient(
        "http://testserver",
        checks.checker.client_id,
        checks.checker.key,
        http_client=checks.scenario.http,
    )
    return credit.check(subject, activity, datetime.date(2026, 12, 1)).decision


def anchored(fetch: object, activity: str) -> CheckRecord:
    """The check for ``activity`` once its proof bundle is there."""
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        found = [c for c in fetch() if c.activity == activity]  # type: ignore[operator]
        if found and found[0].receipt.bundle is not None:
            return found[0]
        assert time.monotonic() < deadline, "the check was not anchored in time"
        time.sleep(0.2)


def test_a_check_of_an_enterprise_is_in_its_tracker_with_a_proof(checks: Checks) -> None:
    scenario = checks.scenario
    decision = check(checks, ENTERPRISE_USCC, "government_procurement")
    enterprise = data_client(scenario, scenario.enterprise)
    shown = anchored(enterprise.tracker_checks, "government_procurement")
    assert (shown.checker, shown.checker_name, shown.decision, shown.on_date) == (
        CHECKER_USCC,
        "某区发展和改革局",
        decision,
        "2026-12-01",
    )
    assert abs(shown.at - time.time()) < 600
    assert shown.receipt.kind == CHECK_KIND
    validators = scenario.http.app.state.registry.chain.validator_set()  # type: ignore[attr-defined]
    verdict = verify_receipt(
        shown.receipt,
        validators,
        chain_id=scenario.chain_id,
        registry_key=enterprise.registry_key(),
    )
    assert verdict.valid
    changed = dataclasses.replace(
        shown.receipt, entry={**shown.receipt.entry, "decision": "favoured"}
    )
    with pytest.raises(ReceiptInvalid):
        verify_receipt(
            changed,
            validators,
            chain_id=scenario.chain_id,
            registry_key=enterprise.registry_key(),
        )
    assert data_client(scenario, checks.other_subject).tracker_checks() == []


def test_a_check_of_a_citizen_shows_on_the_page_and_verifies(checks: Checks) -> None:
    scenario = checks.scenario
    check(checks, CITIZEN_ID, "public_post_hiring")
    identity = data_client(scenario, scenario.identity)
    session = identity.open_tracker_session(CITIZEN_ID)

    def session_checks() -> list[CheckRecord]:
        answer = scenario.http.get("/tracker/checks", params={"s": session["session"]})
        assert answer.status_code == 200, answer.text
        return [CheckRecord.from_json(c) for c in answer.json()["checks"]]

    shown = anchored(session_checks, "public_post_hiring")
    assert shown.checker == CHECKER_USCC
    verify_receipt(
        shown.receipt,
        scenario.http.app.state.registry.chain.validator_set(),  # type: ignore[attr-defined]
        chain_id=scenario.chain_id,
        registry_key=identity.registry_key(),
    )
    page = scenario.http.get(str(session["path"]))
    assert page.status_code == 200
    assert f'data-check="{shown.record_id}"' in page.text and "public_post_hiring" in page.text
    assert "某区发展和改革局" in page.text and "government_procurement" not in page.text
    enterprise = data_client(scenario, scenario.enterprise)
    assert "public_post_hiring" not in {c.activity for c in enterprise.tracker_checks()}
    refused = scenario.http.get("/tracker/checks", params={"s": "lx-tracker-v1.forged"})
    assert refused.status_code == 403
