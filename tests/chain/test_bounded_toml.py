"""TOML from files is parsed only once its size and nesting are bounded: the depth scan skips
comments and all four kinds of strings, never counts less than the parser would recurse,
and genesis files too deep or too large are refused with a typed error before parsing."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import limits
from chain.bounded_toml import TomlLimitError, loads_toml_bounded, toml_nesting_depth
from chain.errors import GenesisError
from chain.genesis import parse_genesis

BOMB_LEVELS = 200_000
"""Levels of ``[`` in the bomb: about 400 KB, far under the genesis size limit."""


def _value_depth(value: Any) -> int:
    """How deeply arrays and tables nest inside one parsed value."""
    if isinstance(value, list):
        return 1 + max((_value_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_value_depth(item) for item in value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('a = "[[[["', 0),
        ("a = '[[[['", 0),
        ('a = """\n[[[[\n"""', 0),
        ("a = '''\n{{{{\n'''", 0),
        ('a = "\\"[[["', 0),
        ('a = """x\\"""[[["""', 0),
        ('a = """x""""\nb = [[1]]', 2),
        ("# [[[[\na = [1]", 1),
        ("[[peers]]\nname = 'a'\n[table]\nb = {c = [1, [2]]}", 3),
        ("a = [[[1]]]", 3),
        ("]]]]\na = [[1]]", 2),
    ],
)
def test_depth_skips_strings_and_comments(text: str, depth: int) -> None:
    assert toml_nesting_depth(text) == depth


_LEAVES = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.booleans(),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=12,
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = "".join(
            ch if ch.isprintable() and ch not in '"\\' else f"\\U{ord(ch):08x}" for ch in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + "}"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), _VALUES, max_size=4))
def test_depth_is_never_below_what_the_parser_nests(document: dict[str, Any]) -> None:
    text = "\n".join(f"{key} = {_toml_value(value)}" for key, value in document.items())
    parsed = tomllib.loads(text)
    assert parsed == document
    deepest = max((_value_depth(value) for value in parsed.values()), default=0)
    assert toml_nesting_depth(text) >= deepest
    assert loads_toml_bounded(text, max_bytes=1 << 20, max_depth=64) == document


def test_a_deep_document_is_refused_before_parsing() -> None:
    bomb = "a = " + "[" * BOMB_LEVELS + "]" * BOMB_LEVELS
    with pytest.raises(TomlLimitError) as caught:
        loads_toml_bounded(bomb, max_bytes=1 << 20, max_depth=16)
    assert caught.value.reason == "too_deep"


def test_genesis_bomb_and_oversize_are_refused_with_a_genesis_error() -> None:
    bomb = "chain_id = 1\nx = " + "[" * BOMB_LEVELS + "]" * BOMB_LEVELS
    assert len(bomb) < limits.MAX_GENESIS_BYTES
    with pytest.raises(GenesisError) as caught:
        parse_genesis(bomb)
    assert isinstance(caught.value.__cause__, TomlLimitError)
    assert caught.value.__cause__.reason == "too_deep"
    oversize = "chain_id = 1\n" + "# padding\n" * (limits.MAX_GENESIS_BYTES // 10 + 1)
    with pytest.raises(GenesisError) as caught:
        parse_genesis(oversize)
    assert isinstance(caught.value.__cause__, TomlLimitError)
    assert caught.value.__cause__.reason == "too_large"
