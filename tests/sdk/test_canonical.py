"""The canonical JSON of everything hashed (:mod:`sdk.canonical`): RFC 8785 on the I-JSON
domain (checked against the ``rfc8785`` package as a reference), exact big integers as the
one extension, refusals instead of silent loss, no recursion, and the claims about version 1:
both encodings agree on strings, safe integers, booleans, null, arrays and objects whose
names stay below U+E000, and differ for floats."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from sdk import canonical
from sdk.bundle import canonical_json as bundle_canonical_json
from sdk.canonical import (
    SAFE_INTEGER_MAX,
    CanonicalJsonError,
    canonical_forms,
    canonical_json,
    legacy_canonical_json,
    strict_canonical_json,
)

SAFE_INTEGERS = st.integers(-SAFE_INTEGER_MAX, SAFE_INTEGER_MAX)
TEXT = st.text(st.characters(exclude_categories=("Cs",)))
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def json_values(scalars: st.SearchStrategy[Any], names: st.SearchStrategy[str]) -> Any:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=4)
        ),
        max_leaves=20,
    )


I_JSON = json_values(st.none() | st.booleans() | SAFE_INTEGERS | FINITE | TEXT, TEXT)
BELOW_E000 = st.text(st.characters(max_codepoint=0xDFFF, exclude_categories=("Cs",)))
NO_FLOATS_PLAIN_NAMES = json_values(st.none() | st.booleans() | SAFE_INTEGERS | TEXT, BELOW_E000)


@given(I_JSON)
def test_on_the_i_json_domain_the_encoding_is_rfc_8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)
    assert strict_canonical_json(value) == rfc8785.dumps(value)
    assert bundle_canonical_json(value) == rfc8785.dumps(value)


@given(NO_FLOATS_PLAIN_NAMES)
def test_version_1_agrees_where_the_module_says(value: Any) -> None:
    # These values take the fast path (Python's encoder): it is RFC 8785 too.
    assert canonical.plain(value, strict=True)
    assert canonical_json(value) == rfc8785.dumps(value)
    assert legacy_canonical_json(value) == canonical_json(value)
    assert canonical_forms(value) == (canonical_json(value),)


@given(I_JSON)
def test_every_form_parses_back_to_the_same_value(value: Any) -> None:
    # Read as I-JSON numbers (doubles): "19305742489905190" and "1.930574248990519e+16"
    # are one number.
    parsed = [json.loads(form, parse_int=float) for form in canonical_forms(value)]
    assert all(item == parsed[0] for item in parsed)


@pytest.mark.parametrize(
    ("value", "jcs", "version_1"),
    [
        (1.0, b"1", b"1.0"),
        (1e16, b"10000000000000000", b"1e+16"),
        (1e-7, b"1e-7", b"1e-07"),
        (-0.0, b"0", b"-0.0"),
        ({"\U0001f600": 1, "\uff01": 2}, '{"😀":1,"！":2}'.encode(), '{"！":2,"😀":1}'.encode()),
    ],
)
def test_where_the_two_versions_differ_both_forms_are_offered(
    value: Any, jcs: bytes, version_1: bytes
) -> None:
    assert canonical_json(value) == jcs
    assert legacy_canonical_json(value) == version_1
    assert canonical_forms(value) == (jcs, version_1)


def test_big_integers_are_exact_except_under_strict_encoding() -> None:
    assert (
        canonical_json({"validUntilBlock": 2**64 - 1})
        == b'{"validUntilBlock":18446744073709551615}'
    )
    with pytest.raises(CanonicalJsonError):
        strict_canonical_json(2**53)
    assert strict_canonical_json(-SAFE_INTEGER_MAX) == str(-SAFE_INTEGER_MAX).encode()


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        "\ud800",
        ["ok", "\udfff"],
        {"\udc00": 1},
        {1: "name is no string"},
        b"bytes",
        {"set": {1, 2}},
    ],
)
def test_values_without_a_canonical_encoding_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_json(value)


def test_deep_values_are_encoded_without_recursion() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    assert canonical_json(value) == b"[" * 100_001 + b"]" * 100_001


def test_a_field_committed_under_version_1_still_discloses() -> None:
    from chain import encoding as enc
    from chain.crypto import sm3
    from sdk.commitments import FIELD_HASH_PREFIX, field_hash, field_hash_forms

    salt = bytes(range(16))
    value = {"area_m2": 1.5e16, "rate": 1.0}
    version_1 = sm3(FIELD_HASH_PREFIX + enc.encode([salt, b"parcel", legacy_canonical_json(value)]))
    forms = field_hash_forms("parcel", value, salt)
    assert forms == (field_hash("parcel", value, salt), version_1)
    assert field_hash_forms("name", "张三", salt) == (field_hash("name", "张三", salt),)
