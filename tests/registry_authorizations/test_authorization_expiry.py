"""Expiry as an event, on a fixed clock: an authorization whose window ends (at the exact
second) or whose every use was made gets one anchored ``expire`` event, recorded by the
expiry worker; never before, never twice, not even with two registry processes racing for
it on one database (a second engine in this process, and a second process started for the
test); a revoked or never-granted authorization never expires; the subject's tracker (API
and the citizen's page) shows the expiry.

The module holds the expiry lease itself, so the app's own worker waits and every expiry
here is recorded by the calls the tests make (the lease test shows that it waits)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_harness import CLIENT_USCC, TrustChain, registry_environment, registry_settings
from sharing_harness import (
    CITIZEN_ID,
    RECIPIENT_USCC,
    Scenario,
    issue,
    module_database,
    scenario_on,
)
from sqlalchemy import Engine, select

from chain.commit import ValidatorSet
from registry.authorizations.expiry import (
    due_expiries,
    expire_due,
    expiry_lease,
    record_expiry,
    run_expiry,
)
from registry.authorizations.models import AuthorizationEventRow
from registry.authorizations.service import Sharing
from registry.chain_gateway import ChainGateway
from registry.db import Database, create_registry_engine
from registry.notarization import VerifyCaches
from registry.settings import RegistrySettings
from sdk.bundle import ProofBundle, verify_bundle
from sdk.data_receipts import event_hash

ANCHOR_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def settings(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistrySettings]:
    with module_database() as database_url:
        yield registry_settings(trust_chain, tmp_path_factory.mktemp("expiry"), database_url)


@pytest.fixture(scope="module")
def held_lease(settings: RegistrySettings) -> Iterator[Engine]:
    """The expiry lease, taken before the app starts (the app's worker then waits)."""
    engine = create_registry_engine(settings)
    lease = expiry_lease(engine)
    assert lease.try_acquire()
    try:
        yield engine
    finally:
        lease.release()
        engine.dispose()


@pytest.fixture(scope="module")
def scenario(settings: RegistrySettings, held_lease: Engine) -> Iterator[Scenario]:
    yield from scenario_on(settings)


@pytest.fixture
def clock(scenario: Scenario) -> Iterator[list[float]]:
    """The gateway's clock, fixed at the value the test sets (``clock[0] = ...``)."""
    now = [time.time()]
    sharing = scenario.gateway.sharing
    sharing.clock = lambda: now[0]
    try:
        yield now
    finally:
        sharing.clock = time.time


def expire_events(scenario: Scenario, authorization_id: str) -> list[AuthorizationEventRow]:
    with scenario.db.read_session() as session:
        rows = session.scalars(
            select(AuthorizationEventRow).where(
                AuthorizationEventRow.authorization_id == authorization_id,
                AuthorizationEventRow.kind == "expire",
            )
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def validators(scenario: Scenario) -> ValidatorSet:
    return scenario.http.app.state.registry.chain.validator_set()  # type: ignore[attr-defined,no-any-return]


def test_another_process_cannot_take_the_expiry_lease_while_it_is_held(
    held_lease: Engine, scenario: Scenario
) -> None:
    other = expiry_lease(held_lease)
    try:
        assert not other.try_acquire()
    finally:
        other.release()


def test_the_window_end_is_recorded_once_at_the_exact_second(
    scenario: Scenario, clock: list[float]
) -> None:
    end = int(clock[0]) + 1_000
    granted = scenario.granted(valid_until=end)
    sharing = scenario.gateway.sharing
    clock[0] = end - 0.001
    assert granted["id"] not in due_expiries(sharing)
    assert not record_expiry(sharing, granted["id"])
    clock[0] = float(end)
    assert granted["id"] in due_expiries(sharing)
    assert expire_due(sharing) >= 1
    assert not record_expiry(sharing, granted["id"])
    assert expire_due(sharing) == 0
    (event,) = expire_events(scenario, granted["id"])
    assert event.at == end
    shown = scenario.enterprise.get(scenario.http, f"/v1/authorizations/{granted['id']}").json()
    assert shown["status"] == "expired"
    assert [e["kind"] for e in shown["events"]] == ["grant", "expire"]
    assert shown["events"][1]["event"]["actor"] == "registry"
    assert shown["events"][1]["event"]["at"] == end


def test_the_expiry_is_anchored_like_a_grant(scenario: Scenario, clock: list[float]) -> None:
    end = int(clock[0]) + 1_000
    granted = scenario.granted(valid_until=end)
    clock[0] = float(end)
    assert record_expiry(scenario.gateway.sharing, granted["id"])
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        shown = scenario.enterprise.get(scenario.http, f"/v1/authorizations/{granted['id']}")
        events = shown.json()["events"]
        if all(e["bundle"] is not None for e in events):
            break
        assert time.monotonic() < deadline, "the expiry was not anchored in time"
        time.sleep(0.2)
    expire = events[1]
    verdict = verify_bundle(
        ProofBundle.from_json(expire["bundle"]),
        validators(scenario),
        chain_id=scenario.chain_id,
        expected_digest=event_hash(expire["event"]),
    )
    assert verdict.valid


def test_the_last_use_is_an_expiry(scenario: Scenario, clock: list[float]) -> None:
    granted = scenario.granted(max_uses=1)
    sharing = scenario.gateway.sharing
    assert granted["id"] not in due_expiries(sharing)
    assert scenario.read(granted["id"]).status_code == 200
    assert granted["id"] in due_expiries(sharing)
    assert record_expiry(sharing, granted["id"])
    assert len(expire_events(scenario, granted["id"])) == 1
    refused = scenario.read(granted["id"])
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "no_uses_left"
    assert not record_expiry(sharing, granted["id"])


def test_revoked_or_never_granted_authorizations_do_not_expire(
    scenario: Scenario, clock: list[float]
) -> None:
    end = int(clock[0]) + 1_000
    revoked = scenario.granted(valid_until=end)
    assert (
        scenario.enterprise.post(
            scenario.http, f"/v1/authorizations/{revoked['id']}/revoke"
        ).status_code
        == 200
    )
    asked = scenario.ask(valid_until=end)
    clock[0] = float(end + 60)
    expire_due(scenario.gateway.sharing)
    assert expire_events(scenario, revoked["id"]) == []
    assert expire_events(scenario, asked["id"]) == []


def test_two_processes_on_one_database_record_each_expiry_once(
    scenario: Scenario, settings: RegistrySettings, clock: list[float]
) -> None:
    end = int(clock[0]) + 1_000
    ids = [scenario.granted(valid_until=end)["id"] for _ in range(6)]
    clock[0] = float(end)
    # A second process: its own engine and chain gateway, the same database.
    other_db = Database.open(settings, run_migrations=False)
    other_gateway = ChainGateway(settings, other_db)
    try:
        other = Sharing(other_db, other_gateway, VerifyCaches(), clock=lambda: float(end))
        ours = scenario.gateway.sharing
        start = threading.Barrier(2)
        recorded: list[list[bool]] = [[], []]

        def race(index: int, sharing: Sharing) -> None:
            start.wait()
            recorded[index].extend(record_expiry(sharing, found) for found in ids)

        threads = [
            threading.Thread(target=race, args=(0, ours)),
            threading.Thread(target=race, args=(1, other)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        claimed = [a or b for a, b in zip(recorded[0], recorded[1], strict=True)]
        both = [a and b for a, b in zip(recorded[0], recorded[1], strict=True)]
        assert all(claimed) and not any(both)
        for found in ids:
            assert len(expire_events(scenario, found)) == 1
        assert expire_due(other) == 0
    finally:
        other_gateway.close()
        other_db.close()


def test_a_second_registry_process_records_none_twice(
    scenario: Scenario, settings: RegistrySettings, clock: list[float]
) -> None:
    end = int(clock[0]) + 1_000
    ids = [scenario.granted(valid_until=end)["id"] for _ in range(8)]
    clock[0] = float(end)
    racer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("expiry_racer.py")), str(end), *ids],
        env=registry_environment(settings),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert racer.stdin is not None and racer.stdout is not None
        assert racer.stdout.readline().strip() == "ready"
        racer.stdin.write("go\n")
        racer.stdin.flush()
        ours = [record_expiry(scenario.gateway.sharing, found) for found in reversed(ids)]
        theirs = json.loads(racer.stdout.readline())
        assert racer.wait(60) == 0
    finally:
        if racer.poll() is None:
            racer.kill()
            racer.wait()
    ours.reverse()
    assert [a != b for a, b in zip(ours, theirs, strict=True)] == [True] * len(ids)
    for found in ids:
        assert len(expire_events(scenario, found)) == 1


def test_the_worker_records_expiries_round_after_round(
    scenario: Scenario, clock: list[float]
) -> None:
    end = int(clock[0]) + 1_000
    granted = scenario.granted(valid_until=end)
    sharing = scenario.gateway.sharing

    async def drive() -> None:
        worker = asyncio.create_task(run_expiry(sharing, interval=0.05))
        try:
            await asyncio.sleep(0.3)
            assert expire_events(scenario, granted["id"]) == []
            clock[0] = float(end)
            deadline = time.monotonic() + 30
            while not expire_events(scenario, granted["id"]):
                assert time.monotonic() < deadline, "the worker recorded nothing"
                await asyncio.sleep(0.05)
        finally:
            worker.cancel()

    asyncio.run(drive())
    assert len(expire_events(scenario, granted["id"])) == 1


def test_the_citizens_tracker_shows_the_expiry(scenario: Scenario, clock: list[float]) -> None:
    issue(scenario.http, scenario.controller, CITIZEN_ID, "resident_id")
    start = int(clock[0])
    end = start + 1_000
    body: dict[str, Any] = {
        "subject_kind": "citizen",
        "subject_id": CITIZEN_ID,
        "controller": CLIENT_USCC,
        "recipient": RECIPIENT_USCC,
        "items": ["license.metadata"],
        "purpose": "supervision.credit-check",
        "legal_basis": "statutory_duty",
        "basis_citation": "《优化营商环境条例》第三十七条",
        "valid_from": start - 60,
        "valid_until": end,
    }
    granted = scenario.recipient.post(scenario.http, "/v1/authorizations", body).json()
    assert granted["status"] == "granted"
    session = scenario.identity.post(
        scenario.http, "/v1/tracker/sessions", {"subject_id": CITIZEN_ID}
    ).json()
    before = scenario.http.get(session["path"]).text
    assert f'data-authorization="{granted["id"]}"' in before
    assert "data-expired=" not in before
    clock[0] = float(end)
    assert record_expiry(scenario.gateway.sharing, granted["id"])
    # The session was opened before the clock moved on: open a new one at the new time.
    session = scenario.identity.post(
        scenario.http, "/v1/tracker/sessions", {"subject_id": CITIZEN_ID}
    ).json()
    after = scenario.http.get(session["path"]).text
    assert f'data-expired="{end}"' in after
    assert "已过期" in after
