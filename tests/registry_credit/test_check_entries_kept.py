"""A subject's list entries kept for ``check`` per credit version
(registry.credit.check_entries): the answer after every change is the answer read afresh —
a record an entry rests on stored later, an exit, a withdrawal, made through this process
or another — and while no credit event is made, the entries are read once (SQLite; on
PostgreSQL nothing is kept)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from credit_harness import CreditApp, black_list_entry, penalties, penalty_file

from registry.credit.check_entries import kept_entries, subject_entries
from registry.credit.checks import CheckAsked, check_subject
from registry.credit.keys import CreditKeys
from registry.db import Database
from registry.models import Client
from registry.settings import RegistrySettings

ENTERPRISE = "91350100M000100Y43"
ACTIVITY = "government_procurement"
ON = datetime.date(2023, 7, 1)


def _other_process(app: CreditApp) -> tuple[Database, CreditKeys, Client]:
    """A second database object on the registry's database, as another API process has:
    its own kept entries, the same rows."""
    state = app.http.app.state  # type: ignore[attr-defined]
    settings: RegistrySettings = state.registry.settings
    db = Database.open(settings, run_migrations=False)
    with db.read_session() as session:
        client = session.get(Client, app.client_id)
        assert client is not None
        session.expunge(client)
    return db, state.credit_keys, client


def _check(db: Database, keys: CreditKeys, client: Client) -> tuple[str, list[tuple[str, ...]]]:
    now = datetime.datetime(2023, 7, 1, 12, tzinfo=datetime.UTC)
    answer, _row = check_subject(db, keys, CheckAsked(client, ENTERPRISE, ACTIVITY, ON, now))
    return answer.decision, sorted(reason.basis_record_ids for reason in answer.reasons)


def test_each_credit_event_is_seen_by_the_next_check_in_every_process(app: CreditApp) -> None:
    other, keys, client = _other_process(app)
    try:
        app.sdk.publish_list_entry(black_list_entry(1))
        # Restricted, the penalty it rests on not on file yet.
        assert _check(other, keys, client) == ("restricted", [()])
        assert app.sdk.check(ENTERPRISE, ACTIVITY, ON).decision == "restricted"

        app.sdk.import_file(penalty_file(penalties(1)))
        decision, basis = _check(other, keys, client)
        assert decision == "restricted" and len(basis) == 1 and len(basis[0]) == 1
        (reason,) = app.sdk.check(ENTERPRISE, ACTIVITY, ON).reasons
        assert [reason["basis_record_ids"]] == [list(ids) for ids in basis]

        app.sdk.publish_list_entry(black_list_entry(2))
        assert _check(other, keys, client)[1] == basis * 2
        entries = [
            r for r in app.sdk.public_profile(ENTERPRISE)["records"] if r["kind"] == "list_entry"
        ]
        first, second = sorted(entries, key=lambda r: str(r["decision_number"]))
        app.sdk.exit_list(first["id"], ON, "信用修复")
        assert _check(other, keys, client) == ("restricted", basis)
        assert len(app.sdk.check(ENTERPRISE, ACTIVITY, ON).reasons) == 1

        app.sdk.withdraw(second["id"], "复议撤销")
        assert _check(other, keys, client) == ("allowed", [])
        assert app.sdk.check(ENTERPRISE, ACTIVITY, ON).decision == "allowed"
    finally:
        other.close()


def test_entries_are_read_once_while_no_credit_event_is_made(app: CreditApp) -> None:
    other, keys, client = _other_process(app)
    try:
        app.sdk.publish_list_entry(black_list_entry(1))
        subject_key = keys.subject_key(ENTERPRISE)
        first = subject_entries(other, subject_key)
        # Checks are logged (in this process and the other) without a credit event.
        assert app.sdk.check(ENTERPRISE, ACTIVITY, ON).decision == "restricted"
        assert _check(other, keys, client)[0] == "restricted"
        again = subject_entries(other, subject_key)
        if other.is_sqlite:
            assert again is first
            assert len(kept_entries(other)) == 1
        else:
            assert again == first and len(kept_entries(other)) == 0
        app.sdk.import_file(penalty_file(penalties(1)))
        after = subject_entries(other, subject_key)
        assert after is not first and len(after.basis_ids) == 1
    finally:
        other.close()


def test_a_kept_subject_is_answered_after_the_version_alone(
    app: CreditApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not app.db.is_sqlite:
        pytest.skip("entries are kept on SQLite only")
    other, keys, _client = _other_process(app)
    try:
        app.sdk.publish_list_entry(black_list_entry(1))
        subject_key = keys.subject_key(ENTERPRISE)
        first = subject_entries(other, subject_key)
        transactions: list[str] = []
        read_connection = other.read_connection

        def counted() -> Any:
            transactions.append("read")
            return read_connection()

        monkeypatch.setattr(other, "read_connection", counted)
        assert subject_entries(other, subject_key) is first
        assert transactions == [], "a kept subject opened a read transaction"
        # After a credit event, read again in one read transaction, and kept again.
        app.sdk.import_file(penalty_file(penalties(1)))
        after = subject_entries(other, subject_key)
        assert transactions == ["read"] and len(after.basis_ids) == 1
        assert subject_entries(other, subject_key) is after and transactions == ["read"]
    finally:
        other.close()
