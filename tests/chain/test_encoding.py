"""The RLP encoder written out in chain.encoding gives exactly what the ``rlp`` library
gives, for every nesting and every length boundary."""

from __future__ import annotations

import rlp
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import encoding as enc
from chain.errors import EncodingError

items = st.recursive(
    st.binary(max_size=70) | st.sampled_from([b"", b"\x00", b"\x7f", b"\x80", b"\xff"]),
    lambda children: st.lists(children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=500)
@given(items)
def test_encode_is_the_rlp_library_encoding(item: enc.RLPItem) -> None:
    assert enc.encode(item) == rlp.encode(item)
    assert enc.decode(enc.encode(item)) == item


def test_length_boundaries_match() -> None:
    for size in (0, 1, 2, 55, 56, 57, 255, 256, 257, 65_535, 65_536, 70_000):
        value = b"\x01" * size
        assert enc.encode(value) == rlp.encode(value)
        nested = [b"\x02" * 50] * (size // 51 + 1)
        assert enc.encode(nested) == rlp.encode(nested)


def test_other_types_are_refused() -> None:
    for value in (1, "text", None, 1.5, {b"a": b"b"}):
        try:
            enc.encode(value)  # type: ignore[arg-type]
        except EncodingError:
            continue
        raise AssertionError(f"{value!r} was encoded")
