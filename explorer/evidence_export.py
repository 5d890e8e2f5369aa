"""Evidence export: for a transaction, a notarized record or a license, the zip of
:mod:`sdk.evidence` — the proof bundle of every transaction of its history (proofs read from
the node and checked against what the explorer indexed), and a Chinese PDF report with a QR
code, rendered by :mod:`sdk.pdf_report`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from chain.commit import Validator, ValidatorSet
from chain.merkle import MerkleProof
from chain.types import CommitCertificate, Header, Receipt, Transaction
from explorer import queries as db
from explorer import store_schema as t
from explorer.i18n import EVENT_NAMES, license_status
from explorer.node_feed import NodeFeed
from explorer.proofs import ProofRefused, verified_transaction_proof
from sdk.evidence import Evidence, EvidenceItem, qr_payload, write_evidence_zip
from sdk.pdf_report import Document, Heading, KeyValueTable, Paragraph, QRCode, Table, render_pdf

MAX_EXPORT_TXS = 200
"""Most transactions one export proves (a record's or license's history is far shorter)."""

SUBJECT_NAMES = {"transaction": "交易", "record": "存证记录", "license": "电子证照"}


class ExportRefused(Exception):
    """Nothing to export, or a history too long to export at once."""


def _validators_at(c: Connection, height: int) -> ValidatorSet:
    rows = c.execute(
        select(t.signers.c.validator, t.signers.c.power).where(t.signers.c.height == height)
    ).all()
    keys = {
        str(r.address): str(r.public_key)
        for r in c.execute(select(t.validator_changes.c.address, t.validator_changes.c.public_key))
    }
    return ValidatorSet.of(
        Validator(bytes.fromhex(keys[str(r.validator)][2:]), int(r.power))  # type: ignore[arg-type]
        for r in rows
    )


def evidence_item(c: Connection, feed: NodeFeed, tx_hash: str) -> EvidenceItem:
    proof = verified_transaction_proof(c, feed, tx_hash)
    if proof is None or proof["certificate"] is None:
        raise ExportRefused(f"transaction {tx_hash} is not indexed with a certificate")
    raw = c.execute(select(t.transactions.c.raw).where(t.transactions.c.hash == tx_hash)).scalar()
    assert raw is not None
    header = Header.decode(bytes.fromhex(proof["header"][2:]))
    return EvidenceItem(
        transaction=Transaction.decode(bytes(raw)),
        receipt=Receipt.decode(bytes.fromhex(proof["receiptProof"]["leaf"][2:])),
        header=header,
        certificate=CommitCertificate.decode(bytes.fromhex(proof["certificate"][2:])),
        tx_proof=MerkleProof.decode(bytes.fromhex(proof["transactionProof"]["encoded"][2:])),
        receipt_proof=MerkleProof.decode(bytes.fromhex(proof["receiptProof"]["encoded"][2:])),
        validators=_validators_at(c, header.height),
    )


def history_events(c: Connection, kind: str, ref: str) -> list[dict[str, Any]]:
    """The events an export is about: a transaction's own, or a record's or license's
    history (following a license through its changes)."""
    if kind == "transaction":
        return db.events_of_transaction(c, ref)
    if kind == "record":
        events = db.subject_events(c, "leaf", ref, limit=MAX_EXPORT_TXS, oldest_first=True)
        roots = {ref} | {str(e["args"]["root"]) for e in events}
        for root in sorted(roots):
            events += db.subject_events(c, "batch", root, limit=MAX_EXPORT_TXS, oldest_first=True)
        return sorted({e["id"]: e for e in events}.values(), key=lambda e: (e["height"], e["id"]))
    seen: set[str] = set()
    found: dict[int, dict[str, Any]] = {}
    pending = [ref]
    while pending and len(seen) < 20:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for event in db.subject_events(
            c, "license", current, limit=MAX_EXPORT_TXS, oldest_first=True
        ):
            found[event["id"]] = event
            if event["name"] == "LicenseChanged":
                pending.extend(str(event["args"][k]) for k in ("oldId", "newId"))
    return sorted(found.values(), key=lambda e: (e["height"], e["id"]))


def build_evidence(
    c: Connection, feed: NodeFeed, *, chain_id: int, kind: str, ref: str, now: datetime
) -> Evidence:
    """The proof bundle of ``kind`` (transaction, record, license) ``ref``. Raises
    ExportRefused, ProofRefused or NodeUnavailable."""
    events = history_events(c, kind, ref)
    tx_hashes = (
        [ref] if kind == "transaction" else list(dict.fromkeys(e["tx_hash"] for e in events))
    )
    if not tx_hashes or (kind != "transaction" and not events):
        raise ExportRefused(f"nothing on chain is about {ref}")
    if len(tx_hashes) > MAX_EXPORT_TXS:
        raise ExportRefused(f"{len(tx_hashes)} transactions: more than one export proves")
    items = [evidence_item(c, feed, h) for h in tx_hashes]
    return Evidence(
        chain_id=chain_id,
        subject={"kind": kind, "ref": ref},
        items=tuple(items),
        events=tuple(
            {
                "txHash": e["tx_hash"],
                "logIndex": int(e["log_index"]),
                "height": int(e["height"]),
                "contract": e["contract"],
                "name": e["name"],
                "args": e["args"],
            }
            for e in events
        ),
        exported_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _event_text(event: dict[str, Any]) -> str:
    name = EVENT_NAMES.get(event["name"], (event["name"], event["name"]))[0]
    if event["name"] == "StatusChanged":
        name += f"：{license_status('zh', int(event['args']['status']))}"
    return name


def report_document(
    evidence: Evidence, *, auditor: str | None, evidence_json: bytes, now: datetime
) -> Document:
    """The Chinese report of an evidence bundle."""
    subject = evidence.subject
    digest = qr_payload(evidence_json)
    rows = [
        ("证据对象", SUBJECT_NAMES.get(subject["kind"], subject["kind"])),
        ("标识", subject["ref"]),
        ("链标识", str(evidence.chain_id)),
        ("交易数", str(len(evidence.items))),
        ("导出时间（UTC）", evidence.exported_at),
        ("导出审计员", auditor or "—"),
        ("evidence.json SM3", digest.split(":")[-1]),
    ]
    blocks: list[Any] = [
        KeyValueTable(rows),
        Heading("链上事件"),
        Table(
            ["高度", "事件", "合约", "交易"],
            [
                [
                    str(e["height"]),
                    _event_text(dict(e)),
                    str(e["contract"]),
                    str(e["txHash"])[:18] + "…",
                ]
                for e in evidence.events
            ]
            or [["—", "—", "—", "—"]],
            widths=[1, 2, 2, 3],
        ),
        Heading("证明链"),
        Table(
            ["高度", "区块哈希", "签名节点数"],
            [
                [
                    str(i.header.height),
                    "0x" + i.header.hash.hex()[:24] + "…",
                    str(len(i.certificate.signatures)),
                ]
                for i in evidence.items
            ],
            widths=[1, 4, 1],
        ),
        Paragraph(
            "每笔交易的 SM2 签名、交易与回执的默克尔证明、区块头及其提交证书"
            "均收录于 evidence.json，可离线核验：lianxin verify-evidence 文件名。"
            "二维码内容为 evidence.json 的 SM3 摘要。"
        ),
        QRCode(digest, caption="evidence.json SM3"),
    ]
    return Document(
        title="链信区块链 审计证据报告",
        subtitle=SUBJECT_NAMES.get(subject["kind"], subject["kind"]) + " " + subject["ref"][:24],
        blocks=blocks,
        created=now,
        footer="链信 区块链浏览器 导出",
        author="链信 区块链浏览器",
        keywords=(digest,),
    )


def export_zip(
    c: Connection,
    feed: NodeFeed,
    *,
    chain_id: int,
    kind: str,
    ref: str,
    auditor: str | None,
    now: datetime,
) -> bytes:
    """The evidence zip of ``kind`` ``ref``."""
    evidence = build_evidence(c, feed, chain_id=chain_id, kind=kind, ref=ref, now=now)
    evidence_json = evidence.to_json_bytes()
    pdf = render_pdf(
        report_document(evidence, auditor=auditor, evidence_json=evidence_json, now=now)
    )
    return write_evidence_zip(evidence, pdf)


__all__ = ["ExportRefused", "ProofRefused", "build_evidence", "export_zip", "report_document"]
