"""The gateway's fast path keeps every rule exact: with its caches warm (the subject's
salt, the holder opened, the parsed terms), a revocation takes effect on the very next
read, also when another registry process on the same database revoked it; a read's nonce
is spent in the access writer's own transaction (no second writer in the way), and a
nonce repeated within one group is refused alone, with nothing logged for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import TrustChain, registry_settings, signed
from sharing_harness import PURPOSE, Scenario, module_database, scenario_on
from sqlalchemy import func, select

from authorizations.access_log import RequestFacts
from registry.app import create_app
from registry.authorizations.access import Attempt, Decision
from registry.authorizations.gateway import resource_hash
from registry.authorizations.models import AccessLogRow
from registry.authorizations.providers import LicenseProvider
from registry.errors import AuthenticationFailed
from registry.intake import NonceClaim
from registry.models import Nonce


@pytest.fixture(scope="module")
def two(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Scenario, TestClient]]:
    """One scenario, and a second registry app (its own gateway, caches and writers) on
    the same database, as a second API process has."""
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("caches"), database_url)
        for scenario in scenario_on(settings):
            with TestClient(create_app(settings)) as second:
                yield scenario, second


def _read(scenario: Scenario, http: TestClient, authorization_id: str) -> Any:
    return scenario.recipient.post(
        http,
        "/v1/data/read",
        {
            "authorization_id": authorization_id,
            "item": "license.metadata",
            "purpose": PURPOSE,
            "resource": scenario.license_id,
        },
    )


def _refused(response: Any, rule: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == rule


def _log_count(scenario: Scenario) -> int:
    with scenario.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(AccessLogRow)) or 0)


def test_revocation_takes_effect_on_the_next_read_with_the_caches_warm(
    two: tuple[Scenario, TestClient],
) -> None:
    scenario, _ = two
    granted = scenario.granted()
    for _ in range(3):
        assert _read(scenario, scenario.http, granted["id"]).status_code == 200
    gateway = scenario.gateway
    license_provider = gateway.providers["license"]
    assert isinstance(license_provider, LicenseProvider)
    assert gateway._subjects.get(granted["id"]) is not None
    assert len(license_provider._holders) >= 1
    assert any(key.startswith(granted["id"]) for key in gateway.writer._terms)
    revoked = scenario.enterprise.post(scenario.http, f"/v1/authorizations/{granted['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    _refused(_read(scenario, scenario.http, granted["id"]), "authorization_revoked")


def test_a_revocation_by_another_process_is_seen_on_the_next_read(
    two: tuple[Scenario, TestClient],
) -> None:
    scenario, second = two
    granted = scenario.granted()
    for http in (scenario.http, second, scenario.http, second):
        assert _read(scenario, http, granted["id"]).status_code == 200
    revoked = scenario.enterprise.post(second, f"/v1/authorizations/{granted['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    _refused(_read(scenario, scenario.http, granted["id"]), "authorization_revoked")
    _refused(_read(scenario, second, granted["id"]), "authorization_revoked")


def test_uses_are_counted_across_both_processes(two: tuple[Scenario, TestClient]) -> None:
    scenario, second = two
    granted = scenario.granted(max_uses=3)
    assert _read(scenario, scenario.http, granted["id"]).status_code == 200
    assert _read(scenario, second, granted["id"]).status_code == 200
    assert _read(scenario, scenario.http, granted["id"]).status_code == 200
    _refused(_read(scenario, second, granted["id"]), "no_uses_left")


def test_a_read_spends_its_nonce_with_its_log_entry(two: tuple[Scenario, TestClient]) -> None:
    """The nonce writer of the intake is not needed by a gated read: its nonce is stored
    in the access writer's transaction, and a replay is refused all the same."""
    scenario, _ = two
    granted = scenario.granted()
    payload = {
        "authorization_id": granted["id"],
        "item": "license.metadata",
        "purpose": PURPOSE,
        "resource": scenario.license_id,
    }
    recipient = scenario.recipient
    body, headers = signed(recipient.key, recipient.client_id, "POST", "/v1/data/read", payload)
    intake = scenario.http.app.state.registry.intake  # type: ignore[attr-defined]
    intake.stop()
    try:
        assert scenario.http.post("/v1/data/read", content=body, headers=headers).status_code == 200
        with scenario.db.read_session() as session:
            stored = session.scalar(
                select(func.count())
                .select_from(Nonce)
                .where(
                    Nonce.client_id == recipient.client_id,
                    Nonce.nonce == headers["X-Lianxin-Nonce"],
                )
            )
        assert stored == 1
        before = _log_count(scenario)
        replay = scenario.http.post("/v1/data/read", content=body, headers=headers)
        assert replay.status_code == 401
        assert replay.json()["error"]["code"] == "replayed_nonce"
        assert _log_count(scenario) == before
    finally:
        intake.start()


def test_a_nonce_repeated_within_one_group_is_refused_alone(
    two: tuple[Scenario, TestClient],
) -> None:
    scenario, _ = two
    granted = scenario.granted()
    recipient = scenario.recipient
    claim = NonceClaim(
        recipient.client_id, f"group-{time.time_ns()}", datetime.now(UTC) + timedelta(minutes=5)
    )
    facts = RequestFacts(
        method="POST",
        path="/v1/data/read",
        client_id=recipient.client_id,
        timestamp=str(int(time.time())),
        nonce=claim.nonce,
        body_hash="00" * 32,
        signature="",
    )
    attempt = Attempt(
        authorization_id=granted["id"],
        caller_client=recipient.client_id,
        caller_uscc=recipient.uscc,
        subject_commitment=None,
        item="license.metadata",
        purpose=PURPOSE,
        resource_hash=resource_hash(scenario.license_id),
        request=facts,
        nonce=claim,
    )
    before = _log_count(scenario)
    first, again = scenario.gateway.writer.write([attempt, attempt])
    assert isinstance(first, Decision) and first.outcome == "subject_mismatch"
    assert isinstance(again, AuthenticationFailed) and again.code == "replayed_nonce"
    assert _log_count(scenario) == before + 1
    (later,) = scenario.gateway.writer.write([attempt])
    assert isinstance(later, AuthenticationFailed)
    assert _log_count(scenario) == before + 1
