"""The access writer builds a group (decisions, entries, chain links, signature) on a read
snapshot before it takes the write turn, and inside the turn only checks that what it built
on is unchanged: a revocation, another writer's uses and entries, or a nonce stored between
the snapshot and the turn make it build the group again on the transaction's reads, so
every rule stays exact and every stream one gap-free hash chain."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from registry_harness import TrustChain, registry_settings
from sharing_harness import PURPOSE, RECIPIENT_USCC, Scenario, module_database, scenario_on
from sqlalchemy import Connection, select

from authorizations.access_log import RequestFacts
from registry.authorizations.access import AccessWriter, Attempt, Decision
from registry.authorizations.gateway import resource_hash
from registry.authorizations.models import AccessLogRow, AuthorizationRow
from registry.db import READ_ONLY_OPTION
from registry.errors import AuthenticationFailed
from registry.intake import NonceClaim
from sdk.data_receipts import verify_access_chain


@pytest.fixture(scope="module")
def scenario(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("snap"), database_url)
        yield from scenario_on(settings)


def _attempts(
    scenario: Scenario, authorization_id: str, count: int, nonce: NonceClaim | None = None
) -> list[Attempt]:
    gateway = scenario.gateway
    provider = gateway.provider_for("license.metadata")
    assert provider is not None
    commitment = gateway.resource_commitment(provider, authorization_id, scenario.license_id)
    assert commitment is not None
    return [
        Attempt(
            authorization_id=authorization_id,
            caller_client=scenario.recipient.client_id,
            caller_uscc=RECIPIENT_USCC,
            subject_commitment=commitment,
            item="license.metadata",
            purpose=PURPOSE,
            resource_hash=resource_hash(scenario.license_id),
            request=RequestFacts(
                "POST",
                "/v1/data/read",
                scenario.recipient.client_id,
                str(int(time.time())),
                secrets.token_hex(8) if nonce is None else nonce.nonce,
                "00" * 32,
                "c2ln",
            ),
            nonce=nonce,
        )
        for _ in range(count)
    ]


def _after_snapshot(
    monkeypatch: pytest.MonkeyPatch, writer: AccessWriter, meanwhile: Callable[[], None]
) -> list[Connection]:
    """Run ``meanwhile`` once, right after ``writer`` built its first group on its
    snapshot (before the write turn is taken); returns the connections each of its groups
    was built on (other writers build as they always do)."""
    original = AccessWriter._build
    built_on: list[Connection] = []

    def build(self: AccessWriter, connection: Connection, *args: Any) -> Any:
        group = original(self, connection, *args)
        if self is not writer:
            return group
        built_on.append(connection)
        if len(built_on) == 1:
            meanwhile()
        return group

    monkeypatch.setattr(AccessWriter, "_build", build)
    return built_on


def _stream(scenario: Scenario, authorization_id: str) -> list[Any]:
    with scenario.db.read_session() as session:
        return list(
            session.execute(
                select(AccessLogRow.position, AccessLogRow.outcome, AccessLogRow.entry_json)
                .where(AccessLogRow.stream == authorization_id)
                .order_by(AccessLogRow.position)
            )
        )


def _uses(scenario: Scenario, authorization_id: str) -> int:
    with scenario.db.read_session() as session:
        row = session.get(AuthorizationRow, authorization_id)
        assert row is not None
        return int(row.uses_made)


def _outcomes(outcomes: list[Any]) -> list[str]:
    assert all(isinstance(outcome, Decision) for outcome in outcomes)
    return [outcome.outcome for outcome in outcomes]


def test_a_quiet_group_is_built_once_on_a_read_snapshot(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted = scenario.granted()
    built_on = _after_snapshot(monkeypatch, scenario.gateway.writer, lambda: None)
    outcomes = scenario.gateway.writer.write(_attempts(scenario, granted["id"], 3))
    assert _outcomes(outcomes) == ["allowed"] * 3
    assert len(built_on) == 1
    assert built_on[0].get_execution_options().get(READ_ONLY_OPTION) is True
    assert [row.position for row in _stream(scenario, granted["id"])] == [0, 1, 2]
    assert _uses(scenario, granted["id"]) == 3


def test_a_revocation_between_the_snapshot_and_the_turn_refuses_the_group(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted = scenario.granted()

    def revoke() -> None:
        answer = scenario.enterprise.post(
            scenario.http, f"/v1/authorizations/{granted['id']}/revoke"
        )
        assert answer.status_code == 200, answer.text

    built_on = _after_snapshot(monkeypatch, scenario.gateway.writer, revoke)
    outcomes = scenario.gateway.writer.write(_attempts(scenario, granted["id"], 2))
    assert len(built_on) == 2, "the group was not built again on the turn's reads"
    assert _outcomes(outcomes) == ["authorization_revoked"] * 2
    stream = _stream(scenario, granted["id"])
    assert [(row.position, row.outcome) for row in stream] == [
        (0, "authorization_revoked"),
        (1, "authorization_revoked"),
    ]
    assert _uses(scenario, granted["id"]) == 0


def test_a_writer_racing_the_snapshot_never_allows_a_use_too_many(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted = scenario.granted(max_uses=3)
    other = AccessWriter(scenario.gateway.sharing)
    raced: list[list[str]] = []

    def race() -> None:
        raced.append(_outcomes(other.write(_attempts(scenario, granted["id"], 2))))

    built_on = _after_snapshot(monkeypatch, scenario.gateway.writer, race)
    outcomes = scenario.gateway.writer.write(_attempts(scenario, granted["id"], 2))
    assert raced == [["allowed", "allowed"]]
    assert len(built_on) == 2
    assert _outcomes(outcomes) == ["allowed", "no_uses_left"]
    stream = _stream(scenario, granted["id"])
    assert [row.position for row in stream] == [0, 1, 2, 3]
    assert [row.outcome for row in stream].count("allowed") == 3
    verify_access_chain([json.loads(row.entry_json) for row in stream])
    assert _uses(scenario, granted["id"]) == 3


def test_a_nonce_stored_between_the_snapshot_and_the_turn_is_a_replay(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted = scenario.granted()
    claim = NonceClaim(
        scenario.recipient.client_id,
        f"snap-{time.time_ns()}",
        datetime.now(UTC) + timedelta(minutes=5),
    )
    other = AccessWriter(scenario.gateway.sharing)
    raced: list[list[Any]] = []

    def race() -> None:
        raced.append(other.write(_attempts(scenario, granted["id"], 1, claim)))

    _after_snapshot(monkeypatch, scenario.gateway.writer, race)
    (outcome,) = scenario.gateway.writer.write(_attempts(scenario, granted["id"], 1, claim))
    assert _outcomes(raced[0]) == ["allowed"]
    assert isinstance(outcome, AuthenticationFailed) and outcome.code == "replayed_nonce"
    assert [row.position for row in _stream(scenario, granted["id"])] == [0]
    assert _uses(scenario, granted["id"]) == 1
