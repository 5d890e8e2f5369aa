"""A check's proofs written once per record and joined into the answer: the same bytes as
the answer written whole, and never a kept text once the proof has changed (a newer event,
a bundle built again)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from registry.credit.check_proofs import EncodedProofs
from registry.credit.checks import CheckAnswer, CheckReason
from registry.credit.proofs import AnchoredEvent
from registry.routers.credit_checks import check_answer_json

pytestmark = pytest.mark.no_database

_ON = datetime.date(2026, 3, 1)
_AT = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
_RECORD = "aa" * 32
_BASIS = "bb" * 32


def _answer() -> CheckAnswer:
    reason = CheckReason(
        measure_id="m-1",
        measure_name="限制参加政府采购",
        effect="restricted",
        basis="《政府采购法》第二十二条",
        entry_record_id=_RECORD,
        list_type="black",
        list_name="失信名单",
        entry_date=_ON,
        authority_uscc="11100000000000000X",
        decision_number="京市监罚〔2026〕1号",
        basis_record_ids=(_BASIS,),
    )
    return CheckAnswer(
        decision="restricted",
        activity="政府采购",
        on=_ON,
        reasons=(reason,),
        catalogue_id="joint-2026",
        catalogue_version=3,
        catalogue_hash="cc" * 32,
        checked_at=_AT,
    )


def _proof(event_id: str, bundle: dict[str, Any]) -> AnchoredEvent:
    return {
        "event_id": event_id,
        "kind": "stored",
        "version": 1,
        "notary_record_id": "dd" * 32,
        "bundle": bundle,
    }


def _bundle(root: str) -> dict[str, Any]:
    return {"record": {"digest": root, "名称": "公司"}, "proof": [root, 1, None, 2.5, True]}


def test_joined_answer_is_the_answer_written_whole() -> None:
    proofs = EncodedProofs()
    bundles: dict[str, AnchoredEvent | None] = {
        _RECORD: _proof("e1", _bundle("r1")),
        _BASIS: None,
    }
    whole = check_answer_json(_answer(), bundles)
    assert check_answer_json(_answer(), bundles, proofs) == whole
    # Answered again from the kept text: still the same bytes.
    assert check_answer_json(_answer(), bundles, proofs) == whole
    assert len(proofs) == 1
    assert check_answer_json(_answer(), {}, proofs) == check_answer_json(_answer(), {})


def test_a_kept_text_is_served_only_for_the_same_bundle_object_and_event() -> None:
    proofs = EncodedProofs()
    bundle = _bundle("r1")
    first = proofs.proof_text(_RECORD, _proof("e1", bundle))
    assert proofs.proof_text(_RECORD, _proof("e1", bundle)) is first
    # An equal bundle built again is written again (and then kept).
    again = _bundle("r1")
    assert proofs.proof_text(_RECORD, _proof("e1", again)) == first
    assert proofs.proof_text(_RECORD, _proof("e1", again)) is not first
    # A newer event of the record, a different bundle: the new proof's text.
    newer = _proof("e2", _bundle("r2"))
    whole = check_answer_json(_answer(), {_RECORD: newer})
    assert check_answer_json(_answer(), {_RECORD: newer}, proofs) == whole
    assert b'"e2"' in whole and b'"r2"' in whole and b'"r1"' not in whole
    # The same bundle under another event: the event's fields are the new ones.
    moved = _proof("e3", again)
    assert check_answer_json(_answer(), {_RECORD: moved}, proofs) == check_answer_json(
        _answer(), {_RECORD: moved}
    )
    # A record whose proof went away answers null.
    assert proofs.proof_text(_RECORD, None) == "null"


def test_a_proof_of_another_shape_is_written_whole_and_not_kept() -> None:
    proofs = EncodedProofs()
    odd: AnchoredEvent = {"event_id": "e1", "bundle": _bundle("r1")}
    assert check_answer_json(_answer(), {_RECORD: odd}, proofs) == check_answer_json(
        _answer(), {_RECORD: odd}
    )
    assert len(proofs) == 0
