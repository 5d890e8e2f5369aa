"""The import's table of record keys met so far (duplicates within one file)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.importing.seen_keys import KEY_SIZE, MAX_ROW, SeenKeys

_KEYS = st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE)


@settings(max_examples=200, deadline=None)
@given(
    pool=st.lists(_KEYS, min_size=1, max_size=40, unique=True),
    picks=st.lists(st.integers(min_value=0, max_value=10**6), max_size=300),
)
def test_it_answers_as_a_dict_of_first_rows(pool: list[bytes], picks: list[int]) -> None:
    """Keys repeat (drawn from a small pool, the all-zero key among the possibilities): each
    is new the first time and names its first row afterwards, as a dict would."""
    seen = SeenKeys()
    model: dict[bytes, int] = {}
    for row, pick in enumerate(picks, start=1):
        key = pool[pick % len(pool)]
        assert seen.first_row(key, row) == model.get(key)
        model.setdefault(key, row)
    assert len(seen) == len(model)


def test_the_all_zero_key_is_a_key_like_any_other() -> None:
    seen = SeenKeys()
    zero = bytes(KEY_SIZE)
    assert seen.first_row(zero, 3) is None
    assert seen.first_row(zero, 9) == 3
    assert seen.first_row(b"\x00" * 15 + b"\x01", 10) is None
    assert len(seen) == 2


def test_keys_outlive_the_table_doubling_many_times() -> None:
    """Far more keys than the first table holds: every one still names its first row, and
    keys differing only in one half are told apart."""
    keys = [os.urandom(KEY_SIZE) for _ in range(50_000)]
    keys += [key[:8] + bytes(8) for key in keys[:500]] + [bytes(8) + key[8:] for key in keys[:500]]
    seen = SeenKeys()
    for row, key in enumerate(keys, start=1):
        assert seen.first_row(key, row) is None
    assert len(seen) == len(keys)
    for row, key in enumerate(keys, start=1):
        assert seen.first_row(key, row + len(keys)) == row


@pytest.mark.parametrize("size", [0, 1, KEY_SIZE - 1, KEY_SIZE + 1, 32])
def test_a_key_of_another_size_is_refused(size: int) -> None:
    seen = SeenKeys()
    with pytest.raises(ValueError, match="bytes"):
        seen.first_row(b"\x01" * size, 1)
    assert len(seen) == 0


@pytest.mark.parametrize("row", [0, -1, MAX_ROW + 1])
def test_a_row_number_out_of_range_is_refused(row: int) -> None:
    seen = SeenKeys()
    with pytest.raises(ValueError, match="outside"):
        seen.first_row(os.urandom(KEY_SIZE), row)
    assert len(seen) == 0
