"""License status changes signed by the issuing department, through the registry against a
real node: each refusal (signature missing, wrong, another department, unknown license, a
stale history position) changes nothing; suspend, resume and revoke round-trip into the
license's bundle and verify offline, naming the department; the citizen's page shows the
signature's verdict, and refuses to say 有效 once the stored signature is tampered with."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Iterator

import pytest
from registry_harness import CLIENT_DEPARTMENT_NAME, CLIENT_USCC, TrustChain
from sqlalchemy import update
from test_licenses import Registry, counts, license_request, make_registry, new_identifier, page

from chain.crypto import PrivateKey
from contracts.trust import Reason
from registry.license_service import LicenseService
from registry.models import License, LicenseOperation
from registry.settings import RegistrySettings
from sdk.bundle import BundleFormatError, LicenseBundle, LicenseLink, verify_license_bundle
from sdk.chain_reader import ChainReader
from sdk.license_status_bundle import MAX_STATUS_CHANGES, verify_status_changes
from sdk.license_status_signing import StatusAction, sign_status_change
from sdk.trust import RegistryError, TrustClient

BUNDLE_TIMEOUT_S = 30.0
SIGNED_BY = f"由 {CLIENT_DEPARTMENT_NAME} ({CLIENT_USCC}) 签发，签名有效"


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    yield from make_registry(settings)


def history_length(client: TrustClient, identifier: str) -> int:
    chain = client.license_status(identifier).chain
    assert chain is not None
    return len(chain.history)


def wait_for_bundle(client: TrustClient, identifier: str, changes: int) -> LicenseBundle:
    """The license's bundle once it carries ``changes`` certified status changes."""
    deadline = time.monotonic() + BUNDLE_TIMEOUT_S
    while True:
        try:
            bundle = client.license_bundle(identifier)
            if len(bundle.status_changes) == changes:
                return bundle
        except RegistryError as exc:
            if exc.status_code != 503:
                raise
        assert time.monotonic() < deadline, "the bundle never carried the changes"
        time.sleep(0.2)


def test_each_refused_status_change_changes_nothing(registry: Registry) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    path = f"/v1/licenses/{issued.identifier}/suspend"
    chain_id = registry.chain_id()
    before = counts(registry.db)

    def refused(response: object, status: int, code: str) -> None:
        assert response.status_code == status, response.text  # type: ignore[attr-defined]
        assert response.json()["error"]["code"] == code  # type: ignore[attr-defined]

    refused(registry.post_as_is(path, {"reason": 1}), 422, "department_signature_required")
    signed = sign_status_change(
        registry.key, chain_id, issued.identifier, StatusAction.SUSPEND, 1, 1
    ).body
    refused(
        registry.post_as_is(path, {**signed, "sequence": None}),
        422,
        "department_signature_required",
    )
    other_key = sign_status_change(
        PrivateKey.generate(), chain_id, issued.identifier, StatusAction.SUSPEND, 1, 1
    ).body
    refused(registry.post_as_is(path, other_key), 422, "bad_department_signature")
    as_revocation = f"/v1/licenses/{issued.identifier}/revoke"
    refused(registry.post_as_is(as_revocation, signed), 422, "bad_department_signature")
    refused(registry.post_as_is(path, {**signed, "reason": 2}), 422, "bad_department_signature")
    stale = sign_status_change(
        registry.key, chain_id, issued.identifier, StatusAction.SUSPEND, 1, 2
    ).body
    refused(registry.post_as_is(path, stale), 409, "stale_status_sequence")
    unknown = new_identifier()
    refused(
        registry.post(f"/v1/licenses/{unknown}/revoke", {"reason": 1}), 404, "license_not_found"
    )

    # Another department, signing with its own registered client key: not its license.
    other = registry.other_department()
    for action in (other.suspend_license, other.revoke_license):
        with pytest.raises(RegistryError) as forbidden:
            action(issued.identifier, reason=Reason.ISSUED_IN_ERROR)
        assert (forbidden.value.status_code, forbidden.value.code) == (403, "wrong_department")

    after = counts(registry.db)
    assert (after["licenses"], after["license_operations"]) == (
        before["licenses"],
        before["license_operations"],
    )
    assert history_length(client, issued.identifier) == 1
    read = registry.get(f"/v1/licenses/{issued.identifier}").json()
    assert read["status_changes"] == [] and read["recorded_status"] == "issued"


