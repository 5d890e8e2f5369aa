"""A license whose issuing transaction reverted on chain is ``failed`` and its identifier
may be issued again: the new issuance takes the failed row and proceeds as any other,
while idempotent replays of the failed request still answer the reverted operation. An
identifier in any other state stays refused with ``license_exists``. Runs on SQLite, or on
PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_harness import CLIENT_USCC, new_client
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from test_licenses import Registry, counts, license_request, make_registry, new_identifier

from chain.types import Transaction
from contracts.trust import LicenseStatus
from registry.db import Database
from registry.license_service import _store_new_license
from registry.models import License, LicenseOperation, LicenseState, OperationState
from registry.settings import RegistrySettings
from sdk.account import Sm2Account
from sdk.bundle import LicenseBundle
from sdk.trust import Verdict

STARVED_GAS_LIMIT = 30_000
"""Enough for a LicenseRegistry call to be admitted, not enough to run it: it reverts."""


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    yield from make_registry(settings)


def starve_gas(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the registry sign its next calls with too little gas (no dry run either), so
    they are included in a block and revert there."""
    reader = registry.http.app.state.registry.chain.reader  # type: ignore[attr-defined]
    sign_call = reader.sign_call

    def starved(account: Sm2Account, **call: Any) -> Transaction:
        call["gas_limit"] = STARVED_GAS_LIMIT
        return sign_call(account, **call)  # type: ignore[no-any-return]

    monkeypatch.setattr(reader, "sign_call", starved)


def stored(db: Database, identifier: str) -> tuple[License, list[LicenseOperation]]:
    with db.read_session() as session:
        row = session.get_one(License, identifier)
        operations = list(
            session.scalars(
                select(LicenseOperation)
                .where(LicenseOperation.identifier == identifier)
                .order_by(LicenseOperation.id)
            )
        )
        session.expunge_all()
    return row, operations


def test_a_failed_identifier_is_issued_again(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    identifier = new_identifier()
    first_body = license_request(identifier, holder_name="第一次申请的持证主体")
    starve_gas(registry, monkeypatch)
    failed = registry.post("/v1/licenses", first_body, **{"Idempotency-Key": "first-try"})
    monkeypatch.undo()
    assert failed.status_code == 202, failed.text
    assert failed.json()["recorded_status"] == LicenseState.FAILED.value
    assert failed.json()["operation"]["state"] == OperationState.REVERTED.value
    failed_row, _ = stored(registry.db, identifier)

    second_body = license_request(identifier)
    issued = registry.post("/v1/licenses", second_body, **{"Idempotency-Key": "second-try"})
    assert issued.status_code == 201, issued.text
    answer = issued.json()
    assert answer["recorded_status"] == LicenseState.ISSUED.value
    assert answer["operation"]["state"] == OperationState.CONFIRMED.value
    assert answer["metadata"]["holder_name"] == second_body["holder_name"]
    assert answer["holder_commitment"] != failed_row.holder_commitment

    row, operations = stored(registry.db, identifier)
    assert row.status == LicenseState.ISSUED.value and row.salt != failed_row.salt
    assert row.tx_hash == answer["operation"]["tx_hash"] and row.block_number is not None
    assert [op.state for op in operations] == [
        OperationState.REVERTED.value,
        OperationState.CONFIRMED.value,
    ]
    client = registry.trust_client()
    status = client.license_status(identifier)
    assert status.chain is not None and status.chain.verdict is Verdict.VALID
    assert status.chain.status is LicenseStatus.ISSUED
    assert status.holder_commitment == answer["holder_commitment"]
    bundle = client.license_bundle(identifier)
    assert isinstance(bundle, LicenseBundle)
    assert bundle.license.holder_commitment.hex() == answer["holder_commitment"]

    # Idempotency holds on both sides: each key answers its own operation, nothing new.
    before = counts(registry.db)
    replayed_failure = registry.post("/v1/licenses", first_body, **{"Idempotency-Key": "first-try"})
    assert replayed_failure.status_code == 200
    assert replayed_failure.json()["operation"] == failed.json()["operation"]
    replayed_issue = registry.post("/v1/licenses", second_body, **{"Idempotency-Key": "second-try"})
    assert replayed_issue.status_code == 200
    assert replayed_issue.json()["operation"] == answer["operation"]
    # Issued now: a third issuance is refused as for any used identifier.
    again = registry.post("/v1/licenses", license_request(identifier))
    assert again.status_code == 409 and again.json()["error"]["code"] == "license_exists"
    after = counts(registry.db)
    assert after["licenses"] == before["licenses"]
    assert after["license_operations"] == before["license_operations"]


@pytest.mark.parametrize(
    "state", [state for state in LicenseState if state is not LicenseState.FAILED]
)
def test_an_identifier_in_any_other_state_is_still_refused(
    registry: Registry, state: LicenseState
) -> None:
    identifier = new_identifier()
    assert registry.post("/v1/licenses", license_request(identifier)).status_code == 201
    with registry.db.session() as session:
        session.get_one(License, identifier).status = state.value
    before = counts(registry.db)
    refused = registry.post("/v1/licenses", license_request(identifier))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "license_exists"
    after = counts(registry.db)
    assert (after["licenses"], after["license_operations"]) == (
        before["licenses"],
        before["license_operations"],
    )


def _license_row(client_id: str, identifier: str, status: LicenseState, salt: str) -> License:
    return License(
        identifier=identifier,
        id_hash=salt * 2,
        client_id=client_id,
        department=CLIENT_USCC,
        metadata_json="{}",
        salt=salt,
        holder_commitment=salt * 2,
        metadata_hash=salt * 2,
        valid_until=0,
        status=status.value,
        created_at=datetime.datetime.now(datetime.UTC),
    )


def test_only_a_row_still_failed_when_stored_gives_way(
    tmp_path: Path, database_url: str | None
) -> None:
    db = Database.open(RegistrySettings(data_dir=tmp_path, database_url=database_url))
    try:
        client, _ = new_client(db)
        taken, free = new_identifier(), new_identifier()
        with db.session() as session:
            session.add(_license_row(client.id, taken, LicenseState.PENDING, "aa" * 16))
            session.add(_license_row(client.id, free, LicenseState.FAILED, "bb" * 16))

        # A license issued meanwhile (pending now) is never overwritten.
        with pytest.raises(IntegrityError), db.session() as session:
            _store_new_license(
                session, _license_row(client.id, taken, LicenseState.PENDING, "cc" * 16)
            )
            session.flush()
        with db.session() as session:
            _store_new_license(
                session, _license_row(client.id, free, LicenseState.PENDING, "dd" * 16)
            )
        with db.read_session() as session:
            assert session.get_one(License, taken).salt == "aa" * 16
            replaced = session.get_one(License, free)
            assert (replaced.status, replaced.salt) == (LicenseState.PENDING.value, "dd" * 16)
    finally:
        db.close()
