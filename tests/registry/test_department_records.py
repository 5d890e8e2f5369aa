"""Records signed by their department, end to end against a real node: two departments
notarize; each bundle's issuance names its own department; one revokes its record (another
department may not: 403, nothing changes); offline verification of the other department's
bundle is unaffected; an auditor lists per department what it vouched for; and a guessed
resident ID can be confirmed neither from a bundle nor from a copy of the database."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_KEY,
    CLIENT_USCC,
    TrustChain,
    new_client,
)
from sqlalchemy import select, text

from chain.crypto import PrivateKey, sm3
from contracts.trust import Reason
from registry.app import create_app
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.department_keys import register_department_key
from registry.models import Record, RecordRevocation
from registry.settings import RegistrySettings
from sdk.account import Sm2Account
from sdk.bundle import (
    Link,
    ProofBundle,
    field_hash,
    metadata_hash,
    record_commitment,
    verify_bundle,
)
from sdk.chain_reader import ChainReader
from sdk.disclosure import DisclosureError, disclose, verify_disclosure
from sdk.identifiers import compute_resident_id_check, compute_uscc_check
from sdk.trust import RegistryError, TrustClient, Verdict

ANCHOR_TIMEOUT_S = 20.0
OTHER_USCC = "11420100MB1234567" + compute_uscc_check("11420100MB1234567")
OTHER_NAME = "武汉市市场监督管理局"
OTHER_KEY = PrivateKey.from_bytes(sm3(b"registry tests: a second department's key"))
REGION, BIRTH = "110105", "19491231"
"""The guessed-ID attack: every resident ID of one district and birth date."""


def resident_ids() -> list[str]:
    """Every valid resident ID (GB 11643) of REGION born on BIRTH: 1,000 candidates."""
    bodies = (f"{REGION}{BIRTH}{sequence:03d}" for sequence in range(1000))
    return [body + compute_resident_id_check(body) for body in bodies]


HOLDER_ID = resident_ids()[517]


@dataclasses.dataclass
class Departments:
    http: TestClient
    db: Database
    first: TrustClient
    second: TrustClient
    auditor: TrustClient


@pytest.fixture
def departments(settings: RegistrySettings, trust_chain: TrustChain) -> Iterator[Departments]:
    gateway = ChainGateway(settings, Database.open(settings))
    governance = Sm2Account.from_keystore(
        trust_chain.chain.keystore("admin"), trust_chain.chain.password
    )
    register_department_key(
        gateway,
        governance,
        uscc=OTHER_USCC,
        department_name=OTHER_NAME,
        public_key=OTHER_KEY.public_key.to_bytes(),
    )
    gateway.close()
    gateway.db.close()
    with TestClient(create_app(settings)) as http:
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        first, first_key = new_client(db)
        second, second_key = new_client(db, key=OTHER_KEY, uscc=OTHER_USCC, name=OTHER_NAME)
        auditor, auditor_key = new_client(db, roles=("verify",), key=PrivateKey.generate())

        def client(client_id: str, key: PrivateKey) -> TrustClient:
            return TrustClient("http://testserver", client_id, key, http_client=http)

        yield Departments(
            http,
            db,
            client(first.id, first_key),
            client(second.id, second_key),
            client(auditor.id, auditor_key),
        )


def trusted(trust_chain: TrustChain) -> dict[str, Any]:
    with ChainReader(trust_chain.chain.url) as reader:
        return {
            "validator_set": reader.validators(),
            "chain_id": reader.chain_id(),
            "notary": bytes.fromhex(trust_chain.addresses["notary"][2:]),
        }


def wait_until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_departments_sign_one_revokes_and_the_other_stays_valid(
    departments: Departments, trust_chain: TrustChain
) -> None:
    first, second = departments.first, departments.second
    ours = first.notarize(document=b"first department's record", metadata={"n": 1})
    theirs = second.notarize(document=b"second department's record", metadata={"n": 2})
    bundles: dict[str, ProofBundle] = {}
    for client, accepted in ((first, ours), (second, theirs)):
        record = client.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S)
        assert record.bundle is not None and record.bundle.version == 2
        bundles[accepted.record_id] = record.bundle
    facts = trusted(trust_chain)
    for record_id, (uscc, name) in (
        (ours.record_id, (CLIENT_USCC, CLIENT_DEPARTMENT_NAME)),
        (theirs.record_id, (OTHER_USCC, OTHER_NAME)),
    ):
        verdict = verify_bundle(bundles[record_id], **facts)
        assert verdict.valid, verdict.failures
        assert verdict.signed_by is not None
        assert (verdict.signed_by.uscc, verdict.signed_by.name) == (uscc, name)
    verification = second.verify(document=b"second department's record")
    assert verification.issuance.verdict is Verdict.VALID
    assert f"signed by {OTHER_NAME} ({OTHER_USCC})" in verification.issuance.detail
    assert verification.facts["issuer_uscc"] == OTHER_USCC

    # Another department may not revoke it: 403, and nothing changes.
    with pytest.raises(RegistryError) as refused:
        second.revoke_record(ours.record_id, reason=Reason.ISSUED_IN_ERROR)
    assert (refused.value.status_code, refused.value.code) == (403, "wrong_department")
    with departments.db.session() as session:
        assert session.scalars(select(RecordRevocation)).all() == []
    assert first.get_record(ours.record_id).status == "anchored"

    revoked = first.revoke_record(ours.record_id, reason=Reason.ISSUED_IN_ERROR)
    revoked = wait_until(
        lambda: (r := first.get_record(ours.record_id)).status == "revoked" and r, "revocation"
    )
    events = [event["event"] for event in revoked.history]
    assert events == ["accepted", "anchored", "revocation_requested", "revoked"]
    assert revoked.history[-1]["reason"] == Reason.ISSUED_IN_ERROR
    assert revoked.history[-1]["block_number"] > revoked.history[1]["block_number"]
    status = wait_until(
        lambda: (
            (v := first.verify(document=b"first department's record")).status.verdict
            is Verdict.INVALID
            and v
        ),
        "the revocation to show in verification",
    )
    assert status.facts["revocation_reason"] == Reason.ISSUED_IN_ERROR
    # Revoking again changes nothing.
    assert first.revoke_record(ours.record_id, reason=Reason.SUPERSEDED).status == "revoked"

    # The other department's record: still active, and its bundle still verifies offline.
    assert second.verify(document=b"second department's record").status.verdict is Verdict.VALID
    assert verify_bundle(bundles[theirs.record_id], **facts).valid
    assert second.get_record(theirs.record_id).status == "anchored"

    # An auditor lists per department what it vouched for.
    listed = departments.auditor.department_records(CLIENT_USCC)
    assert [(r["id"], r["status"]) for r in listed.records] == [(ours.record_id, "revoked")]
    listed = departments.auditor.department_records(OTHER_USCC)
    assert [(r["id"], r["status"]) for r in listed.records] == [(theirs.record_id, "anchored")]
    assert listed.records[0]["commitment"] == bundles[theirs.record_id].record.commitment().hex()


def test_a_guessed_resident_id_is_confirmed_neither_by_the_bundle_nor_by_the_database(
    departments: Departments, trust_chain: TrustChain
) -> None:
    first = departments.first
    accepted = first.notarize(
        document=b"certificate of residence",
        metadata={"kind": "居住证明"},
        fields={"holder_id": HOLDER_ID, "holder_name": "张三"},
    )
    bundle = first.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S).bundle
    assert bundle is not None
    committed = dict(bundle.record.field_hashes)
    candidates = resident_ids()
    assert HOLDER_ID in candidates

    # With the bundle alone: no candidate reproduces the field hash without its salt, and
    # the metadata hash is salted too (an unsalted guess of the metadata never matches).
    for guess in candidates:
        for salt in (b"", bytes(16)):
            assert field_hash("holder_id", guess, salt) != committed["holder_id"]
    assert metadata_hash({"kind": "居住证明"}) != bundle.record.metadata_hash

    # With a copy of the database: nothing in the record's row reproduces the hash either —
    # the salts are not kept, and no stored value works as one.
    with departments.db.session() as session:
        row = (
            session.execute(
                text("SELECT * FROM records WHERE id = :id"), {"id": accepted.record_id}
            )
            .mappings()
            .one()
        )
    stored = json.dumps({k: str(v) for k, v in row.items()})
    assert HOLDER_ID not in stored and "张三" not in stored
    assert row["field_salts"] is None
    # Every 16-byte value stored in the row, tried as the salt of every candidate.
    chunks = {
        bytes.fromhex(token[start : start + 32])
        for value in row.values()
        if isinstance(value, str)
        for token in _hex_tokens(value)
        for start in range(0, len(token) - 31, 32)
    }
    assert chunks
    hits = [
        guess
        for guess, salt in itertools.product(candidates, chunks)
        if field_hash("holder_id", guess, salt) == committed["holder_id"]
    ]
    assert hits == []

    # The holder, who has the salts, discloses one field; the other stays hidden.
    salts_of_record = {name: bytes.fromhex(s) for name, s in accepted.salts.items()}
    disclosure = disclose(bundle, {"holder_id": HOLDER_ID}, salts_of_record)
    assert "holder_name" not in disclosure.fields and "holder_name" not in disclosure.field_salts
    verdict = verify_disclosure(disclosure, **trusted(trust_chain))
    assert verdict.valid, (verdict.bundle.failures, verdict.mismatches)
    assert verdict.bundle.check(Link.DEPARTMENT).ok
    with pytest.raises(DisclosureError):
        disclose(bundle, {"holder_id": candidates[0]}, salts_of_record)


def _hex_tokens(value: str) -> list[str]:
    token, tokens = [], []
    for char in value.lower() + " ":
        if char in "0123456789abcdef":
            token.append(char)
        else:
            if len(token) >= 32:
                tokens.append("".join(token))
            token = []
    return tokens


def test_a_key_compromise_revokes_everything_the_key_signed_and_nothing_else(
    departments: Departments,
) -> None:
    first, second = departments.first, departments.second
    ours = [first.notarize(document=f"signed with the lost key {i}".encode()) for i in range(2)]
    theirs = second.notarize(document=b"signed by the other department")
    for client, accepted in [(first, a) for a in ours] + [(second, theirs)]:
        client.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S)

    queued = first.revoke_signed_by(department_key=CLIENT_KEY.public_key.to_bytes())
    assert queued == 2
    for accepted in ours:
        record = wait_until(
            lambda a=accepted: (r := first.get_record(a.record_id)).status == "revoked" and r,
            "the key-compromise revocations",
        )
        assert record.history[-1]["reason"] == Reason.KEY_COMPROMISE
    assert second.get_record(theirs.record_id).status == "anchored"
    # Nothing is left to revoke: a second request queues nothing.
    assert first.revoke_signed_by(department_key=CLIENT_KEY.public_key.to_bytes()) == 0


def test_a_record_notarized_before_departments_signed_still_verifies(
    departments: Departments, trust_chain: TrustChain
) -> None:
    """A version 1 record (as stored before: unsalted metadata hash, record id in the leaf,
    no department signature) is sealed, anchored and served with a version 1 bundle that
    verifies offline and through the registry."""
    first = departments.first
    digest = sm3(b"notarized before departments signed")
    record_id = str(uuid.uuid4())
    meta_hash = metadata_hash({"n": 1})
    with departments.db.session() as session:
        session.add(
            Record(
                id=record_id,
                client_id=first.client_id,
                digest=digest.hex(),
                metadata_json={"n": 1},
                metadata_hash=meta_hash.hex(),
                field_hashes={},
                field_salts=None,
                commitment=record_commitment(record_id, digest, meta_hash, []).hex(),
                idempotency_key="before-signatures",
                request_hash="00" * 32,
                status="accepted",
                created_at=datetime.now(UTC),
            )
        )
    record = first.wait_until_anchored(record_id, timeout=ANCHOR_TIMEOUT_S)
    assert record.bundle is not None and record.bundle.version == 1
    verdict = verify_bundle(record.bundle, **trusted(trust_chain), expected_digest=digest)
    assert verdict.valid, verdict.failures
    assert verdict.signed_by is None
    verification = first.verify(digest=digest)
    assert verification.integrity.verdict is Verdict.VALID
    assert verification.issuance.verdict is Verdict.VALID
    assert "before departments signed" in verification.issuance.detail
