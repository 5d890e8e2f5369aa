"""The intake check of a bulk request signed once (registry.notarization.prepare_records):
each record's department proof, encoded in one pass over the request's tree, leads from
its commitment to the signed root; and a request with any byte of any record changed is
refused as not signed by the department, whichever record and byte it is."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import PrivateKey, sm3
from chain.merkle import MerkleProof, MerkleTree, verify_proof
from registry.errors import InvalidInput
from registry.models import Client
from registry.notarization import prepare_records
from registry.record_schemas import SignedRecordCreate
from sdk.bundle import department_root_sign_bytes
from sdk.bundle_links import root_of_path
from sdk.record_signing import commit_record, sign_records

pytestmark = pytest.mark.no_database

CHAIN_ID = 7
RECORDS = 37
"""An odd count: the request's tree promotes nodes on several levels."""


@cache
def _department() -> tuple[PrivateKey, Client, dict[str, Any]]:
    key = PrivateKey.generate()
    client = Client(
        id="bulk-check",
        name="bulk-check",
        uscc="11100000000013338W",
        public_key=key.public_key.to_bytes().hex(),
    )
    committed = [
        commit_record(
            key,
            idempotency_key=f"bulk-check-{index}",
            digest=sm3(f"bulk-check-{index}".encode()),
            metadata={"n": index},
            fields={"name": f"record {index}"} if index % 3 == 0 else None,
        )
        for index in range(RECORDS)
    ]
    return key, client, sign_records(key, CHAIN_ID, committed).body()


def _payloads(body: dict[str, Any]) -> list[SignedRecordCreate]:
    return [SignedRecordCreate(**record) for record in body["records"]]


def test_every_record_keeps_its_path_to_the_signed_root() -> None:
    key, client, body = _department()
    records = prepare_records(
        client,
        _payloads(body),
        "bulk-check",
        CHAIN_ID,
        request_signature=body["department_signature"],
    )
    assert len(records) == RECORDS
    commitments = [bytes.fromhex(record.values["commitment"]) for record in records]
    root = MerkleTree.build(commitments).root
    (signature,) = {record.values["department_signature"] for record in records}
    key.public_key.verify(
        bytes.fromhex(signature), department_root_sign_bytes(CHAIN_ID, RECORDS, root)
    )
    for index, (record, commitment) in enumerate(zip(records, commitments, strict=True)):
        proof = MerkleProof.decode(bytes.fromhex(record.values["department_proof"]))
        assert (proof.leaf_index, proof.leaf_count) == (index, RECORDS)
        verify_proof(root, commitment, proof, leaf_count=RECORDS)
        # What a verifier of the record's bundle computes from it.
        assert root_of_path(commitment, proof) == root


_CHANGEABLE = ("digest", "metadata_salt")
"""Hex members of a record whose every byte the commitment covers."""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, RECORDS - 1),
    member=st.sampled_from(_CHANGEABLE),
    position=st.integers(0, 31),
    flip=st.integers(1, 255),
)
def test_a_changed_byte_in_any_record_refuses_the_request(
    index: int, member: str, position: int, flip: int
) -> None:
    _, client, body = _department()
    records = [dict(record) for record in body["records"]]
    value = bytearray(bytes.fromhex(records[index][member]))
    value[position % len(value)] ^= flip
    records[index][member] = value.hex()
    with pytest.raises(InvalidInput) as refused:
        prepare_records(
            client,
            _payloads({"records": records}),
            "bulk-check",
            CHAIN_ID,
            request_signature=body["department_signature"],
        )
    assert refused.value.code == "bad_department_signature"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.integers(0, RECORDS - 1), second=st.integers(0, RECORDS - 1))
def test_records_swapped_or_dropped_refuse_the_request(first: int, second: int) -> None:
    _, client, body = _department()
    records = list(body["records"])
    if first == second:
        del records[first]
    else:
        records[first], records[second] = records[second], records[first]
    with pytest.raises(InvalidInput) as refused:
        prepare_records(
            client,
            _payloads({"records": records}),
            "bulk-check",
            CHAIN_ID,
            request_signature=body["department_signature"],
        )
    assert refused.value.code == "bad_department_signature"
