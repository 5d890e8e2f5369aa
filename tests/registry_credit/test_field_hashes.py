"""The bulk field hashes and fields root of credit records are the SDK's, byte for byte,
so that disclosure proofs of notarized records apply to credit fields unchanged."""

from __future__ import annotations

import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.crypto import sm3
from credit.field_hashes import (
    content_hash_of,
    derived_salt,
    fields_root_of,
    text_field_hash,
    text_field_hashes,
    text_field_hashes_under,
)
from credit.records import CONTENT_HASH_PREFIX, RecordKind
from registry.credit.keys import CreditKeys
from sdk.commitments import field_hash, fields_root

pytestmark = pytest.mark.no_database


@given(
    name=st.text(min_size=1, max_size=80),
    value=st.none() | st.text(max_size=300),
    salt=st.binary(min_size=16, max_size=16),
)
def test_text_field_hash_is_the_sdks_field_hash(name: str, value: str | None, salt: bytes) -> None:
    assert text_field_hash(name, value, salt) == field_hash(name, value, salt)


@given(
    hashes=st.dictionaries(
        st.text(min_size=1, max_size=60), st.binary(min_size=32, max_size=32), max_size=40
    )
)
def test_fields_root_of_is_the_sdks_fields_root(hashes: dict[str, bytes]) -> None:
    assert fields_root_of(hashes) == fields_root(list(hashes.items()))


@given(
    hashes=st.dictionaries(
        st.text(min_size=1, max_size=60), st.binary(min_size=0, max_size=40), max_size=40
    )
)
def test_fields_root_of_any_values_is_the_sdks_fields_root(hashes: dict[str, bytes]) -> None:
    """Hashes of other lengths than 32, and names seen before (their pair headers kept)."""
    expected = fields_root(list(hashes.items()))
    assert fields_root_of(hashes) == expected
    assert fields_root_of(hashes) == expected
    assert fields_root_of({name: bytearray(value) for name, value in hashes.items()}) == expected


@given(
    fields=st.dictionaries(
        st.text(min_size=1, max_size=80), st.none() | st.text(max_size=300), max_size=40
    ),
    record_id=st.binary(min_size=32, max_size=32),
)
def test_hashes_under_a_records_salt_seed_are_the_sdks_under_its_salts(
    fields: dict[str, str | None], record_id: bytes
) -> None:
    """The loop that derives each salt itself gives what the salts one by one give, and
    each is the SDK's field hash under the registry's salt of that field."""
    keys = CreditKeys(b"field hashes: a fixed master secret")
    salt = keys.salts(record_id)
    expected = {name: field_hash(name, value, salt(name)) for name, value in fields.items()}
    assert text_field_hashes_under(fields, keys.salt_context(record_id)) == expected
    assert text_field_hashes(fields, salt) == expected
    # Twice: the names' encodings, kept the first time, give the same.
    assert text_field_hashes_under(fields, keys.salt_context(record_id)) == expected


def test_a_salt_is_the_first_half_of_sm3_of_the_seed_and_the_name() -> None:
    keys = CreditKeys(b"field hashes: a fixed master secret")
    seed = hmac.new(keys._salt_key, bytes(32), "sm3").digest()
    for name in ("subject.name", "decision_date", "罚款"):
        salt = derived_salt(keys.salt_context(bytes(32)), name)
        assert salt == sm3(seed + name.encode())[:16] == keys.salts(bytes(32))(name)


@given(
    fields=st.dictionaries(st.text(max_size=40), st.none() | st.text(max_size=200), max_size=40),
    kind=st.sampled_from(list(RecordKind)),
)
def test_content_hash_of_is_sm3_of_the_canonical_json_json_dumps_writes(
    fields: dict[str, str | None], kind: RecordKind
) -> None:
    """The encoder made once writes what json.dumps writes with the canonical settings."""
    text = json.dumps(
        [kind.value, fields], ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )
    assert content_hash_of(kind, fields) == sm3(CONTENT_HASH_PREFIX + text.encode())
