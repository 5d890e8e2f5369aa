"""Bulk requests signed once: the department signs the SM3 Merkle root of a request's
record commitments; each record's bundle carries that one signature and the record's path
to the root, and offline verification checks both. A path or signature that does not lead
to the signed root fails the department link alone."""

from __future__ import annotations

import dataclasses

import pytest
from test_bundle import CHAIN_ID, NOTARY_ADDRESS, VALIDATORS, make_bundle
from test_department_bundle import DEPARTMENT_KEY, DEPARTMENT_NAME, DEPARTMENT_USCC, key_claim

from chain.crypto import PrivateKey, sm3
from chain.merkle import MerkleTree
from sdk.bundle import (
    DEPARTMENT_ROOT_SIGNATURE_PREFIX,
    DepartmentClaim,
    Link,
    ProofBundle,
    RecordClaim,
    department_root_sign_bytes,
    verify_bundle,
)
from sdk.bundle_links import root_of_path
from sdk.commitments import field_hash, salted_metadata_hash
from sdk.record_signing import SignedRecord, commit_record, sign_records

RECORDS = 5


def committed(key: PrivateKey = DEPARTMENT_KEY) -> list[SignedRecord]:
    return [
        commit_record(
            key,
            idempotency_key=f"bulk-1#{index}",
            document=f"document {index}".encode(),
            metadata={"n": index},
            fields={"holder": f"holder {index}"},
        )
        for index in range(RECORDS)
    ]


def record_claim(index: int, record: SignedRecord) -> RecordClaim:
    """What the bundle of record ``index`` of :func:`committed` says about it."""
    claim = RecordClaim(
        record_id=f"00000000-0000-0000-0000-{index:012d}",
        digest=sm3(f"document {index}".encode()),
        metadata_hash=salted_metadata_hash({"n": index}, record.salts.metadata),
        field_hashes=(
            ("holder", field_hash("holder", f"holder {index}", record.salts.fields["holder"])),
        ),
        department_key=DEPARTMENT_KEY.public_key.to_bytes(),
    )
    assert claim.commitment() == record.commitment
    return claim


def bulk_bundle(index: int = 2) -> ProofBundle:
    records = committed()
    signed = sign_records(DEPARTMENT_KEY, CHAIN_ID, records)
    department = DepartmentClaim(
        signed.signature, DEPARTMENT_NAME, key_claim(), request_proof=signed.proof(index)
    )
    return make_bundle(record_claim(index, records[index]), department)


def test_one_signature_covers_every_record_of_the_request() -> None:
    records = committed()
    signed = sign_records(DEPARTMENT_KEY, CHAIN_ID, records)
    tree = MerkleTree.build([record.commitment for record in records])
    assert signed.root == tree.root
    message = department_root_sign_bytes(CHAIN_ID, RECORDS, tree.root)
    assert message.startswith(DEPARTMENT_ROOT_SIGNATURE_PREFIX)
    DEPARTMENT_KEY.public_key.verify(signed.signature, message)
    body = signed.body()
    assert "department_signature" in body
    assert all("department_signature" not in record for record in body["records"])
    for index in range(RECORDS):
        commitment = records[index].commitment
        assert root_of_path(commitment, signed.proof(index)) == tree.root


@pytest.mark.parametrize("index", range(RECORDS))
def test_each_record_bundle_verifies_with_its_path_and_names_the_department(index: int) -> None:
    bundle = bulk_bundle(index)
    verdict = verify_bundle(bundle, VALIDATORS, chain_id=CHAIN_ID, notary=NOTARY_ADDRESS)
    assert verdict.valid, verdict.failures
    assert verdict.signed_by is not None
    assert (verdict.signed_by.uscc, verdict.signed_by.name) == (DEPARTMENT_USCC, DEPARTMENT_NAME)
    assert ProofBundle.from_canonical_json(bundle.canonical_json()) == bundle


def _forged(change: str) -> ProofBundle:
    bundle = bulk_bundle(2)
    assert bundle.department is not None and bundle.department.request_proof is not None
    signed = sign_records(DEPARTMENT_KEY, CHAIN_ID, committed())
    if change == "path of another record":
        proof = signed.proof(3)
    elif change == "path in a smaller tree":
        proof = MerkleTree.build([record.commitment for record in committed()[:4]]).prove(2)
    elif change == "no path (as if signed alone)":
        proof = None
    elif change == "root signed for another chain":
        other = sign_records(DEPARTMENT_KEY, CHAIN_ID + 1, committed())
        return dataclasses.replace(
            bundle,
            department=dataclasses.replace(bundle.department, signature=other.signature),
        )
    else:  # root signed by another key
        other = sign_records(PrivateKey.generate(), CHAIN_ID, committed())
        return dataclasses.replace(
            bundle,
            department=dataclasses.replace(bundle.department, signature=other.signature),
        )
    return dataclasses.replace(
        bundle, department=dataclasses.replace(bundle.department, request_proof=proof)
    )


@pytest.mark.parametrize(
    "change",
    [
        "path of another record",
        "path in a smaller tree",
        "no path (as if signed alone)",
        "root signed for another chain",
        "root signed by another key",
    ],
)
def test_a_path_or_signature_that_misses_the_signed_root_fails_the_department_link(
    change: str,
) -> None:
    verdict = verify_bundle(_forged(change), VALIDATORS, chain_id=CHAIN_ID, notary=NOTARY_ADDRESS)
    assert [check.link for check in verdict.failures] == [Link.DEPARTMENT]
    assert verdict.signed_by is None
