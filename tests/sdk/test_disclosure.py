"""Selective disclosure offline: chosen fields (and the metadata) of a signed record, with
their salts and its bundle; the disclosed values must reproduce the committed hashes, the
others stay hidden, and a wrong value or salt is refused when disclosing and when
verifying."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_bundle import CHAIN_ID, NOTARY_ADDRESS, VALIDATORS
from test_department_bundle import DEPARTMENT_KEY, signed_bundle

from chain.crypto import sm3
from sdk.bundle import RecordClaim, field_hash, salted_metadata_hash
from sdk.disclosure import Disclosure, DisclosureError, disclose, verify_disclosure
from sdk.record_signing import sign_record

FIELDS = {"holder_id": "11010519491231002X", "holder_name": "张三", "amount": 12}
METADATA = {"kind": "居住证明"}
SIGNED = sign_record(
    DEPARTMENT_KEY,
    CHAIN_ID,
    idempotency_key="disclosure",
    digest=sm3(b"document"),
    metadata=METADATA,
    fields=FIELDS,
)


def record_of() -> RecordClaim:
    """The record claim of SIGNED as the registry would put it in the bundle."""
    salts = SIGNED.salts
    hashes = {name: field_hash(name, value, salts.fields[name]) for name, value in FIELDS.items()}
    return RecordClaim(
        record_id="00000000-0000-4000-8000-000000000009",
        digest=sm3(b"document"),
        metadata_hash=salted_metadata_hash(METADATA, salts.metadata),
        field_hashes=tuple(sorted(hashes.items())),
        department_key=DEPARTMENT_KEY.public_key.to_bytes(),
    )


BUNDLE = signed_bundle(record_of())


def test_the_registrys_record_is_the_commitment_the_department_signed() -> None:
    assert BUNDLE.record.commitment() == SIGNED.commitment


def test_a_disclosed_field_verifies_and_the_others_stay_hidden() -> None:
    disclosure = disclose(BUNDLE, {"holder_id": FIELDS["holder_id"]}, SIGNED.salts)
    assert set(disclosure.fields) == set(disclosure.field_salts) == {"holder_id"}
    as_json = disclosure.to_json()
    assert "张三" not in str(as_json) and SIGNED.salts.fields["holder_name"].hex() not in str(
        as_json
    )
    again = Disclosure.from_json(as_json)
    verdict = verify_disclosure(again, VALIDATORS, chain_id=CHAIN_ID, notary=NOTARY_ADDRESS)
    assert verdict.valid, (verdict.bundle.failures, verdict.mismatches)
    verdict.raise_for_failure()


def test_the_metadata_can_be_disclosed_with_its_salt() -> None:
    disclosure = disclose(BUNDLE, {}, SIGNED.salts, metadata=METADATA)
    assert verify_disclosure(disclosure, VALIDATORS, chain_id=CHAIN_ID).valid
    with pytest.raises(DisclosureError):
        disclose(BUNDLE, {}, SIGNED.salts, metadata={"kind": "other"})


@given(guess=st.text(max_size=20))
def test_a_wrong_value_is_refused_and_never_verifies(guess: str) -> None:
    if guess == FIELDS["holder_id"]:
        return
    with pytest.raises(DisclosureError):
        disclose(BUNDLE, {"holder_id": guess}, SIGNED.salts)
    honest = disclose(BUNDLE, {"holder_id": FIELDS["holder_id"]}, SIGNED.salts)
    forged = dataclasses.replace(honest, fields={"holder_id": guess})
    verdict = verify_disclosure(forged, VALIDATORS, chain_id=CHAIN_ID)
    assert not verdict.valid and verdict.mismatches == ("holder_id",)
    with pytest.raises(DisclosureError):
        verdict.raise_for_failure()


@pytest.mark.parametrize("member", ["fieldSalts", "metadataSalt"])
@pytest.mark.parametrize("number", [2**64, 2**300])
def test_a_salt_given_as_a_number_is_refused_before_it_is_allocated(
    member: str, number: int
) -> None:
    """A JSON number where a salt's hex belongs once reached ``bytes(number)``: an
    OverflowError for these, and n zero bytes allocated for a smaller n."""
    as_json = disclose(
        BUNDLE, {"holder_id": FIELDS["holder_id"]}, SIGNED.salts, metadata=METADATA
    ).to_json()
    if member == "fieldSalts":
        as_json["fieldSalts"]["holder_id"] = number
    else:
        as_json["metadataSalt"] = number
    with pytest.raises(DisclosureError):
        Disclosure.from_json(as_json)


def test_a_wrong_salt_or_an_unknown_field_is_refused() -> None:
    salts = {name: salt.hex() for name, salt in SIGNED.salts.fields.items()}
    with pytest.raises(DisclosureError):
        disclose(BUNDLE, {"holder_id": FIELDS["holder_id"]}, {**salts, "holder_id": "00" * 16})
    with pytest.raises(DisclosureError):
        disclose(BUNDLE, {"nickname": "小张"}, {**salts, "nickname": "11" * 16})
    with pytest.raises(DisclosureError):
        disclose(BUNDLE, {"holder_id": FIELDS["holder_id"]}, {"holder_id": "short"})