def test_signed_status_changes_round_trip_into_the_offline_bundle(
    registry: Registry, trust_chain: TrustChain
) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    client.suspend_license(issued.identifier, reason=Reason.UNDER_INVESTIGATION)
    client.resume_license(issued.identifier)
    client.revoke_license(issued.identifier, reason=Reason.LEGAL_DECISION)

    read = registry.get(f"/v1/licenses/{issued.identifier}").json()
    assert [(c["action"], c["sequence"], c["state"]) for c in read["status_changes"]] == [
        ("suspend", 1, "confirmed"),
        ("resume", 2, "confirmed"),
        ("revoke", 3, "confirmed"),
    ]
    assert read["signed_by"]["verdict"] == "VALID"
    assert (read["signed_by"]["uscc"], read["signed_by"]["name"]) == (
        CLIENT_USCC,
        CLIENT_DEPARTMENT_NAME,
    )
    assert read["commitment"] and len(read["commitment"]) == 64
    # The SDK's typed answer carries the same: commitment, signer verdict, signed changes.
    typed = client.license_status(issued.identifier)
    assert typed.commitment == read["commitment"]
    assert typed.signed_by is not None and typed.signed_by["verdict"] == "VALID"
    assert [change["action"] for change in typed.status_changes] == ["suspend", "resume", "revoke"]

    bundle = wait_for_bundle(client, issued.identifier, 3)
    raw = registry.get(f"/v1/licenses/{issued.identifier}/bundle").json()
    assert LicenseBundle.from_json(json.loads(json.dumps(raw))) == bundle
    assert bundle.version == 3
    # A version 2 bundle (before status changes were signed) still reads; the versions
    # and the statusChanges member go together, and the list is bounded.
    as_version_2 = {k: v for k, v in raw.items() if k != "statusChanges"} | {"version": 2}
    assert LicenseBundle.from_json(as_version_2).status_changes == ()
    for malformed in (
        {**as_version_2, "statusChanges": raw["statusChanges"]},
        {**raw, "version": 3, "statusChanges": None},
        {k: v for k, v in raw.items() if k != "statusChanges"},
        {**raw, "statusChanges": raw["statusChanges"][:1] * (MAX_STATUS_CHANGES + 1)},
    ):
        with pytest.raises(BundleFormatError):
            LicenseBundle.from_json(malformed)
    with ChainReader(trust_chain.chain.url) as reader:
        validator_set, chain_id = reader.validators(), reader.chain_id()
    license_registry = bytes.fromhex(trust_chain.addresses["license_registry"][2:])
    issuance = verify_license_bundle(
        bundle, validator_set, chain_id=chain_id, license_registry=license_registry
    )
    assert issuance.valid, issuance.failures
    verdicts = verify_status_changes(
        bundle, validator_set, chain_id=chain_id, license_registry=license_registry
    )
    assert [v.change.action for v in verdicts] == [
        StatusAction.SUSPEND,
        StatusAction.RESUME,
        StatusAction.REVOKE,
    ]
    for verdict in verdicts:
        assert verdict.valid, verdict.verdict.failures
        assert verdict.signed_by is not None
        assert (verdict.signed_by.uscc, verdict.signed_by.name) == (
            CLIENT_USCC,
            CLIENT_DEPARTMENT_NAME,
        )
    # The auditor's listing of what the department vouched for shows the same changes.
    listed = client.department_licenses(CLIENT_USCC, limit=1_000)
    (entry,) = [e for e in listed.licenses if e["identifier"] == issued.identifier]
    assert [change["commitment"] for change in entry["status_changes"]] == [
        change.commitment(chain_id, bundle.license.id_hash).hex()
        for change in bundle.status_changes
    ]
    assert [v.change.reason for v in verdicts] == [
        Reason.UNDER_INVESTIGATION,
        Reason.RESTORED,
        Reason.LEGAL_DECISION,
    ]

    # A forged signature fails the department link alone; a changed reason fails the
    # transaction and its event (the call made another change) and the signature;
    # reordered changes fail the order.
    revocation = bundle.status_changes[2]
    forged = dataclasses.replace(
        revocation,
        department=dataclasses.replace(
            revocation.department, signature=PrivateKey.generate().sign(b"another message")
        ),
    )
    changed_reason = dataclasses.replace(revocation, reason=Reason.ISSUED_IN_ERROR)
    reordered = bundle.status_changes[1::-1]
    outcomes = [
        verify_status_changes(
            dataclasses.replace(bundle, status_changes=changes),
            validator_set,
            chain_id=chain_id,
        )[-1]
        for changes in ((forged,), (changed_reason,), reordered)
    ]
    failed = [[check.link for check in outcome.verdict.failures] for outcome in outcomes]
    assert failed == [
        [LicenseLink.DEPARTMENT],
        [LicenseLink.TRANSACTION, LicenseLink.RECEIPT, LicenseLink.DEPARTMENT],
        [LicenseLink.LICENSE],
    ]
    assert outcomes[0].signed_by is None


