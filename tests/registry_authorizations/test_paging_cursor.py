"""The cursors of paged listings: what is encoded decodes to the same key in its own
listing, and nothing else decodes at all (another listing's cursor, another key shape,
text that is not a cursor, a cursor past the length limit)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.authorizations.paging import (
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from registry.errors import InvalidInput

pytestmark = pytest.mark.no_database

KEY_TEXT = st.text(st.characters(codec="ascii"), max_size=40)


@given(st.integers(min_value=0, max_value=2**53), KEY_TEXT)
def test_a_cursor_decodes_to_its_key_in_its_own_listing(created: int, row_id: str) -> None:
    cursor = encode_cursor("department-authorizations", (created, row_id))
    assert decode_cursor("department-authorizations", cursor, (int, str)) == (created, row_id)
    with pytest.raises(InvalidInput):
        decode_cursor("subject-authorizations", cursor, (int, str))
    with pytest.raises(InvalidInput):
        decode_cursor("department-authorizations", cursor, (int,))
    with pytest.raises(InvalidInput):
        decode_cursor("department-authorizations", cursor, (str, str))


@given(st.text(max_size=400))
def test_arbitrary_text_is_no_cursor_or_a_valid_one(text: str) -> None:
    try:
        key = decode_cursor("stream-accesses", text, (int,))
    except InvalidInput as refused:
        assert refused.code == "invalid_cursor"
    else:
        assert key is not None and encode_cursor("stream-accesses", key) == text


@pytest.mark.parametrize(
    "value",
    [
        '["stream-accesses",true]',
        '["stream-accesses",1.5]',
        '["stream-accesses","1"]',
        '{"stream-accesses":1}',
        '["stream-accesses",1,2]',
        '[[[[[[[[[["stream-accesses"]]]]]]]]]]',
    ],
)
def test_json_that_is_not_a_key_is_refused(value: str) -> None:
    cursor = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput):
        decode_cursor("stream-accesses", cursor, (int,))


def test_a_long_cursor_is_refused_before_decoding() -> None:
    cursor = encode_cursor("stream-accesses", (1,)) + "A" * MAX_CURSOR_LENGTH
    with pytest.raises(InvalidInput):
        decode_cursor("stream-accesses", cursor, (int,))


def test_no_cursor_is_the_first_page_and_limits_are_bounded() -> None:
    assert decode_cursor("stream-accesses", None, (int,)) is None
    assert check_limit(1) == 1 and check_limit(MAX_LIMIT) == MAX_LIMIT
    for limit in (0, MAX_LIMIT + 1):
        with pytest.raises(InvalidInput):
            check_limit(limit)
