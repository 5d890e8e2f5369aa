"""Credit events anchored through the shared pipeline on a real dev chain node: ``check``
answers restricted with its reasons, each with a proof bundle that verifies offline
(the department's own signature included) and commits to the record's per-field root; the
call is logged for the subject to see; and the natural person's identity number appears
in clear in no block, receipt, database file or log."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import pytest
from credit_harness import RESIDENT_ID, CreditApp, penalty_file, person_penalty, wait_for
from registry_harness import TrustChain

from sdk.bundle import ProofBundle
from sdk.chain_reader import ChainReader
from sdk.credit_client import verify_proofs

AUTHORITY = "11100000000013338W"
PROCUREMENT = "government_procurement"


def _black_entry(penalty_number: str) -> dict[str, Any]:
    return {
        "subject": {
            "category": "自然人",
            "name": "张三",
            "id_type": "身份证",
            "id_number": RESIDENT_ID,
        },
        "list_type": "black",
        "list_name": "严重违法失信名单",
        "decision_number": "榕市监认〔2023〕1号",
        "reason": "拒不履行行政处罚决定",
        "legal_basis": "《市场监督管理严重违法失信名单管理办法》",
        "entry_date": "2023-06-01",
        "planned_exit_date": "2026-06-01",
        "authority": "福州市市场监督管理局",
        "authority_uscc": AUTHORITY,
        "basis_records": [{"authority_uscc": AUTHORITY, "decision_number": penalty_number}],
    }


def _files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_check_reasons_carry_bundles_that_verify_offline_and_no_id_is_in_clear(
    chain_app: CreditApp,
    trust_chain: TrustChain,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = chain_app
    penalty = person_penalty()
    app.sdk.import_file(penalty_file([penalty]))
    app.sdk.publish_list_entry(_black_entry(str(penalty["decision_number"])))
    notarized = app.sdk.sign_pending()
    assert len(notarized) == 3  # the rule set, the penalty, the list entry

    profile = app.sdk.authority_profile(RESIDENT_ID)
    by_kind = {record["current"]["kind"]: record["current"] for record in profile["records"]}
    assert by_kind["penalty"]["fields"]["subject.id_number"] == "1101**********002X"
    assert by_kind["penalty"]["fields"]["subject.name"] == "张*"
    for record in by_kind.values():
        wait_for(lambda record=record: app.sdk.record_proof(record["id"])["proof"])

    answer = app.sdk.check(RESIDENT_ID, PROCUREMENT, datetime.date(2023, 6, 2))
    assert answer.decision == "restricted"
    (reason,) = answer.reasons
    assert reason["measure_name"] == "限制参与政府采购"
    assert reason["entry_record_id"] == by_kind["list_entry"]["id"]
    assert reason["basis_record_ids"] == [by_kind["penalty"]["id"]]
    with ChainReader(trust_chain.chain.url) as reader:
        validators, chain_id = reader.validators(), reader.chain_id()
    verdicts = verify_proofs(answer, validators, chain_id=chain_id)
    assert set(verdicts) == {by_kind["list_entry"]["id"], by_kind["penalty"]["id"]}
    assert all(verdict.valid for verdict in verdicts.values()), verdicts
    for record_id, proof in answer.proofs.items():
        bundle = ProofBundle.from_json(proof["bundle"])
        fields_root = next(r for r in by_kind.values() if r["id"] == record_id)["fields_root"]
        assert bytes(bundle.record.digest).hex() == fields_root

    assert app.sdk.check(RESIDENT_ID, PROCUREMENT, datetime.date(2026, 6, 1)).decision == (
        "allowed"
    )
    checks = app.sdk.authority_profile(RESIDENT_ID)["checks"]
    assert [(c["checker_uscc"], c["activity"]) for c in checks] == [(AUTHORITY, PROCUREMENT)] * 2

    needle = RESIDENT_ID.encode()
    assert _files_holding(trust_chain.chain.root.parent, needle) == []
    assert _files_holding(tmp_path, needle) == []
    assert RESIDENT_ID not in caplog.text
