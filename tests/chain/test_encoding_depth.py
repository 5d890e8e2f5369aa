"""RLP nesting is bounded before the recursive decoder runs: as deep as fits in a p2p frame
is refused with EncodingError at once, anything up to the bound decodes as before, and the
depth walk agrees with the decoder on random nested values."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import encoding as enc
from chain.errors import EncodingError
from chain.limits import MAX_FRAME_BYTES, MAX_RLP_DEPTH


def nested_lists(max_bytes: int) -> tuple[bytes, int]:
    """Singleton lists nested as deep as fits in ``max_bytes``, and their depth."""
    headers: list[bytes] = []
    size = 1  # the innermost empty list, 0xc0
    while True:
        header = enc._length_prefix(size, 0xC0)
        if size + len(header) > max_bytes:
            break
        headers.append(header)
        size += len(header)
    return b"".join(reversed(headers)) + b"\xc0", len(headers) + 1


def wrap(depth: int) -> enc.RLPItem:
    item: enc.RLPItem = []
    for _ in range(depth - 1):
        item = [item]
    return item


def test_nesting_as_deep_as_a_frame_holds_is_refused_before_decoding() -> None:
    data, depth = nested_lists(MAX_FRAME_BYTES - 1)
    assert depth > 1_000_000
    with pytest.raises(EncodingError, match="nested deeper"):
        enc.decode(data)


def test_nesting_up_to_the_bound_decodes() -> None:
    assert enc.decode(enc.encode(wrap(MAX_RLP_DEPTH))) == wrap(MAX_RLP_DEPTH)
    with pytest.raises(EncodingError, match="nested deeper"):
        enc.decode(enc.encode(wrap(MAX_RLP_DEPTH + 1)))


def depth_of(item: enc.RLPItem) -> int:
    if isinstance(item, bytes):
        return 0
    return 1 + max((depth_of(child) for child in item), default=0)


values = st.recursive(
    st.binary(max_size=70),
    lambda children: st.lists(children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(item=values, bound=st.integers(min_value=1, max_value=12))
def test_the_depth_walk_agrees_with_the_structure(item: enc.RLPItem, bound: int) -> None:
    data = enc.encode(item)
    if depth_of(item) > bound:
        with pytest.raises(EncodingError):
            enc.check_depth(data, bound)
    else:
        enc.check_depth(data, bound)
        assert enc.decode(data) == item


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_give_a_value_or_encoding_error(data: bytes) -> None:
    with contextlib.suppress(EncodingError):
        enc.decode(data)