def test_the_page_shows_the_signature_verdict_and_refuses_a_forged_one(
    registry: Registry,
) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    genuine = page(registry, issued.identifier)
    assert genuine.status_code == 200
    assert SIGNED_BY in genuine.text and "<span>有效</span>" in genuine.text

    # Someone with the database's keys swaps the stored signature for a well-formed one
    # over something else: the registry still serves the row, the page refuses it.
    with registry.db.session() as session:
        session.execute(
            update(License)
            .where(License.identifier == issued.identifier)
            .values(department_signature=registry.key.sign(b"not this license").hex())
        )
    forged = page(registry, issued.identifier)
    assert "签名无效" in forged.text and "有效" not in forged.text.replace("签名无效", "")
    assert CLIENT_DEPARTMENT_NAME not in forged.text
    read = registry.get(f"/v1/licenses/{issued.identifier}").json()
    assert read["signed_by"]["verdict"] == "INVALID" and read["signed_by"]["uscc"] is None

    # So does a stored term changed under a genuine signature.
    second = client.issue_license(license_request())
    with registry.db.session() as session:
        session.execute(
            update(License)
            .where(License.identifier == second.identifier)
            .values(metadata_hash="00" * 32)
        )
    assert "签名无效" in page(registry, second.identifier).text


def test_a_retried_status_change_is_replayed_not_made_twice(registry: Registry) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    first = client.suspend_license(issued.identifier, idempotency_key="suspend-once")
    # Signed again (a later history position by now, a new SM2 signature): the same request.
    again = client.suspend_license(issued.identifier, idempotency_key="suspend-once")
    assert first.operation is not None and again.operation is not None
    assert again.operation.id == first.operation.id
    assert history_length(client, issued.identifier) == 2
    with pytest.raises(RegistryError) as conflict:
        client.revoke_license(
            issued.identifier, reason=Reason.LEGAL_DECISION, idempotency_key="suspend-once"
        )
    assert (conflict.value.status_code, conflict.value.code) == (409, "idempotency_conflict")


def test_the_page_names_who_suspended_the_license_and_refuses_a_forged_change(
    registry: Registry,
) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    client.suspend_license(issued.identifier, reason=Reason.UNDER_INVESTIGATION)
    suspended = page(registry, issued.identifier).text
    assert "<span>暂停</span>" in suspended
    assert f"由 {CLIENT_DEPARTMENT_NAME} ({CLIENT_USCC}) 暂停，签名有效" in suspended

    with registry.db.session() as session:
        session.execute(
            update(LicenseOperation)
            .where(
                LicenseOperation.identifier == issued.identifier,
                LicenseOperation.action == "suspend",
            )
            .values(department_signature=registry.key.sign(b"not this change").hex())
        )
    forged = page(registry, issued.identifier).text
    assert "<span>暂停</span>" in forged and "该状态变更的部门签名未通过核验" in forged
    assert "暂停，签名有效" not in forged


def test_the_page_applies_a_receipt_not_seen_yet_before_checking_the_signature(
    registry: Registry,
) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    # As if the issuing request had answered 202 and nothing had read the license since.
    with registry.db.session() as session:
        session.execute(
            update(LicenseOperation)
            .where(LicenseOperation.identifier == issued.identifier)
            .values(state="sent", block_number=None)
        )
        session.execute(
            update(License)
            .where(License.identifier == issued.identifier)
            .values(status="pending", block_number=None, anchored_at=None)
        )
    shown = page(registry, issued.identifier)
    assert shown.status_code == 200 and SIGNED_BY in shown.text
    with registry.db.session() as session:
        row = session.get_one(License, issued.identifier)
        assert (row.status, row.block_number) == ("issued", issued.block_number)


def stored_operation(registry: Registry, identifier: str, sequence: int, state: str) -> int:
    """A signed suspension of ``identifier`` at ``sequence`` as the registry stores one."""
    now = datetime.datetime.now(datetime.UTC)
    with registry.db.session() as session:
        operation = LicenseOperation(
            identifier=identifier,
            client_id=registry.client_id,
            action="suspend",
            reason=1,
            idempotency_key=f"stored-{sequence}-{state}",
            request_hash="00" * 32,
            state=state,
            raw_tx="00",
            tx_hash="00" * 32,
            created_at=now,
            updated_at=now,
            department_key=registry.key.public_key.to_bytes().hex(),
            department_signature="00",
            commitment="00" * 32,
            sequence=sequence,
        )
        session.add(operation)
        session.flush()
        return operation.id


def test_one_signed_change_per_history_position_and_a_reverted_one_takes_none(
    registry: Registry,
) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    service: LicenseService = registry.http.app.state.licenses  # type: ignore[attr-defined]

    # Position 1 already held by a stored change (as a concurrent request would hold it):
    # a change signed for it is refused before it is sent.
    taken = stored_operation(registry, issued.identifier, 1, "confirmed")
    with pytest.raises(RegistryError) as refused:
        client.suspend_license(issued.identifier)
    assert (refused.value.status_code, refused.value.code) == (409, "stale_status_sequence")
    assert history_length(client, issued.identifier) == 1

    # Had that change reverted on chain, it took no position: the next one may.
    with registry.db.session() as session:
        session.get_one(LicenseOperation, taken).state = "sent"
    service.outbox._apply_revert(taken, b"")
    suspended = client.suspend_license(issued.identifier)
    assert suspended.recorded_status == "suspended"
    assert history_length(client, issued.identifier) == 2
