"""An event's salted metadata hash, computed through the C JSON encoder, is the SDK's
(RFC 8785) byte for byte, so the pipeline that recomputes an event's commitment from its
metadata finds the one the department signed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.credit.events import EVENT_SCHEMA, event_metadata_hash
from sdk.commitments import salted_metadata_hash

pytestmark = pytest.mark.no_database

_TEXT = st.text(max_size=60)


@given(
    kind=_TEXT,
    record=st.none() | _TEXT,
    version=st.none() | st.integers(min_value=0, max_value=2**53 - 1),
    at=_TEXT,
    rule_set=st.none() | _TEXT,
    changed=st.lists(_TEXT, max_size=6),
    reason=st.none() | _TEXT,
    salt=st.binary(min_size=16, max_size=16),
)
def test_event_metadata_hash_is_the_sdks_salted_metadata_hash(
    kind: str,
    record: str | None,
    version: int | None,
    at: str,
    rule_set: str | None,
    changed: list[str],
    reason: str | None,
    salt: bytes,
) -> None:
    metadata = {
        "schema": EVENT_SCHEMA,
        "kind": kind,
        "record": record,
        "version": version,
        "at": at,
        "rule_set": rule_set,
        "changed_fields": changed,
        "reason_sm3": reason,
    }
    assert event_metadata_hash(metadata, salt) == salted_metadata_hash(metadata, salt)
