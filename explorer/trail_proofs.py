"""Proving a domain event the registry reports against the explorer's own index of the chain.

A credit event or an archive custody event reaches the chain only as one leaf of a batch
whose Merkle root the Notary anchored. The registry hands over the leaf's parts (digest,
metadata and its salt, field hashes, the signing department's key and signature) and its
path in the batch. Here each is checked without trusting the registry:

    the parts            →  recompute the leaf (version 2 commitment, or version 1)
    metadata and salt    →  the salted metadata hash the leaf commits
    department signature →  over the leaf (or the signed root of its request), by the key
    the key              →  a key IssuerRegistry gave the ISSUER role, valid at the height,
                            as the explorer indexed it
    the path             →  from the leaf to the batch root
    the root             →  a ``BatchAnchored`` event in the explorer's index: block N,
                            department D, the leaf count the path assumes
    revocations          →  no ``BatchRevoked`` of the root, no ``LeafRevoked`` of the leaf

Only an event that passes all of it is shown as proven; one whose batch is not anchored (or
not indexed yet) is shown as pending, and any failed check as failed, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select

from chain.crypto import PublicKey
from chain.errors import ChainError
from chain.merkle import MerkleProof, leaf_hash, verify_proof
from contracts.trust import Role
from explorer import store_schema as t
from explorer.store import loads_args
from sdk.bundle_links import department_root_sign_bytes, department_sign_bytes, root_of_path
from sdk.evidence_trails import LeafMismatch, recompute_leaf

PROVEN = "proven"
"""Every check passed."""
REVOKED = "revoked"
"""Proven, and its leaf or its whole batch revoked on chain since."""
PENDING = "pending"
"""Not on chain yet (awaiting the department's signature, not sealed, not anchored or not
indexed yet): nothing to prove."""
FAILED = "failed"
"""A check failed: the registry's account does not match the chain."""

MAX_SIBLINGS = 64
"""Deepest Merkle path accepted (a batch of 2**64 leaves)."""


class NotProven(Exception):
    """A check failed; the message says which."""


@dataclass
class LeafProof:
    """The verdict on one event's leaf, and the chain facts it was proven with."""

    verdict: str
    reason: str = ""
    height: int | None = None
    tx_hash: str | None = None
    root: str | None = None
    leaf: str | None = None
    leaf_index: int | None = None
    leaf_count: int | None = None
    department: str | None = None
    """The USCC ``BatchAnchored`` names (the department whose key anchored the batch)."""
    signer_uscc: str | None = None
    """The department whose key signed the leaf."""
    checks: list[str] = field(default_factory=list)

    @property
    def proven(self) -> bool:
        """Whether the event is on chain as the registry says (revoked or not)."""
        return self.verdict in (PROVEN, REVOKED)


