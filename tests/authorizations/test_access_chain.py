"""Access log entries form one hash chain per stream: an entry changed, left out or moved is
found (the anchored hashes then settle which copy is genuine)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authorizations.access_log import RequestFacts, access_entry, outcome_of
from authorizations.errors import RefusalRule
from chain.crypto import sm3
from chain.primitives import Hash32
from sdk.data_receipts import GENESIS, ReceiptInvalid, access_entry_hash, verify_access_chain

FACTS = RequestFacts("POST", "/v1/data/read", "client", "1800000000", "n" * 20, "00" * 32, "c2ln")


def stream(length: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    previous = Hash32(GENESIS)
    for position in range(length):
        entry = access_entry(
            stream="auth-1",
            position=position,
            previous=previous,
            at=1_800_000_000 + position,
            caller="91350100M000100Y43",
            item="license.metadata",
            purpose="approval.food-business-license",
            resource_hash=Hash32(sm3(b"resource")),
            outcome=outcome_of(RefusalRule.REVOKED if position % 3 == 2 else None),
            request=FACTS,
            salt=bytes([position % 256]) * 16,
        )
        entries.append(entry)
        previous = access_entry_hash(entry)
    return entries


def test_an_unbroken_stream_verifies() -> None:
    verify_access_chain(stream(6))
    verify_access_chain(stream(6)[2:], from_start=False)


@given(length=st.integers(2, 8), data=st.data())
def test_a_missing_entry_is_found(length: int, data: st.DataObject) -> None:
    entries = stream(length)
    head = access_entry_hash(entries[-1])
    del entries[data.draw(st.integers(0, length - 1))]
    with pytest.raises(ReceiptInvalid):
        verify_access_chain(entries, head=head)


@given(length=st.integers(2, 8), data=st.data())
def test_reordered_entries_are_found(length: int, data: st.DataObject) -> None:
    entries = stream(length)
    i = data.draw(st.integers(0, length - 2))
    j = data.draw(st.integers(i + 1, length - 1))
    entries[i], entries[j] = entries[j], entries[i]
    with pytest.raises(ReceiptInvalid):
        verify_access_chain(entries)


@given(length=st.integers(2, 8), data=st.data())
def test_a_changed_entry_breaks_the_link_after_it(length: int, data: st.DataObject) -> None:
    entries = stream(length)
    index = data.draw(st.integers(0, length - 2))
    tampered = copy.deepcopy(entries)
    tampered[index]["outcome"] = "allowed" if entries[index]["outcome"] != "allowed" else "x"
    with pytest.raises(ReceiptInvalid):
        verify_access_chain(tampered)
    # The last entry has no successor: its hash no longer being the anchored one is what
    # gives it away (verify_receipt; see the registry tests).
    assert access_entry_hash(tampered[index]) != access_entry_hash(entries[index])
