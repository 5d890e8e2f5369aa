"""Format identification's signature matching answers exactly what puremagic's own
``magic_string`` answers, for any bytes: random ones, and ones carrying each of its
signatures at its offset (with the multi-part and footer signatures that follow)."""

from __future__ import annotations

import puremagic
from hypothesis import given, settings
from hypothesis import strategies as st
from puremagic import main as puremagic_main

from archives.formats import SNIFF_BYTES, magic_matches

ROWS = puremagic_main.magic_header_array


def _reference(data: bytes) -> list[object]:
    if not data:
        return []
    try:
        return list(puremagic.magic_string(data))
    except puremagic.PureError:
        return []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_match_as_puremagic_matches_them(data: bytes) -> None:
    assert magic_matches(data) == _reference(data)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(ROWS) - 1),
    st.binary(max_size=256),
    st.binary(max_size=256),
    st.sampled_from([0, 1, 600, SNIFF_BYTES]),
)
def test_bytes_carrying_a_signature_match_as_puremagic_matches_them(
    position: int, before: bytes, after: bytes, padding: int
) -> None:
    row = ROWS[position]
    prefix = (before + bytes(row.offset))[: row.offset]
    data = prefix + row.byte_match + after + bytes(padding)
    assert magic_matches(data) == _reference(data)
    assert magic_matches(data[:SNIFF_BYTES]) == _reference(data[:SNIFF_BYTES])


def test_every_signature_is_found() -> None:
    for row in ROWS:
        data = bytes(row.offset) + row.byte_match + b"\n" * 64
        found = magic_matches(data)
        assert found == _reference(data)
        assert any(match.byte_match.startswith(row.byte_match) for match in found), row
