"""A license's commitment, as the department computes and signs it (sdk.license_signing)
and as the registry recomputes and checks it from the same request
(registry.license_signatures): the two agree, every term is covered, a retry under the same
Idempotency-Key sends the same body, and a body changed after signing is refused."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from chain.crypto import PrivateKey, sm3
from registry.errors import InvalidInput
from registry.license_rules import build_metadata
from registry.license_schemas import SignedLicenseCreate
from registry.license_signatures import signed_terms
from registry.models import Client
from sdk.bundle import department_sign_bytes
from sdk.identifiers import compute_resident_id_check, make_license_identifier
from sdk.license_signing import (
    NO_PREDECESSOR,
    license_commitment,
    license_metadata_of,
    sign_license,
)

pytestmark = pytest.mark.no_database

CHAIN_ID = 20261126
USCC = "11100000000013338W"
NAME = "区行政审批局"
KEY = PrivateKey.from_bytes(sm3(b"license signing tests: the department's key"))
IDENTIFIER = make_license_identifier(USCC + "032", USCC, "A1B2C3", "001")


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": IDENTIFIER,
        "license_name": "食品经营许可证",
        "holder_name": "福建示例科技有限公司",
        "holder_id_type": "resident_id",
        "holder_id": "11010519491231002x",
        "issue_date": "2024-03-15",
        "valid_from": "2024-03-15",
        "valid_until": "2099-03-14",
        "license_number": "JY13501000012345",
        "content": [{"name": "经营项目", "value": "预包装食品销售"}],
    }
    body.update(changes)
    return body


def client() -> Client:
    return Client(
        id="dept",
        name=NAME,
        uscc=USCC,
        public_key=KEY.public_key.to_bytes().hex(),
        roles=["licenses"],
        issuer_codes=[USCC],
    )


def test_the_registry_recomputes_the_commitment_the_department_signed() -> None:
    signed = sign_license(KEY, CHAIN_ID, request(), issuer_name=NAME, idempotency_key="k-1")
    payload = SignedLicenseCreate.model_validate(signed.body)
    checked = signed_terms(client(), build_metadata(payload, client()), payload, CHAIN_ID, None)
    assert checked.commitment == signed.commitment
    assert checked.terms == signed.terms
    KEY.public_key.verify(checked.signature, department_sign_bytes(CHAIN_ID, signed.commitment))


def test_dates_as_objects_or_text_and_the_registered_name_give_one_metadata() -> None:
    as_text = license_metadata_of(request(), NAME)
    as_dates = license_metadata_of(
        request(
            issue_date=datetime.date(2024, 3, 15),
            valid_from=datetime.date(2024, 3, 15),
            valid_until=datetime.date(2099, 3, 14),
        ),
        NAME,
    )
    assert as_text == as_dates
    assert as_text.issuer_name == NAME and as_text.holder_id.endswith("X")


def test_a_retry_under_the_same_key_sends_the_same_body_but_for_the_signature() -> None:
    first = sign_license(KEY, CHAIN_ID, request(), issuer_name=NAME, idempotency_key="k-1")
    again = sign_license(KEY, CHAIN_ID, request(), issuer_name=NAME, idempotency_key="k-1")
    other = sign_license(KEY, CHAIN_ID, request(), issuer_name=NAME, idempotency_key="k-2")

    def unsigned(body: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in body.items() if name != "department_signature"}

    assert unsigned(first.body) == unsigned(again.body)
    assert first.commitment == again.commitment
    assert first.body["commitment_salt"] != other.body["commitment_salt"]
    assert first.terms.holder_commitment != other.terms.holder_commitment


def test_every_term_changes_the_commitment() -> None:
    key = KEY.public_key.to_bytes()
    base = (key, sm3(b"id"), sm3(b"holder"), sm3(b"metadata"), 4_000_000_000, NO_PREDECESSOR)
    seen = {license_commitment(*base)}
    for position, changed in (
        (0, PrivateKey.generate().public_key.to_bytes()),
        (1, sm3(b"another id")),
        (2, sm3(b"another holder")),
        (3, sm3(b"other metadata")),
        (4, 0),
        (5, sm3(b"a predecessor")),
    ):
        terms = list(base)
        terms[position] = changed
        seen.add(license_commitment(*terms))  # type: ignore[arg-type]
    assert len(seen) == 7


@pytest.mark.parametrize(
    "tamper",
    [
        {"holder_id": "11010519491231003" + compute_resident_id_check("11010519491231003")},
        {"holder_name": "另一家公司"},
        {"valid_until": "2099-03-15"},
        {"license_name": "酒类经营许可证"},
        {"commitment_salt": "00" * 32},
    ],
)
def test_a_body_changed_after_signing_is_refused(tamper: dict[str, Any]) -> None:
    signed = sign_license(KEY, CHAIN_ID, request(), issuer_name=NAME, idempotency_key="k-1")
    payload = SignedLicenseCreate.model_validate({**signed.body, **tamper})
    metadata = build_metadata(payload, client())
    with pytest.raises(InvalidInput) as refused:
        signed_terms(client(), metadata, payload, CHAIN_ID, None)
    assert refused.value.code == "bad_department_signature"


def test_a_new_version_is_signed_as_the_successor_of_its_predecessor() -> None:
    previous = make_license_identifier(USCC + "032", USCC, "A1B2C3", "000")
    signed = sign_license(
        KEY,
        CHAIN_ID,
        request(),
        issuer_name=NAME,
        idempotency_key="k-1",
        predecessor=previous,
    )
    payload = SignedLicenseCreate.model_validate(signed.body)
    metadata = build_metadata(payload, client())
    assert signed_terms(client(), metadata, payload, CHAIN_ID, previous).commitment == (
        signed.commitment
    )
    with pytest.raises(InvalidInput):
        signed_terms(client(), metadata, payload, CHAIN_ID, None)
