"""The bulk field hashes and fields root of credit records are the SDK's, byte for byte,
so that disclosure proofs of notarized records apply to credit fields unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from credit.field_hashes import fields_root_of, text_field_hash
from sdk.commitments import field_hash, fields_root


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
