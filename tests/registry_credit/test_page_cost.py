"""What a public credit page reads when it is not kept (registry.credit.public_reads): the records
on display through statements built once, on a connection, without the authority's fields
and field hashes (kilobytes of JSON a row, never shown on a public page); and the answers
are those of the full reading of the subject's records (authority_profile, through the ORM)
at every instant around the records' windows."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from credit_harness import CreditApp, black_list_entry, penalties, penalty_file, person_penalty
from credit_tables import penalty_row
from sqlalchemy import event

from registry.credit.authority_profile import authority_profile
from registry.credit.credit_version import credit_version, read_credit_version
from registry.credit.public_reads import (
    profile_changes_after,
    public_profile,
    search_changes_after,
    search_public,
    search_public_until,
)
from registry.db import Database
from registry.settings import RegistrySettings
from sdk.identifiers import compute_uscc_check

ENTERPRISE = "91350100M000100Y43"
ENTERPRISE_NAME = "福州某某贸易有限公司"
OTHER = "91350100M00020000" + compute_uscc_check("91350100M00020000")
"""Another enterprise the same search finds."""
OTHER_NAME = "福州某某贸易二分公司"


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``db`` inside the block."""
    seen: list[str] = []

    def executing(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", executing)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", executing)


def _publish(app: CreditApp) -> None:
    rows = [
        *penalties(2),
        penalty_row(decision_number="榕市监罚〔2021〕7号", decision_date="2021-03-01"),
        person_penalty(),
    ]
    app.sdk.import_file(penalty_file(rows))
    app.sdk.publish_list_entry(black_list_entry(1))


def test_a_page_read_loads_none_of_the_authority_fields(app: CreditApp) -> None:
    _publish(app)
    with _statements(app.db) as seen:
        search = app.http.get("/credit/", params={"q": "福州某某"})
        subject = app.http.get(f"/credit/subjects/{ENTERPRISE}")
    assert search.status_code == 200 and subject.status_code == 200
    assert ENTERPRISE_NAME in search.text
    assert "榕市监罚〔2023〕1号" in subject.text and "严重违法失信名单" in subject.text
    reads = [statement for statement in seen if "credit_records" in statement]
    assert len(reads) >= 3  # search with its next change; profile, its next change
    # The search's hits and their next change in one statement: the name index read once.
    assert len([statement for statement in reads if " LIKE " in statement]) == 1
    assert not [s for s in reads if "authority_json" in s or "field_hashes" in s]


def _instants(app: CreditApp, *subjects: str) -> list[datetime.datetime]:
    """Instants around every window start and end of the records on file of ``subjects``
    (default: the enterprise)."""
    found = [
        record
        for subject in subjects or (ENTERPRISE,)
        for record in authority_profile(app.db, subject, at=app.clock.now()).records
    ]
    edges = {app.clock.now()}
    for record in found:
        edges.add(record.current.window_start)
        if record.current.display_end is not None:
            edges.add(record.current.display_end)
    step = datetime.timedelta(microseconds=1)
    return sorted({edge + delta for edge in edges for delta in (-step, 0 * step, step)})


def test_the_public_reads_answer_as_the_full_reading_does(app: CreditApp) -> None:
    _publish(app)
    instants = _instants(app)
    assert len(instants) >= 9
    for at in instants:
        full = authority_profile(app.db, ENTERPRISE, at=at)
        shown = [record.current for record in full.records if record.displayed]
        profile = public_profile(app.db, ENTERPRISE, at)
        assert list(profile.records) == shown, at
        assert {entry.record_id for entry in profile.lists} == {
            record.id for record in shown if record.kind == "list_entry"
        }
        if shown:
            assert (profile.subject_code, profile.subject_name) == (ENTERPRISE, ENTERPRISE_NAME)
        starts = [r.current.window_start for r in full.records]
        ends = [r.current.display_end for r in full.records if r.current.display_end]
        later = [moment for moment in (*starts, *ends) if moment > at]
        expected_change = min(later, default=None)
        assert profile_changes_after(app.db, f" {ENTERPRISE.lower()} ", at) == expected_change
        assert search_changes_after(app.db, "某某贸易", at) == expected_change
        hits = search_public(app.db, "某某贸易", at)
        if shown:
            assert [(h.subject_code, h.subject_name, h.records_on_display) for h in hits] == [
                (ENTERPRISE, ENTERPRISE_NAME, len(shown))
            ]
        else:
            assert hits == []
        assert search_public(app.db, ENTERPRISE.lower(), at) == hits
    # A natural person is found by neither name nor number; "%" and "_" match themselves.
    assert search_public(app.db, "张三", instants[len(instants) // 2]) == []
    assert search_public(app.db, "某%", instants[len(instants) // 2]) == []
    assert search_public(app.db, "某_", instants[len(instants) // 2]) == []


def test_a_search_holds_until_any_record_it_finds_changes_beyond_its_limit(
    app: CreditApp,
) -> None:
    _publish(app)
    other_row = penalty_row(
        name=OTHER_NAME,
        code_1=OTHER,
        decision_number="榕市监罚〔2022〕3号",
        decision_date="2022-02-01",
    )
    app.sdk.import_file(penalty_file([other_row]))
    beyond_the_limit = 0
    for at in _instants(app, ENTERPRISE, OTHER):
        records = {
            subject: [r.current for r in authority_profile(app.db, subject, at=at).records]
            for subject in (ENTERPRISE, OTHER)
        }
        changes = {
            subject: [
                moment
                for record in found
                for moment in (record.window_start, record.display_end)
                if moment is not None and moment > at
            ]
            for subject, found in records.items()
        }
        hits, until = search_public_until(app.db, "某某贸易", at, limit=1)
        assert until == min(changes[ENTERPRISE] + changes[OTHER], default=None), at
        assert hits == search_public(app.db, "某某贸易", at)[:1]
        assert until == search_changes_after(app.db, "某某贸易", at)
        shown = {hit.subject_code for hit in hits}
        if until is not None and until not in changes[next(iter(shown), ENTERPRISE)]:
            beyond_the_limit += 1
    # Some instants hold only until a change of a subject the limit left out.
    assert beyond_the_limit > 0


def test_the_credit_version_is_the_last_event_read_in_a_transaction(app: CreditApp) -> None:
    state = app.http.app.state  # type: ignore[attr-defined]
    settings: RegistrySettings = state.registry.settings
    other = Database.open(settings, run_migrations=False)  # as another process has
    try:

        def in_transaction(db: Database) -> int:
            with db.read_connection() as connection:
                return read_credit_version(connection)

        assert credit_version(app.db) == credit_version(other) == in_transaction(app.db) == 0
        app.sdk.import_file(penalty_file(penalties(2)))
        first = credit_version(app.db)
        assert first > 0 and credit_version(other) == first == in_transaction(other)
        app.sdk.publish_list_entry(black_list_entry(1))
        assert credit_version(other) > first
        assert credit_version(app.db) == credit_version(other) == in_transaction(app.db)
    finally:
        other.close()
