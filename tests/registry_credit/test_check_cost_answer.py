"""The check's answer is written out directly, byte for byte what FastAPI made of it before
(``jsonable_encoder`` then ``JSONResponse``), bundles and reasons included, without the
encoder's walk over the proofs."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from check_harness import anchored_black_entry, post_check, read_on_a_thread
from credit_harness import RESIDENT_ID, CreditApp
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from registry_harness import TrustChain
from test_credit_chain import AUTHORITY, PROCUREMENT

from registry.credit.checks import CheckAnswer, CheckReason
from registry.credit.proofs import AnchoredEvent
from registry.routers import credit_checks
from registry.routers.credit_checks import check_answer_json


def _as_before(answer: CheckAnswer, bundles: dict[str, AnchoredEvent | None]) -> bytes:
    """The body as the route made it before: a dict FastAPI encoded."""
    content = {
        "decision": answer.decision,
        "activity": answer.activity,
        "on": answer.on.isoformat(),
        "catalogue": {
            "id": answer.catalogue_id,
            "version": answer.catalogue_version,
            "hash": answer.catalogue_hash,
        },
        "checked_at": answer.checked_at.isoformat(),
        "reasons": [vars(reason) for reason in answer.reasons],
        "proofs": bundles,
    }
    return bytes(JSONResponse(jsonable_encoder(content)).body)


def test_answer_with_anchored_bundles_is_the_bytes_fastapi_made(
    chain_app: CreditApp, trust_chain: TrustChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = chain_app
    anchored_black_entry(app)

    encoded: list[Any] = []
    real_encoder = credit_checks.jsonable_encoder

    def counting_encoder(value: Any, *args: Any, **kwargs: Any) -> Any:
        encoded.append(value)
        return real_encoder(value, *args, **kwargs)

    monkeypatch.setattr("fastapi.routing.jsonable_encoder", counting_encoder)
    on = datetime.date(2023, 6, 2)
    answered = post_check(app, {"subject": RESIDENT_ID, "activity": PROCUREMENT, "on": str(on)})
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"] == "application/json"
    assert int(answered.headers["content-length"]) == len(answered.content)
    assert encoded == []  # the answer did not go through FastAPI's encoder

    answer, _, bundles = read_on_a_thread(app, on)
    assert answer.decision == "restricted" and len(answer.reasons) == 1
    assert len(bundles) == 2 and all(found is not None for found in bundles.values())
    assert answered.content == _as_before(answer, bundles) == check_answer_json(answer, bundles)
    body = answered.json()
    assert body["reasons"][0]["authority_uscc"] == AUTHORITY
    assert body["reasons"][0]["entry_date"] == "2023-06-01"


def test_answer_without_reasons_and_odd_text_is_the_bytes_fastapi_made() -> None:
    reason = CheckReason(
        measure_id="m-1",
        measure_name='限制 "参与" \\ 政府采购\u2028\x01',
        effect="restricted",
        basis="《办法》第\n三条",
        entry_record_id="a" * 36,
        list_type="black",
        list_name="严重违法失信名单",
        entry_date=datetime.date(2023, 6, 1),
        authority_uscc=AUTHORITY,
        decision_number="榕市监认〔2023〕1号",
        basis_record_ids=("b" * 36, "c" * 36),
    )
    checked_at = datetime.datetime(2024, 1, 2, 3, 4, 5, 678, tzinfo=datetime.UTC)
    for reasons, bundles in (
        ((), {}),
        ((reason, reason), {"a" * 36: None, "b" * 36: {"x": [1, 2.5, None, True, "é"]}}),
    ):
        answer = CheckAnswer(
            decision="restricted" if reasons else "allowed",
            activity="government_procurement",
            on=datetime.date(2024, 1, 2),
            reasons=reasons,
            catalogue_id="cn.joint",
            catalogue_version=3,
            catalogue_hash="ab" * 32,
            checked_at=checked_at,
        )
        assert check_answer_json(answer, bundles) == _as_before(answer, bundles)
