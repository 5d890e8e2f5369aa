"""The reasons' latest anchored events are kept per credit version: a repeated check reads no
credit event; a record's newer event shows once it is anchored, although its anchoring makes
no credit event; a new event moves the version."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from credit_harness import RESIDENT_ID, CreditApp, penalty_file, person_penalty, wait_for
from sqlalchemy import event
from test_credit_chain import PROCUREMENT, _black_entry

from registry.credit.proofs import kept_latest

ON = datetime.date(2023, 6, 2)


@pytest.fixture
def event_reads(chain_app: CreditApp) -> Iterator[list[str]]:
    """The statements reading credit events run on the app's database from now on."""
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM credit_events" in statement:
            statements.append(statement)

    engine = chain_app.db.engine
    event.listen(engine, "before_cursor_execute", note)
    yield statements
    event.remove(engine, "before_cursor_execute", note)


def _proof_events(app: CreditApp) -> dict[str, str]:
    answer = app.sdk.check(RESIDENT_ID, PROCUREMENT, ON)
    assert answer.decision == "restricted"
    return {record: proof["event_id"] for record, proof in answer.proofs.items() if proof}


def _records(app: CreditApp) -> dict[str, dict[str, Any]]:
    profile = app.sdk.authority_profile(RESIDENT_ID)
    return {record["current"]["kind"]: record["current"] for record in profile["records"]}


def test_latest_anchored_events_are_kept_per_version_and_a_newer_anchored_event_shows(
    chain_app: CreditApp, event_reads: list[str]
) -> None:
    app = chain_app
    if not app.db.is_sqlite:
        pytest.skip("kept only on SQLite")
    penalty = person_penalty()
    app.sdk.import_file(penalty_file([penalty]))
    app.sdk.publish_list_entry(_black_entry(str(penalty["decision_number"])))
    app.sdk.sign_pending()
    records = _records(app)
    entry_id, penalty_id = records["list_entry"]["id"], records["penalty"]["id"]
    for record_id in (entry_id, penalty_id):
        wait_for(lambda record_id=record_id: app.sdk.record_proof(record_id)["proof"])

    first = _proof_events(app)
    assert set(first) == {entry_id, penalty_id}
    assert len(kept_latest(app.db)) == 2
    event_reads.clear()
    assert _proof_events(app) == first
    assert [s for s in event_reads if "credit_events.record_id IN" in s] == []

    # A correction of the penalty: a new event (a new credit version), not signed yet. The
    # proof is still the first event's, read again at each check while the newest event of
    # the record is not anchored.
    app.sdk.import_file(penalty_file([person_penalty(content="罚款人民币叁万元")]))
    event_reads.clear()
    assert _proof_events(app) == first
    assert _proof_events(app) == first
    assert len([s for s in event_reads if "credit_events.record_id IN" in s]) == 2

    # Signed and anchored: no credit event is made, and the check shows the new event.
    app.sdk.sign_pending()

    def corrected() -> dict[str, str] | None:
        found = _proof_events(app)
        return found if found[penalty_id] != first[penalty_id] else None

    second = wait_for(corrected)
    assert second[entry_id] == first[entry_id]
    assert app.sdk.record_proof(penalty_id)["proof"]["event_id"] == second[penalty_id]
    event_reads.clear()
    assert _proof_events(app) == second
    assert [s for s in event_reads if "credit_events.record_id IN" in s] == []
