"""Lifecycle events of records, commitment transitions, and the canonical encoding behind
record identities."""

from __future__ import annotations

import datetime

import pytest
from credit_tables import BLACK, PENALTY, SUBJECT
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.lifecycle import (
    CommitmentTransitionError,
    list_entry_event,
    list_exit_event,
    publish_event,
    repair_events,
    settle_commitment,
    withdraw_event,
)
from credit.records import (
    CommitmentStatus,
    CreditCommitment,
    LifecycleEventKind,
    ListExit,
    RecordKind,
    _strings_json,
    record_id,
)
from sdk.canonical import canonical_json

AT = datetime.datetime(2024, 3, 1, 9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))


def test_events_name_the_record_by_its_stable_identity() -> None:
    identity = record_id(RecordKind.PENALTY, PENALTY.natural_key)
    published = publish_event(PENALTY, AT)
    repair, stop = repair_events(PENALTY, AT, "已履行行政处罚义务")
    withdrawn = withdraw_event(PENALTY, AT, "行政复议撤销")
    assert [e.kind for e in (published, repair, stop, withdrawn)] == [
        LifecycleEventKind.PUBLISH,
        LifecycleEventKind.REPAIR,
        LifecycleEventKind.STOP_PUBLISHING,
        LifecycleEventKind.WITHDRAW,
    ]
    assert {e.record_id for e in (published, repair, stop, withdrawn)} == {identity}
    assert repair.at == stop.at == AT
    entered = list_entry_event(BLACK, AT)
    left = list_exit_event(ListExit(BLACK.natural_key, AT.date(), "期满"), AT)
    assert (entered.kind, left.kind) == (
        LifecycleEventKind.LIST_ENTRY,
        LifecycleEventKind.LIST_EXIT,
    )
    assert entered.record_id == left.record_id != identity
    with pytest.raises(ValueError):
        publish_event(PENALTY, AT.replace(tzinfo=None))


def test_a_commitment_is_settled_once() -> None:
    commitment = CreditCommitment(
        subject=SUBJECT,
        commitment_number="诺〔2024〕1号",
        matter="食品经营许可告知承诺",
        content="三个月内补齐材料",
        signed_on=datetime.date(2024, 1, 5),
        due_on=datetime.date(2024, 4, 5),
        status=CommitmentStatus.PENDING,
        authority="市场监管局",
        authority_uscc="11100000000013338W",
    )
    broken = settle_commitment(commitment, CommitmentStatus.BROKEN)
    assert broken.status is CommitmentStatus.BROKEN
    with pytest.raises(CommitmentTransitionError):
        settle_commitment(broken, CommitmentStatus.FULFILLED)
    with pytest.raises(CommitmentTransitionError):
        settle_commitment(commitment, CommitmentStatus.PENDING)


texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)


@settings(deadline=None)
@given(
    value=st.lists(texts | st.none(), max_size=5),
    fields=st.dictionaries(
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
        texts | st.none(),
        max_size=5,
    ),
)
def test_identities_use_exactly_the_rfc_8785_form(
    value: list[str | None], fields: dict[str, str | None]
) -> None:
    assert _strings_json([value, fields]) == canonical_json([value, fields])