def _hex(value: Any, name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise NotProven(f"{name}: not hex text")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError as exc:
        raise NotProven(f"{name}: not hex") from exc
    if size is not None and len(raw) != size:
        raise NotProven(f"{name}: {len(raw)} bytes, not {size}")
    return raw


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise NotProven(f"{name}: not a non-negative integer")
    return value


def _recompute(record: dict[str, Any], metadata_salt: str | None) -> bytes:
    """The leaf from its parts; raises NotProven when it is not the leaf claimed."""
    try:
        return recompute_leaf(record, metadata_salt)
    except LeafMismatch as exc:
        raise NotProven(str(exc)) from exc


def _check_signature(record: dict[str, Any], commitment: bytes, chain_id: int) -> None:
    key_hex = record.get("departmentKey")
    if key_hex is None:
        return
    signature = _hex(record.get("departmentSignature"), "departmentSignature")
    request_proof = record.get("requestProof")
    try:
        if request_proof is None:
            signed = department_sign_bytes(chain_id, commitment)
        else:
            proof = MerkleProof.decode(_hex(request_proof, "requestProof"))
            signed = department_root_sign_bytes(
                chain_id, proof.leaf_count, root_of_path(commitment, proof)
            )
        PublicKey.from_bytes(_hex(key_hex, "departmentKey", 65)).verify(signature, signed)
    except (ChainError, ValueError) as exc:
        raise NotProven(f"the department's signature does not verify: {exc}") from exc


_ANCHORING = (
    select(t.events)
    .join(t.event_subjects, t.event_subjects.c.event_id == t.events.c.id)
    .where(
        t.event_subjects.c.kind == "batch",
        t.event_subjects.c.subject == bindparam("root"),
        t.events.c.contract == "Notary",
        t.events.c.name == "BatchAnchored",
    )
    .order_by(t.events.c.height)
    .limit(1)
)
_KEYS = select(t.department_keys).where(t.department_keys.c.public_key == bindparam("key"))
_REVOCATIONS = {
    kind: select(t.events.c.id)
    .join(t.event_subjects, t.event_subjects.c.event_id == t.events.c.id)
    .where(
        t.event_subjects.c.kind == kind,
        t.event_subjects.c.subject.in_(bindparam("subjects", expanding=True)),
        t.events.c.name == name,
    )
    .limit(1)
    for kind, name in (("batch", "BatchRevoked"), ("leaf", "LeafRevoked"))
}
"""The index reads of a proof, built once: a page proves every event of a history, and
building a statement per read cost about as much as running it."""


def _anchoring(c: Connection, root: str) -> dict[str, Any] | None:
    row = c.execute(_ANCHORING, {"root": root}).first()
    return None if row is None else {**dict(row._mapping), "args": loads_args(row.args)}


def _signing_department(c: Connection, key_hex: str, height: int) -> str:
    """The USCC whose IssuerRegistry key ``key_hex`` is, with the ISSUER role and valid at
    ``height`` as indexed; raises NotProven."""
    rows = c.execute(_KEYS, {"key": "0x" + key_hex.lower().removeprefix("0x")}).all()
    if not rows:
        raise NotProven("the signing key is no department's key on chain")
    for row in rows:
        until = int(row.valid_until)
        if int(row.roles) & int(Role.ISSUER) and int(row.valid_from) <= height < until:
            return str(row.uscc)
    raise NotProven(f"the signing key did not hold the ISSUER role at block {height}")


def _revoked(c: Connection, root: str, commitment: bytes) -> bool:
    leaves = {"0x" + commitment.hex(), "0x" + bytes(leaf_hash(commitment)).hex()}
    for kind, subjects in (("batch", {root}), ("leaf", leaves)):
        found = c.execute(_REVOCATIONS[kind], {"subjects": sorted(subjects)}).first()
        if found is not None:
            return True
    return False


def prove_leaf(
    c: Connection, record: Any, *, chain_id: int, metadata_salt: str | None
) -> LeafProof:
    """The verdict on the notarized record ``record`` (as ``/v1/audit`` gives it) against
    the index on ``c``. Never raises for what the registry sent."""
    if record is None:
        return LeafProof(PENDING, "awaiting the department's signature")
    if not isinstance(record, dict):
        return LeafProof(FAILED, "the registry's record is not an object")
    proof = LeafProof(PENDING)
    try:
        commitment = _recompute(record, metadata_salt)
        proof.leaf = "0x" + commitment.hex()
        proof.checks.append("leaf recomputed from its parts")
        _check_signature(record, commitment, chain_id)
        if record.get("departmentKey") is not None:
            proof.checks.append("department signature")
        batch = record.get("batch")
        if batch is None:
            proof.reason = "not sealed in a batch yet"
            return proof
        if not isinstance(batch, dict):
            raise NotProven("batch: not an object")
        root_bytes = _hex(batch.get("root"), "root", 32)
        proof.root = "0x" + root_bytes.hex()
        proof.leaf_index = _int(batch.get("leafIndex"), "leafIndex")
        proof.leaf_count = _int(batch.get("leafCount"), "leafCount")
        siblings = _hex(batch.get("siblings"), "siblings")
        if len(siblings) > 32 * MAX_SIBLINGS:
            raise NotProven("siblings: too long a path")
        try:
            path = MerkleProof.from_siblings(proof.leaf_index, proof.leaf_count, siblings)
            verify_proof(root_bytes, commitment, path, leaf_count=proof.leaf_count)  # type: ignore[arg-type]
        except (ValueError, ChainError) as exc:
            raise NotProven(f"the leaf's path does not lead to the batch root: {exc}") from exc
        proof.checks.append("Merkle path to the batch root")
        anchored = _anchoring(c, proof.root)
        if anchored is None:
            proof.reason = "the batch root is not anchored in the indexed chain (yet)"
            return proof
        proof.height = int(anchored["height"])
        proof.tx_hash = str(anchored["tx_hash"])
        proof.department = str(anchored["args"].get("department", ""))
        if int(anchored["args"].get("leafCount", -1)) != proof.leaf_count:
            raise NotProven(
                f"the chain anchored {anchored['args'].get('leafCount')} leaves under this "
                f"root, the path assumes {proof.leaf_count}"
            )
        proof.checks.append(f"root anchored in block {proof.height}")
        key_hex = record.get("departmentKey")
        if isinstance(key_hex, str):
            proof.signer_uscc = _signing_department(c, key_hex, proof.height)
            proof.checks.append("signing key registered and valid at that block")
        if _revoked(c, proof.root, commitment):
            proof.verdict = REVOKED
            proof.reason = "revoked on chain"
        else:
            proof.verdict = PROVEN
        return proof
    except NotProven as exc:
        proof.verdict = FAILED
        proof.reason = str(exc)
        return proof


__all__ = [
    "FAILED",
    "PENDING",
    "PROVEN",
    "REVOKED",
    "LeafProof",
    "NotProven",
    "prove_leaf",
]
