"""A check's request spends its nonce in the transaction that logs the check (one write per
group of checks, not a nonce's write before and the log's after): a replay is refused with
401 ``replayed_nonce`` and not logged, a check refused for any other reason spends its
nonce all the same, and two checks with one nonce in a group log one."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest
from check_harness import department_client
from credit_harness import RESIDENT_ID, CreditApp
from sqlalchemy import select
from test_credit_chain import PROCUREMENT

from registry.credit.check_log import CheckLogWriter
from registry.credit.checks import CheckAsked, check_subject
from registry.credit.models import CreditCheckLog
from registry.errors import AuthenticationFailed
from registry.intake import NonceClaim
from registry.models import Nonce
from registry.routers import credit_checks
from sdk.trust_core import signed_headers


def _signed(app: CreditApp, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    data = json.dumps(body).encode()
    headers = signed_headers(
        app.key, client_id=app.client_id, method="POST", path="/v1/credit/check", body=data
    )
    headers["Content-Type"] = "application/json"
    return data, headers


def _nonce_of(headers: dict[str, str]) -> str:
    (nonce,) = [value for name, value in headers.items() if name.lower().endswith("nonce")]
    return nonce


def _stored(app: CreditApp, nonce: str) -> bool:
    with app.db.read_session() as session:
        found = session.scalar(
            select(Nonce.nonce).where(Nonce.client_id == app.client_id, Nonce.nonce == nonce)
        )
    return found is not None


def test_a_check_stores_its_nonce_with_its_log_row_and_a_replay_is_refused(
    app: CreditApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = app.http.app.state.registry  # type: ignore[attr-defined]
    spent: list[NonceClaim] = []
    real = state.intake.spend_nonce

    async def counted(claim: NonceClaim) -> None:
        spent.append(claim)
        await real(claim)

    monkeypatch.setattr(state.intake, "spend_nonce", counted)
    body = {"subject": RESIDENT_ID, "activity": PROCUREMENT, "on": "2023-06-02"}
    data, headers = _signed(app, body)
    logged = app.count(CreditCheckLog)
    first = app.http.post("/v1/credit/check", content=data, headers=headers)
    assert first.status_code == 200, first.text
    assert spent == []  # not spent apart: in the log's transaction
    assert _stored(app, _nonce_of(headers))
    assert app.count(CreditCheckLog) == logged + 1

    replay = app.http.post("/v1/credit/check", content=data, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"
    assert app.count(CreditCheckLog) == logged + 1  # the replay is not logged


def test_a_refused_check_spends_its_nonce_all_the_same(
    app: CreditApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credit_checks, "CHECK_ROLES", ("no-such-role",))
    data, headers = _signed(app, {"subject": RESIDENT_ID, "activity": "x", "on": "2023-06-02"})
    logged = app.count(CreditCheckLog)
    refused = app.http.post("/v1/credit/check", content=data, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"
    assert _stored(app, _nonce_of(headers))
    replay = app.http.post("/v1/credit/check", content=data, headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_nonce"
    assert app.count(CreditCheckLog) == logged


def test_one_nonce_twice_in_a_group_or_stored_before_logs_one_check(app: CreditApp) -> None:
    keys = app.http.app.state.credit_keys  # type: ignore[attr-defined]
    asked = CheckAsked(
        department_client(app), RESIDENT_ID, PROCUREMENT, datetime.date(2023, 6, 2), app.clock.now()
    )
    _, row = check_subject(app.db, keys, asked)
    expires = app.clock.now() + datetime.timedelta(minutes=10)
    claim = NonceClaim(app.client_id, "n" * 32, expires)
    other = NonceClaim(app.client_id, "m" * 32, expires)
    writer = CheckLogWriter(app.db)
    logged = app.count(CreditCheckLog)

    async def at_once(*claims: NonceClaim) -> list[Any]:
        return await asyncio.gather(
            *(writer.append(row, claim) for claim in claims), return_exceptions=True
        )

    try:
        outcomes = asyncio.run(at_once(claim, claim, other))
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], AuthenticationFailed)
        assert outcomes[1].code == "replayed_nonce"
        assert app.count(CreditCheckLog) == logged + 2
        # Stored before: refused, and the check beside it in the group is logged.
        third = NonceClaim(app.client_id, "p" * 32, expires)
        outcomes = asyncio.run(at_once(other, third))
        assert isinstance(outcomes[0], AuthenticationFailed) and outcomes[1] is None
        assert app.count(CreditCheckLog) == logged + 3
    finally:
        writer.stop()


def test_a_body_refused_by_its_model_is_422_and_leaves_its_nonce_unspent(app: CreditApp) -> None:
    data, headers = _signed(app, {"subject": RESIDENT_ID, "activity": "x", "on": "not a day"})
    logged = app.count(CreditCheckLog)
    for _ in range(2):  # nothing was done: the same request is refused the same way
        refused = app.http.post("/v1/credit/check", content=data, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_request"
    assert not _stored(app, _nonce_of(headers))
    assert app.count(CreditCheckLog) == logged
    # The route reads its body itself; the API document still describes it.
    document = app.http.get("/openapi.json").json()
    body = document["paths"]["/v1/credit/check"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"subject", "activity", "on"}
