"""A record's rows as the bulk inserts bind them: the JSON columns' text is what
``json.dumps`` (SQLAlchemy's default) writes, byte for byte, and the remembered bound
form of a time is the column's own for every time, whatever its zone."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import pytest
from credit_tables import PENALTY, RESIDENT_ID, SUBJECT
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime, make_url

from credit.display import public_fields
from credit.records import PenaltyRecord, record_id, record_kind
from credit.rulesets import bundled_rule_set
from credit.subjects import SubjectCategory
from registry.credit.keys import CreditKeys
from registry.credit.record_rows import (
    _TIMES_REMEMBERED,
    RecordPreparer,
    Signer,
    _remembering,
    bulk_inserts,
    json_text,
)

pytestmark = pytest.mark.no_database

FLAT_OBJECTS = st.dictionaries(st.text(max_size=40), st.none() | st.text(max_size=200), max_size=40)
"""Objects of strings and nulls: a record's fields, public and authority forms, hashes."""

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(FLAT_OBJECTS)
def test_a_flat_object_is_written_as_json_dumps_writes_it(value: dict[str, str | None]) -> None:
    assert json_text(value) == json.dumps(value)


@given(ANY_JSON)
def test_any_other_value_is_written_by_json_dumps(value: Any) -> None:
    assert json_text(value) == json.dumps(value)


def test_an_object_with_other_values_or_keys_is_written_by_json_dumps() -> None:
    for value in ({"a": "x", "b": 1}, {"a": None, "b": ["x"]}, {1: "x"}, {"a": {"b": "c"}}):
        assert json_text(value) == json.dumps(value)


def _sqlite_time_processor() -> Any:
    dialect = make_url("sqlite+pysqlite://").get_dialect()()
    return DateTime()._cached_bind_processor(dialect)


def test_a_remembered_time_is_bound_as_the_column_binds_it_in_any_zone() -> None:
    process = _sqlite_time_processor()
    remembered = _remembering(process)
    instant = datetime.datetime(2023, 6, 1, 4, 30, 15, 250, tzinfo=datetime.UTC)
    same_instant_elsewhere = instant.astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    assert instant == same_instant_elsewhere
    for value in (instant, same_instant_elsewhere, instant, same_instant_elsewhere, None):
        assert remembered(value) == process(value)
    # SQLite keeps the wall time: the two forms of one instant differ.
    assert remembered(instant) != remembered(same_instant_elsewhere)


def test_times_past_the_bound_are_still_bound_correctly() -> None:
    process = _sqlite_time_processor()
    remembered = _remembering(process)
    start = datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)
    times = [start + datetime.timedelta(seconds=n) for n in range(_TIMES_REMEMBERED + 10)]
    for value in times + times:
        assert remembered(value) == process(value)


def test_string_enum_values_and_event_metadata_are_written_as_json_dumps_writes_them() -> None:
    """A record's subject category is a StrEnum; an event's metadata holds numbers, lists
    and nulls: the encoder made once writes each as json.dumps does, and refuses what
    json.dumps refuses."""
    values: list[Any] = [
        {"subject.category": SubjectCategory.ORGANISATION, "name": "某某", "note": None},
        {"kind": "publish", "version": 1, "changed_fields": ["a", "b"], "reason_sm3": None},
        [],
        "text",
    ]
    for value in values:
        assert json_text(value) == json.dumps(value)
    with pytest.raises(TypeError):
        json_text({"a": object()})


def _prepared(record: PenaltyRecord) -> tuple[dict[str, Any], tuple[Any, ...]]:
    preparer = RecordPreparer(
        Signer("client", "04" + "ab" * 64),
        CreditKeys(b"record rows: a fixed master secret"),
        bundled_rule_set("cn.ndrc.order-58"),
        datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC),
        "sqlite+pysqlite",
    )
    identity = record_id(record_kind(record), record.natural_key)
    columns = preparer.columns(record, identity)
    return columns, preparer.prepare(record, identity).row


def _bound(row: tuple[Any, ...], name: str) -> Any:
    names = [name for name, _, _ in bulk_inserts("sqlite+pysqlite").records._steps]
    return row[names.index(name)]


def test_an_organisation_s_public_and_authority_json_are_one_text_bound_once() -> None:
    columns, row = _prepared(PENALTY)
    assert columns["public_json"] is columns["authority_json"]
    public, authority = _bound(row, "public_json"), _bound(row, "authority_json")
    assert public is authority
    assert public == json.dumps(public_fields(PENALTY)) == json.dumps(columns["authority_json"])


def test_a_natural_person_s_public_json_masks_the_name_and_the_authority_json_does_not() -> None:
    person = dataclasses.replace(
        SUBJECT,
        category=SubjectCategory.NATURAL_PERSON,
        name="张三丰",
        uscc=None,
        legal_representative=None,
        id_type="身份证",
        id_number=RESIDENT_ID,
    )
    record = dataclasses.replace(PENALTY, subject=person)
    columns, row = _prepared(record)
    assert columns["public_json"] is not columns["authority_json"]
    public, authority = _bound(row, "public_json"), _bound(row, "authority_json")
    assert public == json.dumps(public_fields(record))
    assert authority == json.dumps(columns["authority_json"])
    assert json.loads(public)["subject.name"] != "张三丰"
    assert json.loads(authority)["subject.name"] == "张三丰"


def test_equal_values_of_alike_columns_are_bound_as_each_would_be() -> None:
    """Two equal but distinct objects, or one object, in the two JSON columns: the same
    parameters; the reuse is by object, never across rows."""
    inserts = bulk_inserts("sqlite+pysqlite").records
    columns, _ = _prepared(PENALTY)
    distinct = {**columns, "authority_json": dict(columns["public_json"])}
    assert inserts.parameters(distinct) == inserts.parameters(columns)
    other = {**columns, "public_json": {"a": "b"}, "authority_json": {"a": "b"}}
    assert _bound(inserts.parameters(other), "authority_json") == '{"a": "b"}'
    assert _bound(inserts.parameters(columns), "public_json") != '{"a": "b"}'
