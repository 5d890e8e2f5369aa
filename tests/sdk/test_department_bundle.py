"""Version 2 proof bundles: the department's own SM2 signature over a record's salted
commitment travels in the bundle and is checked offline against the department's key record
(IssuerRegistry at the anchoring height); the verdict names the department. Version 1
bundles still verify; a version 2 record cannot pass for a version 1 one."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import pytest
from test_bundle import CHAIN_ID, HEIGHT, NOTARY_ADDRESS, VALIDATORS, make_bundle

from chain.crypto import PrivateKey, sm3
from chain.primitives import Address
from contracts.trust import OPEN_ENDED, Role
from sdk.bundle import (
    BundleFormatError,
    DepartmentClaim,
    IssuerKeyClaim,
    Link,
    ProofBundle,
    RecordClaim,
    department_sign_bytes,
    field_hash,
    salted_metadata_hash,
    verify_bundle,
)

DEPARTMENT_USCC = "11100000000013338W"
DEPARTMENT_NAME = "区行政审批局"
DEPARTMENT_KEY = PrivateKey.from_bytes(sm3(b"department key"))
SALT = bytes(range(16))


def department_record(key: PrivateKey = DEPARTMENT_KEY) -> RecordClaim:
    return RecordClaim(
        record_id=str(uuid.UUID(int=2)),
        digest=sm3(b"document"),
        metadata_hash=salted_metadata_hash({"holder_id": "11010519491231002X"}, SALT),
        field_hashes=(("holder", field_hash("holder", "张三", b"s" * 16)),),
        department_key=key.public_key.to_bytes(),
    )


def key_claim(**changes: object) -> IssuerKeyClaim:
    claim = IssuerKeyClaim(
        issuer_registry=Address(b"\x22" * 20),
        uscc=DEPARTMENT_USCC,
        key_id=3,
        public_key=DEPARTMENT_KEY.public_key.to_bytes(),
        roles=int(Role.ISSUER | Role.REVOKER),
        valid_from_block=5,
        valid_until_block=OPEN_ENDED,
        read_at_block=HEIGHT,
    )
    return dataclasses.replace(claim, **changes)  # type: ignore[arg-type]


def signed_bundle(
    record: RecordClaim | None = None, signer: PrivateKey = DEPARTMENT_KEY, chain_id: int = CHAIN_ID
) -> ProofBundle:
    record = record or department_record()
    signature = signer.sign(department_sign_bytes(chain_id, record.commitment()))
    return make_bundle(record, DepartmentClaim(signature, DEPARTMENT_NAME, key_claim()))


SIGNED = signed_bundle()


def verdict_of(bundle: ProofBundle) -> object:
    return verify_bundle(bundle, VALIDATORS, chain_id=CHAIN_ID, notary=NOTARY_ADDRESS)


def test_a_signed_bundle_verifies_and_names_its_department() -> None:
    verdict = verify_bundle(SIGNED, VALIDATORS, chain_id=CHAIN_ID, expected_digest=sm3(b"document"))
    assert verdict.valid, verdict.failures
    assert [check.link for check in verdict.checks] == list(Link)
    assert verdict.signed_by is not None
    assert (verdict.signed_by.uscc, verdict.signed_by.name) == (DEPARTMENT_USCC, DEPARTMENT_NAME)
    assert DEPARTMENT_NAME in verdict.check(Link.DEPARTMENT).detail
    # Its JSON round-trips, department included.
    assert ProofBundle.from_canonical_json(SIGNED.canonical_json()) == SIGNED


def test_a_version_1_bundle_verifies_and_says_it_carries_no_signature() -> None:
    verdict = verify_bundle(make_bundle(), VALIDATORS, chain_id=CHAIN_ID)
    assert verdict.valid, verdict.failures
    assert verdict.signed_by is None
    assert "version 1" in verdict.check(Link.DEPARTMENT).detail


def _department(change: Callable[[DepartmentClaim], DepartmentClaim]) -> ProofBundle:
    assert SIGNED.department is not None
    return dataclasses.replace(SIGNED, department=change(SIGNED.department))


def _with_key(**changes: object) -> ProofBundle:
    return _department(lambda d: dataclasses.replace(d, key=key_claim(**changes)))


FORGED: dict[str, tuple[Callable[[], ProofBundle], Link]] = {
    "signed by another key": (lambda: signed_bundle(signer=PrivateKey.generate()), Link.DEPARTMENT),
    "signed for another chain": (lambda: signed_bundle(chain_id=CHAIN_ID + 1), Link.DEPARTMENT),
    "key not registered at the block": (
        lambda: _department(lambda d: dataclasses.replace(d, key=None)),
        Link.DEPARTMENT,
    ),
    "key not valid yet": (
        lambda: _department(
            lambda d: dataclasses.replace(d, key=key_claim(valid_from_block=HEIGHT + 1))
        ),
        Link.DEPARTMENT,
    ),
    "key closed before": (
        lambda: _department(
            lambda d: dataclasses.replace(d, key=key_claim(valid_until_block=HEIGHT))
        ),
        Link.DEPARTMENT,
    ),
    "key without the issuer role": (
        lambda: _department(
            lambda d: dataclasses.replace(d, key=key_claim(roles=int(Role.AUDITOR)))
        ),
        Link.DEPARTMENT,
    ),
    "key record of another key": (
        lambda: _department(
            lambda d: dataclasses.replace(
                d, key=key_claim(public_key=PrivateKey.generate().public_key.to_bytes())
            )
        ),
        Link.DEPARTMENT,
    ),
    "key record from another registry": (
        lambda: _department(
            lambda d: dataclasses.replace(d, key=key_claim(issuer_registry=Address(b"\x33" * 20)))
        ),
        Link.DEPARTMENT,
    ),
    "record claimed by another department's key": (
        lambda: dataclasses.replace(
            SIGNED,
            record=dataclasses.replace(
                SIGNED.record, department_key=PrivateKey.generate().public_key.to_bytes()
            ),
        ),
        Link.BATCH,
    ),
    "downgraded to version 1 without the signature": (
        lambda: dataclasses.replace(
            SIGNED,
            version=1,
            department=None,
            record=dataclasses.replace(SIGNED.record, department_key=None),
        ),
        Link.BATCH,
    ),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_each_forged_department_claim_fails_its_link(case: str) -> None:
    make, link = FORGED[case]
    verdict = verify_bundle(make(), VALIDATORS, chain_id=CHAIN_ID, notary=NOTARY_ADDRESS)
    assert not verdict.valid
    assert link in {check.link for check in verdict.failures}, verdict.failures
    assert verdict.signed_by is None


def test_a_bundle_naming_a_department_has_version_2_and_the_reverse() -> None:
    value = SIGNED.to_json()
    for broken in (
        {**value, "version": 1},
        {k: v for k, v in value.items() if k != "department"},
        {**value, "record": {k: v for k, v in value["record"].items() if k != "departmentKey"}},
    ):
        with pytest.raises(BundleFormatError):
            ProofBundle.from_json(broken)
