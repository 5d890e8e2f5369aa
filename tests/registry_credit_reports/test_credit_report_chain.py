"""A credit report anchored on a real dev chain node: once the issuing department has signed
the report's event with its other pending events, the shared batcher anchors the PDF's SM3,
and the report's JSON carries a proof bundle that verifies offline — with the department's
own signature, for exactly the PDF's SM3 — beside the bundles of the records it lists. The
genuine-check page then says the report is on chain."""

from __future__ import annotations

from typing import Any

from credit_harness import CreditApp, penalties, penalty_file, wait_for
from registry_harness import TrustChain
from report_harness import ENTERPRISE_USCC, issue_report

from chain.crypto import sm3
from sdk.bundle import ProofBundle, verify_bundle
from sdk.chain_reader import ChainReader


def _anchored(app: CreditApp, report_id: str) -> dict[str, Any] | None:
    stored: dict[str, Any] = app.http.get(f"/v1/credit/reports/{report_id}").json()
    if stored["anchoring"]["bundle"] is None:
        return None
    if any(proof is None for proof in stored["record_proofs"].values()):
        return None
    return stored


def test_report_pdf_is_anchored_and_its_bundle_verifies_offline(
    chain_app: CreditApp, trust_chain: TrustChain
) -> None:
    app = chain_app
    app.sdk.import_file(penalty_file(penalties(1)))
    issued = issue_report(app, subject=ENTERPRISE_USCC)
    notarized = app.sdk.sign_pending()
    assert issued["event_id"] in notarized

    stored = wait_for(lambda: _anchored(app, issued["report_id"]))
    with ChainReader(trust_chain.chain.url) as reader:
        validators, chain_id = reader.validators(), reader.chain_id()
    pdf = app.http.get(f"/v1/credit/reports/{issued['report_id']}/pdf").content
    bundle = ProofBundle.from_json(stored["anchoring"]["bundle"])
    verdict = verify_bundle(bundle, validators, chain_id=chain_id, expected_digest=sm3(pdf))
    assert verdict.valid, verdict
    assert verdict.signed_by is not None
    for proof in stored["record_proofs"].values():
        assert verify_bundle(
            ProofBundle.from_json(proof["bundle"]), validators, chain_id=chain_id
        ).valid

    page = app.http.get(f"/credit/reports/{issued['report_id']}", params={"sm3": sm3(pdf).hex()})
    assert "报告真实，未被修改" in page.text and "已上链存证" in page.text
