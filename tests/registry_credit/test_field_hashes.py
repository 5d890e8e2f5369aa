"""The bulk field hash of credit records is the SDK's field hash, byte for byte, so that
disclosure proofs of notarized records apply to credit fields unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from credit.field_hashes import text_field_hash
from sdk.commitments import field_hash


@given(
    name=st.text(min_size=1, max_size=80),
    value=st.none() | st.text(max_size=300),
    salt=st.binary(min_size=16, max_size=16),
)
def test_text_field_hash_is_the_sdks_field_hash(name: str, value: str | None, salt: bytes) -> None:
    assert text_field_hash(name, value, salt) == field_hash(name, value, salt)
