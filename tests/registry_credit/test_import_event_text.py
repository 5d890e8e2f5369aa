"""The metadata text of a credit event written out member by member is exactly compact,
sorted ``json.dumps`` without ASCII escaping (the RFC 8785 form the SDK hashes, which
test_credit_event_metadata holds the whole hash to); any other shape of metadata is left to
``json.dumps``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.credit.events import _metadata_text

pytestmark = pytest.mark.no_database

_TEXT = st.text(max_size=40)


def _dumps(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@given(
    kind=_TEXT,
    record=st.none() | _TEXT,
    version=st.none() | st.integers(min_value=-(2**70), max_value=2**70),
    at=_TEXT,
    rule_set=st.none() | _TEXT,
    changed=st.lists(_TEXT, max_size=6),
    reason=st.none() | _TEXT,
    schema=_TEXT,
)
def test_the_written_out_text_is_sorted_compact_json(
    kind: str,
    record: str | None,
    version: int | None,
    at: str,
    rule_set: str | None,
    changed: list[str],
    reason: str | None,
    schema: str,
) -> None:
    metadata = {
        "schema": schema,
        "kind": kind,
        "record": record,
        "version": version,
        "at": at,
        "rule_set": rule_set,
        "changed_fields": changed,
        "reason_sm3": reason,
    }
    assert _metadata_text(metadata) == _dumps(metadata)


def test_other_shapes_are_left_to_json_dumps() -> None:
    metadata: dict[str, Any] = {
        "schema": "s",
        "kind": "k",
        "record": None,
        "version": 1,
        "at": "t",
        "rule_set": None,
        "changed_fields": [],
        "reason_sm3": None,
    }
    assert _metadata_text(metadata) == _dumps(metadata)
    for changed in (
        {"extra": 1},
        {"version": True},
        {"version": 1.5},
        {"kind": 3},
        {"record": ["a"]},
        {"changed_fields": ("a",)},
        {"changed_fields": [1]},
    ):
        assert _metadata_text({**metadata, **changed}) is None
    assert _metadata_text({k: v for k, v in metadata.items() if k != "at"}) is None
