"""A license status change as the department signs it (sdk.license_status_signing) and as
the registry checks it (registry.license_status): the two agree on the commitment, every
term of it counts, and a missing or wrong signature is refused with its typed error."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chain.crypto import PrivateKey, sm3
from contracts.trust import license_id_hash
from registry.errors import InvalidInput
from registry.license_schemas import SignedLicenseStatusChange
from registry.license_status import status_signature
from registry.models import Client, License, LicenseAction
from sdk.bundle import department_sign_bytes
from sdk.identifiers import make_license_identifier
from sdk.license_status_signing import (
    StatusAction,
    license_status_commitment,
    sign_status_change,
)

pytestmark = pytest.mark.no_database

CHAIN_ID = 20261126
USCC = "11100000000013338W"
KEY = PrivateKey.from_bytes(sm3(b"license status tests: the department's key"))
IDENTIFIER = make_license_identifier(USCC + "032", USCC, "A1B2C3", "001")


def client(key: PrivateKey = KEY) -> Client:
    return Client(
        id="dept",
        name="区行政审批局",
        uscc=USCC,
        public_key=key.public_key.to_bytes().hex(),
        roles=["licenses"],
        issuer_codes=[USCC],
    )


def stored() -> License:
    return License(identifier=IDENTIFIER, id_hash=license_id_hash(IDENTIFIER).hex())


def payload(body: dict[str, Any]) -> SignedLicenseStatusChange:
    return SignedLicenseStatusChange.model_validate(body)


@pytest.mark.parametrize("action", list(StatusAction))
def test_the_registry_recomputes_the_commitment_the_department_signed(
    action: StatusAction,
) -> None:
    signed = sign_status_change(KEY, CHAIN_ID, IDENTIFIER, action, 3, 2)
    checked = status_signature(
        client(), stored(), LicenseAction(action.function), payload(signed.body), CHAIN_ID
    )
    assert checked.commitment == signed.commitment and checked.sequence == 2
    KEY.public_key.verify(checked.signature, department_sign_bytes(CHAIN_ID, signed.commitment))


def test_every_term_changes_the_commitment() -> None:
    base: tuple[Any, ...] = (
        KEY.public_key.to_bytes(),
        CHAIN_ID,
        license_id_hash(IDENTIFIER),
        StatusAction.SUSPEND,
        1,
        1,
    )
    seen = {license_status_commitment(*base)}
    for position, changed in (
        (0, PrivateKey.generate().public_key.to_bytes()),
        (1, CHAIN_ID + 1),
        (2, sm3(b"another license")),
        (3, StatusAction.REVOKE),
        (4, 2),
        (5, 3),
    ):
        terms = list(base)
        terms[position] = changed
        seen.add(license_status_commitment(*terms))
    assert len(seen) == 7


@pytest.mark.parametrize(
    ("action", "body_change"),
    [
        (LicenseAction.REVOKE, {}),  # signed as a suspension, sent as a revocation
        (LicenseAction.SUSPEND, {"reason": 4}),
        (LicenseAction.SUSPEND, {"sequence": 3}),
    ],
)
def test_a_change_other_than_the_one_signed_is_refused(
    action: LicenseAction, body_change: dict[str, Any]
) -> None:
    signed = sign_status_change(KEY, CHAIN_ID, IDENTIFIER, StatusAction.SUSPEND, 1, 1)
    with pytest.raises(InvalidInput) as refused:
        status_signature(
            client(), stored(), action, payload({**signed.body, **body_change}), CHAIN_ID
        )
    assert refused.value.code == "bad_department_signature"


def test_another_key_another_chain_or_garbage_is_refused() -> None:
    other_key = sign_status_change(
        PrivateKey.generate(), CHAIN_ID, IDENTIFIER, StatusAction.REVOKE, 1, 1
    )
    other_chain = sign_status_change(KEY, CHAIN_ID + 1, IDENTIFIER, StatusAction.REVOKE, 1, 1)
    garbage = {**other_key.body, "department_signature": base64.b64encode(b"x" * 70).decode()}
    for body in (
        other_key.body,
        other_chain.body,
        garbage,
        {**garbage, "department_signature": "*"},
    ):
        with pytest.raises(InvalidInput) as refused:
            status_signature(client(), stored(), LicenseAction.REVOKE, payload(body), CHAIN_ID)
        assert refused.value.code == "bad_department_signature"


@pytest.mark.parametrize(
    "body",
    [{"reason": 1}, {"reason": 1, "sequence": 1}, {"reason": 1, "department_signature": "AA=="}],
)
def test_an_unsigned_change_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as refused:
        status_signature(client(), stored(), LicenseAction.SUSPEND, payload(body), CHAIN_ID)
    assert refused.value.code == "department_signature_required"


def test_terms_out_of_range_cannot_be_signed() -> None:
    for reason, sequence in ((70_000, 1), (-1, 1), (1, 0)):
        with pytest.raises(ValueError):
            sign_status_change(KEY, CHAIN_ID, IDENTIFIER, StatusAction.SUSPEND, reason, sequence)
    with pytest.raises(ValueError):
        StatusAction.named("issue")
