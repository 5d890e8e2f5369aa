"""Evidence packages an auditor files with a case: a zip holding ``evidence.json`` (the proof
bundle), ``report.pdf`` (the same facts in Chinese, with a QR code carrying the bundle's
SM3) and ``manifest.json`` (the SM3 of both), and their offline verification.

The bundle proves transactions: for each, its signed encoding, its receipt, both Merkle proofs
under the block header, the header, the block's commit certificate and the validator set
that ruled the height. :func:`verify_evidence` checks every link without a network:

    transaction (SM2 signature, hash)  →  tx proof under the header's tx root
    receipt (names the transaction)    →  receipt proof under the header's receipt root
    header (hash)                      →  commit certificate by ≥ 2/3 of the ruling set
    ruling set                         →  its hash committed in the header, and equal to the
                                          set the verifier trusts when it passes one

The events a verifier reads (a record anchored or revoked, a license's status) are in the
proven receipts; the bundle's ``events`` list is a reading aid, checked to be among them.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain.bounded_json import loads_bounded
from chain.commit import CommitError, Validator, ValidatorSet, verify_commit_certificate
from chain.crypto import sm3
from chain.errors import ChainError
from chain.merkle import MerkleProof, verify_proof
from chain.primitives import Hash32, PublicKeyBytes
from chain.types import CommitCertificate, Header, Receipt, Transaction
from chain.validation import verify_transaction_signature
from sdk.errors import SdkError
from sdk.evidence_trails import TRAIL_KINDS, LeafMismatch, verify_leaves

EVIDENCE_KIND = "lianxin-evidence"
EVIDENCE_VERSION = 1
MAX_EVIDENCE_BYTES = 32 * 1024 * 1024
"""Largest evidence zip (and largest member) read."""
MAX_ITEMS = 1_000
"""Most transactions in one bundle."""
MEMBERS = ("evidence.json", "report.pdf", "manifest.json")


class EvidenceInvalid(SdkError):
    """Evidence that does not verify; ``reason`` says which link failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hex(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise EvidenceInvalid(f"{name}: expected 0x hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise EvidenceInvalid(f"{name}: not hex") from exc


def _0x(value: bytes) -> str:
    return "0x" + bytes(value).hex()


@dataclass(frozen=True)
class EvidenceItem:
    """One proven transaction."""

    transaction: Transaction
    receipt: Receipt
    header: Header
    certificate: CommitCertificate
    tx_proof: MerkleProof
    receipt_proof: MerkleProof
    validators: ValidatorSet

    def to_json(self) -> dict[str, Any]:
        """The item's JSON form."""
        return {
            "txHash": _0x(self.transaction.hash),
            "height": self.header.height,
            "transaction": _0x(self.transaction.encode()),
            "receipt": _0x(self.receipt.encode()),
            "header": _0x(self.header.encode()),
            "certificate": _0x(self.certificate.encode()),
            "txProof": _0x(self.tx_proof.encode()),
            "receiptProof": _0x(self.receipt_proof.encode()),
            "validators": [
                {"publicKey": _0x(v.public_key), "power": v.power}
                for v in self.validators.validators
            ],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> EvidenceItem:
        """Parse an item; raises EvidenceInvalid for a malformed one."""
        try:
            members = value["validators"]
            if not isinstance(members, list) or not 0 < len(members) <= 1_000:
                raise EvidenceInvalid("validators: expected a non-empty list")
            return cls(
                transaction=Transaction.decode(_hex(value["transaction"], "transaction")),
                receipt=Receipt.decode(_hex(value["receipt"], "receipt")),
                header=Header.decode(_hex(value["header"], "header")),
                certificate=CommitCertificate.decode(_hex(value["certificate"], "certificate")),
                tx_proof=MerkleProof.decode(_hex(value["txProof"], "txProof")),
                receipt_proof=MerkleProof.decode(_hex(value["receiptProof"], "receiptProof")),
                validators=ValidatorSet.of(
                    Validator(
                        PublicKeyBytes(_hex(m["publicKey"], "publicKey")),
                        _uint64(m["power"], "power"),
                    )
                    for m in members
                ),
            )
        except (KeyError, TypeError, ValueError, ChainError) as exc:
            raise EvidenceInvalid(f"item does not parse: {exc!r}") from exc


def _uint64(value: Any, name: str) -> int:
    """An integer of the JSON in [0, 2**64) (a chain id, a validator's power); raises
    EvidenceInvalid otherwise (a wider power would fail in the validator set's hash, far
    from the parsing)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise EvidenceInvalid(f"{name}: expected an integer of at most 64 bits, got {value!r}")
    return value


@dataclass(frozen=True)
class Evidence:
    """A proof bundle: the chain, what it is about, the proven transactions and the events
    read from them."""

    chain_id: int
    subject: Mapping[str, str]
    """``{"kind": "transaction" | "record" | "license", "ref": …}``."""
    items: Sequence[EvidenceItem]
    events: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    """Decoded events (contract, name, args, txHash, logIndex) for reading."""
    exported_at: str = ""

    def to_json_bytes(self) -> bytes:
        """The canonical JSON (sorted keys, UTF-8, no extra whitespace)."""
        body = {
            "kind": EVIDENCE_KIND,
            "version": EVIDENCE_VERSION,
            "chainId": self.chain_id,
            "subject": dict(self.subject),
            "exportedAt": self.exported_at,
            "items": [item.to_json() for item in self.items],
            "events": [dict(e) for e in self.events],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json_bytes(cls, data: bytes) -> Evidence:
        """Parse ``evidence.json``; raises EvidenceInvalid."""
        try:
            body = loads_bounded(data, max_bytes=MAX_EVIDENCE_BYTES, max_depth=12)
        except (ChainError, ValueError) as exc:
            raise EvidenceInvalid(f"evidence.json does not parse: {exc}") from exc
        if not isinstance(body, dict) or body.get("kind") != EVIDENCE_KIND:
            raise EvidenceInvalid("not a lianxin evidence bundle")
        if body.get("version") != EVIDENCE_VERSION:
            raise EvidenceInvalid(f"unsupported evidence version {body.get('version')!r}")
        items = body.get("items")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
            raise EvidenceInvalid("items: expected 1..1000 transactions")
        chain_id = _uint64(body.get("chainId"), "chainId")
        subject = body.get("subject") or {}
        if not isinstance(subject, dict):
            raise EvidenceInvalid("subject: expected an object")
        events = body.get("events") or []
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise EvidenceInvalid("events: expected a list of objects")
        return cls(
            chain_id=chain_id,
            subject=dict(subject),
            items=tuple(EvidenceItem.from_json(item) for item in items),
            events=tuple(events),
            exported_at=str(body.get("exportedAt", "")),
        )


@dataclass(frozen=True)
class EvidenceReport:
    """What a verification established."""

    chain_id: int
    subject: Mapping[str, str]
    transactions: int
    heights: tuple[int, ...]
    trusted_set: bool
    """Whether every ruling set equalled the set the verifier trusts (else each set is the
    one its header commits to, taken from the evidence)."""
    leaves: int = 0
    """Leaves of a credit record's or archive package's history checked against the roots
    their proven receipts anchor (:mod:`sdk.evidence_trails`)."""


def verify_item(item: EvidenceItem, *, chain_id: int, trusted: ValidatorSet | None) -> None:
    """Check one item's links (module docstring); raises EvidenceInvalid."""
    tx, receipt, header = item.transaction, item.receipt, item.header
    where = f"transaction 0x{tx.hash.hex()}"
    try:
        verify_transaction_signature(tx)
    except ChainError as exc:
        raise EvidenceInvalid(f"{where}: signature: {exc}") from exc
    if tx.chain_id != chain_id:
        raise EvidenceInvalid(f"{where}: chain id {tx.chain_id}, evidence says {chain_id}")
    if receipt.tx_hash != tx.hash:
        raise EvidenceInvalid(f"{where}: the receipt is another transaction's")
    try:
        verify_proof(header.tx_root, tx.hash, item.tx_proof)
        verify_proof(header.receipt_root, receipt.encode(), item.receipt_proof)
    except ChainError as exc:
        raise EvidenceInvalid(f"{where}: Merkle proof: {exc}") from exc
    if item.validators.hash() != header.validator_set_hash:
        raise EvidenceInvalid(f"{where}: the validator set is not the one the header names")
    if trusted is not None and item.validators.hash() != trusted.hash():
        raise EvidenceInvalid(f"{where}: the ruling set is not the set the verifier trusts")
    try:
        verify_commit_certificate(
            item.certificate,
            item.validators,
            chain_id=chain_id,
            block_hash=Hash32(header.hash),
            height=header.height,
        )
    except CommitError as exc:
        raise EvidenceInvalid(f"{where}: commit certificate: {exc}") from exc


def verify_evidence(evidence: Evidence, *, trusted: ValidatorSet | None = None) -> EvidenceReport:
    """Verify every item and that each listed event is in a proven receipt; raises
    EvidenceInvalid at the first failing link."""
    proven_logs: set[tuple[str, int]] = set()
    for item in evidence.items:
        verify_item(item, chain_id=evidence.chain_id, trusted=trusted)
        for index, _ in enumerate(item.receipt.logs):
            proven_logs.add((_0x(item.transaction.hash), index))
    for event in evidence.events:
        log_index = event.get("logIndex")
        listed = (str(event.get("txHash")), log_index)
        if not isinstance(log_index, int) or listed not in proven_logs:
            raise EvidenceInvalid(f"event {event.get('name')} is in no proven receipt")
    leaves = 0
    if evidence.subject.get("kind") in TRAIL_KINDS:
        receipts = {_0x(item.transaction.hash): item.receipt for item in evidence.items}
        try:
            leaves = verify_leaves(evidence.events, receipts)
        except LeafMismatch as exc:
            raise EvidenceInvalid(str(exc)) from exc
    return EvidenceReport(
        chain_id=evidence.chain_id,
        subject=evidence.subject,
        transactions=len(evidence.items),
        heights=tuple(sorted({item.header.height for item in evidence.items})),
        trusted_set=trusted is not None,
        leaves=leaves,
    )


def manifest(members: Mapping[str, bytes]) -> bytes:
    """``manifest.json``: the SM3 of each member."""
    digests = {name: _0x(sm3(data)) for name, data in sorted(members.items())}
    return json.dumps({"sm3": digests}, sort_keys=True, indent=2).encode()


def qr_payload(evidence_json: bytes) -> str:
    """What the report's QR code carries: the SM3 of ``evidence.json``."""
    return f"lianxin-evidence:sm3:{sm3(evidence_json).hex()}"


def write_evidence_zip(evidence: Evidence, report_pdf: bytes) -> bytes:
    """The evidence zip (stored in a fixed order with fixed times, so it is reproducible)."""
    evidence_json = evidence.to_json_bytes()
    members = {"evidence.json": evidence_json, "report.pdf": report_pdf}
    members["manifest.json"] = manifest(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in MEMBERS:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[name])
    return buffer.getvalue()


def read_evidence_zip(data: bytes) -> tuple[Evidence, dict[str, bytes]]:
    """The bundle and members of an evidence zip, with the manifest's digests checked;
    raises EvidenceInvalid."""
    if len(data) > MAX_EVIDENCE_BYTES:
        raise EvidenceInvalid("evidence file too large")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if sorted(names) != sorted(MEMBERS):
                raise EvidenceInvalid(f"expected members {MEMBERS}, found {names}")
            members: dict[str, bytes] = {}
            for name in MEMBERS:
                if archive.getinfo(name).file_size > MAX_EVIDENCE_BYTES:
                    raise EvidenceInvalid(f"{name} too large")
                members[name] = archive.read(name)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise EvidenceInvalid(f"not an evidence zip: {exc}") from exc
    expected = manifest({k: v for k, v in members.items() if k != "manifest.json"})
    if members["manifest.json"] != expected:
        raise EvidenceInvalid("manifest.json does not match the SM3 of the files")
    return Evidence.from_json_bytes(members["evidence.json"]), members


def verify_evidence_zip(data: bytes, *, trusted: ValidatorSet | None = None) -> EvidenceReport:
    """Read and verify an evidence zip offline; raises EvidenceInvalid."""
    evidence, members = read_evidence_zip(data)
    if qr_payload(members["evidence.json"]).split(":")[-1].encode() not in members["report.pdf"]:
        raise EvidenceInvalid("report.pdf does not carry the SM3 of evidence.json")
    return verify_evidence(evidence, trusted=trusted)
