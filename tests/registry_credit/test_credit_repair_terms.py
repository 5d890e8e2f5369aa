"""The terms a subject signs to file its own repair: what the SDK builds parses back to
the same values, and any change to their shape — a key missing or added, a value of another
type or size — is refused with ValueError (the registry's 422), never another error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdk.credit_subject import TERMS_KEYS, parse_repair_terms, repair_terms, repair_terms_hash

pytestmark = pytest.mark.no_database

RECORD = "ab" * 32
USCC = "91350100M000100Y43"


def terms() -> dict[str, Any]:
    return repair_terms(
        chain_id=7,
        record_id=RECORD.upper(),
        subject_kind="enterprise",
        subject_id=USCC,
        evidence="  罚款已缴清  ",
        obligations_fulfilled=True,
        at=1_700_000_000,
    )


def test_built_terms_parse_back() -> None:
    built = terms()
    parsed = parse_repair_terms(built)
    assert (parsed.chain_id, parsed.record_id, parsed.at) == (7, RECORD, 1_700_000_000)
    assert parsed.obligations_fulfilled is True and parsed.subject_kind == "enterprise"
    assert repair_terms_hash(built) != repair_terms_hash({**built, "nonce": "00" * 16})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=5,
)


@given(key=st.sampled_from(sorted(TERMS_KEYS)), value=JSON_VALUES)
def test_a_changed_value_parses_or_is_refused_with_value_error(key: str, value: Any) -> None:
    changed = {**terms(), key: value}
    try:
        parse_repair_terms(changed)
    except ValueError:
        return


@given(extra=st.text(min_size=1, max_size=12).filter(lambda k: k not in TERMS_KEYS))
def test_an_added_key_is_refused(extra: str) -> None:
    with pytest.raises(ValueError):
        parse_repair_terms({**terms(), extra: 1})


@pytest.mark.parametrize("key", sorted(TERMS_KEYS))
def test_a_missing_key_is_refused(key: str) -> None:
    built = terms()
    del built[key]
    with pytest.raises(ValueError):
        parse_repair_terms(built)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("chainId", True),
        ("chainId", -1),
        ("at", "1700000000"),
        ("recordId", "zz" * 32),
        ("subjectKind", "person"),
        ("obligationsFulfilled", 1),
        ("nonce", "00" * 15),
        ("subjectSalt", "gg" * 16),
        ("version", 2),
    ],
)
def test_a_wrong_value_is_refused(key: str, value: Any) -> None:
    with pytest.raises(ValueError):
        parse_repair_terms({**terms(), key: value})
