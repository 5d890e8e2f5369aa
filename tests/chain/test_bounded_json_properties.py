"""Properties of :mod:`chain.bounded_json` over generated input: the depth scan counts exactly
the nesting ``json`` would build, whatever brackets, quotes and escapes the strings hold; any
byte string either parses or raises :class:`JsonLimitError` (never anything else); and what is
accepted is exactly what ``json.loads`` returns."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.bounded_json import JsonLimitError, loads_bounded, nesting_depth

MAX_BYTES = 1 << 16
_TRICKY = st.text(alphabet='[]{}"\\/,:abc \u00e9\u4e2d\U0001f600\n\t', max_size=12)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    _TRICKY,
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY, inner, max_size=4),
    max_leaves=25,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


def _wrap(value: Any, levels: int) -> Any:
    for index in range(levels):
        value = [value] if index % 2 else {"k[": value}
    return value


@settings(max_examples=150, deadline=None)
@given(_VALUES, st.integers(0, 40), st.booleans())
def test_depth_is_exact_with_brackets_inside_strings(
    value: Any, extra_levels: int, ascii_only: bool
) -> None:
    value = _wrap(value, extra_levels)
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(data) == _depth(value)
    max_depth = 20
    if _depth(value) > max_depth:
        try:
            loads_bounded(data, max_bytes=MAX_BYTES, max_depth=max_depth)
        except JsonLimitError as exc:
            assert exc.reason in ("too_deep", "too_large")
        else:
            raise AssertionError("accepted JSON deeper than its limit")
    elif len(data) <= MAX_BYTES:
        assert loads_bounded(data, max_bytes=MAX_BYTES, max_depth=max_depth) == json.loads(data)


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few bytes overwritten, deleted or inserted."""
    edits = st.lists(
        st.tuples(
            st.integers(0, max(len(data), 1)),
            st.sampled_from(list(b'[]{}"\\,:0 \xff\x80')),
            st.integers(0, 2),
        ),
        max_size=4,
    )

    def apply(changes: list[tuple[int, int, int]]) -> bytes:
        buffer = bytearray(data)
        for position, byte, kind in changes:
            position = min(position, len(buffer))
            if kind == 0 and position < len(buffer):
                buffer[position] = byte
            elif kind == 1 and position < len(buffer):
                del buffer[position]
            else:
                buffer.insert(position, byte)
        return bytes(buffer)

    return edits.map(apply)


@st.composite
def _hostile_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    data = json.dumps(draw(_VALUES), ensure_ascii=draw(st.booleans())).encode()
    return draw(_mutations(data))


@settings(max_examples=300, deadline=None)
@given(_hostile_bytes(), st.integers(1, 8))
def test_only_json_limit_errors_and_agreement_with_json_loads(data: bytes, max_depth: int) -> None:
    try:
        value = loads_bounded(data, max_bytes=150, max_depth=max_depth)
    except JsonLimitError as exc:
        assert exc.reason in {
            "too_large",
            "too_deep",
            "not_json",
            "not_utf8",
            "non_finite_number",
            "lone_surrogate",
        }
        return
    assert len(data) <= 150
    assert _depth(value) <= max_depth
    assert value == json.loads(data)
