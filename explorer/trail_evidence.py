"""Evidence export of a credit record's or an archive package's history, and its offline
check.

The zip is :mod:`sdk.evidence`'s: the anchoring transaction of every proven event's batch
with its proofs under a certified header. Each ``BatchAnchored`` event listed in it carries
``leaves``: for every event of the history anchored under that root, the leaf's parts (so
the leaf is recomputed), its metadata and salt, and its Merkle path. ``lianxin
verify-evidence`` checks the transactions (:func:`sdk.evidence.verify_evidence`) and then,
here, that each leaf is the commitment of its parts and leads by its path to the root the
proven receipt's log anchors, with the leaf count that log gives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from explorer.decoding import ContractAbi, DecodingError
from explorer.evidence_export import evidence_item
from explorer.i18n import CREDIT_KINDS, VERDICTS
from explorer.node_feed import NodeFeed
from explorer.trail_proofs import prove_leaf
from explorer.trails import TrailEvent
from sdk.evidence import Evidence, EvidenceInvalid, qr_payload, write_evidence_zip
from sdk.evidence_trails import LeafMismatch, verify_leaves
from sdk.pdf_report import Document, Heading, KeyValueTable, Paragraph, QRCode, Table, render_pdf

TRAIL_KINDS = {"credit": "信用记录", "archive": "档案包"}
MAX_TRAIL_TXS = 200
"""Most anchoring transactions one export proves."""


class TrailExportRefused(Exception):
    """Nothing of the history is proven, or it is too long to export at once."""


def _records(answer: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """Each (record, metadata salt) of the registry's answer, in the order of the trail."""
    found: list[tuple[dict[str, Any], str | None]] = []
    for entry in [*answer.get("versions", []), *answer["events"]]:
        found.append((entry.get("record"), entry.get("metadataSalt")))
    return found


def build_trail_evidence(
    c: Connection,
    feed: NodeFeed,
    *,
    chain_id: int,
    kind: str,
    key: dict[str, str],
    answer: dict[str, Any],
    trail: list[TrailEvent],
    now: datetime,
) -> Evidence:
    """The evidence of the proven events of ``trail`` (made from ``answer``)."""
    by_root: dict[str, dict[str, Any]] = {}
    for event, (record, salt) in zip(trail, _records(answer), strict=True):
        proof = event.proof
        if not proof.proven or proof.tx_hash is None or proof.root is None:
            continue
        anchored = by_root.setdefault(proof.root, {"txHash": proof.tx_hash, "leaves": []})
        anchored["leaves"].append(
            {
                "kind": event.kind,
                "at": event.at,
                "subject": event.subject,
                "verdict": proof.verdict,
                "record": record,
                "metadataSalt": salt,
            }
        )
    if not by_root:
        raise TrailExportRefused("no event of this history is proven on chain yet")
    if len(by_root) > MAX_TRAIL_TXS:
        raise TrailExportRefused(f"{len(by_root)} batches: more than one export proves")
    tx_hashes = list(dict.fromkeys(v["txHash"] for v in by_root.values()))
    items = [evidence_item(c, feed, h) for h in tx_hashes]
    notary = ContractAbi("Notary")
    events: list[dict[str, Any]] = []
    for item in items:
        tx_hash = "0x" + item.transaction.hash.hex()
        for index, log in enumerate(item.receipt.logs):
            try:
                decoded = notary.decode_log(log)
            except DecodingError:
                continue
            root = str(decoded.args.get("root"))
            if decoded.name != "BatchAnchored" or root not in by_root:
                continue
            events.append(
                {
                    "txHash": tx_hash,
                    "logIndex": index,
                    "height": item.header.height,
                    "contract": "Notary",
                    "name": "BatchAnchored",
                    "args": dict(decoded.args),
                    "leaves": by_root[root]["leaves"],
                }
            )
    return Evidence(
        chain_id=chain_id,
        subject={"kind": kind, "ref": " ".join(key.values())},
        items=tuple(items),
        events=tuple(events),
        exported_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def trail_report(
    evidence: Evidence, trail: list[TrailEvent], *, auditor: str | None, now: datetime
) -> Document:
    """The Chinese report of a history's evidence."""
    digest = qr_payload(evidence.to_json_bytes())
    kind = str(evidence.subject["kind"])
    rows = [
        ("证据对象", TRAIL_KINDS.get(kind, kind)),
        ("标识", str(evidence.subject["ref"])),
        ("链标识", str(evidence.chain_id)),
        ("上链交易数", str(len(evidence.items))),
        ("导出时间（UTC）", evidence.exported_at),
        ("导出审计员", auditor or "—"),
        ("evidence.json SM3", digest.split(":")[-1]),
    ]
    return Document(
        title="链信区块链 审计证据报告",
        subtitle=TRAIL_KINDS.get(kind, kind) + " " + str(evidence.subject["ref"])[:40],
        blocks=[
            KeyValueTable(rows),
            Heading("事件与核验结论"),
            Table(
                ["时间", "事件", "结论", "高度"],
                [
                    [
                        e.at[:19] or "—",
                        CREDIT_KINDS.get(e.kind, (e.kind, e.kind))[0],
                        VERDICTS.get(e.proof.verdict, (e.proof.verdict,))[0],
                        "—" if e.proof.height is None else str(e.proof.height),
                    ]
                    for e in trail
                ],
                widths=[3, 2, 2, 1],
            ),
            Paragraph(
                "每个已证明事件的叶子（承诺）、其默克尔路径、批次根上链交易及其区块证明均收录于 "
                "evidence.json，可离线核验：lianxin verify-evidence 文件名。未证明的事件不收录。"
            ),
            QRCode(digest, caption="evidence.json SM3"),
        ],
        created=now,
        footer="链信 区块链浏览器 导出",
        author="链信 区块链浏览器",
        keywords=(digest,),
    )


def trail_export_zip(
    c: Connection,
    feed: NodeFeed,
    *,
    chain_id: int,
    kind: str,
    key: dict[str, str],
    answer: dict[str, Any],
    trail: list[TrailEvent],
    auditor: str | None,
    now: datetime,
) -> bytes:
    """The evidence zip of a credit record's or archive package's proven history."""
    evidence = build_trail_evidence(
        c, feed, chain_id=chain_id, kind=kind, key=key, answer=answer, trail=trail, now=now
    )
    pdf = render_pdf(trail_report(evidence, trail, auditor=auditor, now=now))
    return write_evidence_zip(evidence, pdf)


def verify_trail_leaves(evidence: Evidence) -> int:
    """For the evidence of a history (subject kind ``credit`` or ``archive``): check every
    listed leaf against the root its proven receipt's log anchors; the number of leaves.
    Raises EvidenceInvalid. :func:`sdk.evidence.verify_evidence` runs the same check."""
    if evidence.subject.get("kind") not in TRAIL_KINDS:
        return 0
    receipts = {"0x" + i.transaction.hash.hex(): i.receipt for i in evidence.items}
    try:
        return verify_leaves(evidence.events, receipts)
    except LeafMismatch as exc:
        raise EvidenceInvalid(str(exc)) from exc


__all__ = [
    "TrailExportRefused",
    "build_trail_evidence",
    "prove_leaf",
    "trail_export_zip",
    "verify_trail_leaves",
]
