"""The leaves of a credit record's or an archive package's history in an evidence bundle,
checked offline: each listed leaf is recomputed from its parts (digest, metadata under its
salt, field hashes, the department's key) and its Merkle path must lead to the root that a
proven receipt's ``BatchAnchored`` log anchors, for that log's leaf count. Run by
:func:`sdk.evidence.verify_evidence` after the receipts themselves are proven."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from chain.errors import ChainError
from chain.merkle import MerkleProof, verify_proof
from chain.primitives import Hash32
from chain.types import Receipt
from contracts.errors import ContractsError
from contracts.trust import ContractCodec
from sdk.commitments import (
    COMMITMENT_SALT_SIZE,
    department_record_commitment,
    record_commitment,
    salted_metadata_hash,
)
from sdk.errors import SdkError

TRAIL_KINDS = ("credit", "archive")
"""Evidence subjects whose events carry leaves."""

_NOTARY = ContractCodec.load("Notary")


class LeafMismatch(SdkError):
    """A leaf's parts do not make the leaf it claims, or its path misses its root."""


def _hex(value: Any, name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise LeafMismatch(f"{name}: not hex text")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError as exc:
        raise LeafMismatch(f"{name}: not hex") from exc
    if size is not None and len(raw) != size:
        raise LeafMismatch(f"{name}: {len(raw)} bytes, not {size}")
    return raw


def recompute_leaf(record: Mapping[str, Any], metadata_salt: str | None) -> bytes:
    """The leaf (record commitment) from its parts, checked against the commitment the record
    claims, and the metadata shown against the metadata hash when its salt is given; raises
    LeafMismatch."""
    commitment = _hex(record.get("commitment"), "commitment", 32)
    digest = _hex(record.get("digest"), "digest", 32)
    metadata_hash = _hex(record.get("metadataHash"), "metadataHash", 32)
    fields = record.get("fieldHashes") or {}
    if not isinstance(fields, Mapping):
        raise LeafMismatch("fieldHashes: not an object")
    pairs = sorted((str(k), _hex(v, f"field {k}", 32)) for k, v in fields.items())
    key_hex = record.get("departmentKey")
    try:
        if key_hex is None:
            recomputed = record_commitment(
                str(uuid.UUID(str(record.get("recordId")))), digest, metadata_hash, pairs
            )
        else:
            recomputed = department_record_commitment(
                _hex(key_hex, "departmentKey", 65), digest, metadata_hash, pairs
            )
    except ValueError as exc:
        raise LeafMismatch(f"the leaf's parts do not make a leaf: {exc}") from exc
    if bytes(recomputed) != commitment:
        raise LeafMismatch("the leaf is not the commitment of its digest, metadata and key")
    if metadata_salt is not None:
        metadata = record.get("metadata")
        if not isinstance(metadata, Mapping):
            raise LeafMismatch("metadata: not an object")
        salt = _hex(metadata_salt, "metadataSalt", COMMITMENT_SALT_SIZE)
        try:
            salted = salted_metadata_hash(dict(metadata), salt)
        except (TypeError, ValueError) as exc:
            raise LeafMismatch(f"metadata cannot be hashed: {exc}") from exc
        if bytes(salted) != metadata_hash:
            raise LeafMismatch("the metadata shown is not what the leaf commits")
    return commitment


def _anchored(receipt: Receipt, index: object) -> tuple[bytes, int]:
    """The root and leaf count of the ``BatchAnchored`` log at ``index`` of ``receipt``."""
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(receipt.logs):
        raise LeafMismatch("a listed anchoring is in no proven receipt")
    try:
        decoded = _NOTARY.decode_log(receipt.logs[index])
    except ContractsError as exc:
        raise LeafMismatch(f"the listed log is no Notary event: {exc}") from exc
    if decoded.name != "BatchAnchored":
        raise LeafMismatch(f"the listed log is {decoded.name}, not BatchAnchored")
    root = decoded.args["root"]
    if isinstance(root, str):
        root = bytes.fromhex(root.removeprefix("0x"))
    return bytes(root), int(decoded.args["leafCount"])


def verify_leaves(events: Sequence[Mapping[str, Any]], receipts: Mapping[str, Receipt]) -> int:
    """Check every leaf listed with ``events`` (each naming ``txHash`` and ``logIndex`` of a
    proven receipt in ``receipts``, by 0x-hash); the number of leaves checked. Raises
    LeafMismatch."""
    checked = 0
    for event in events:
        receipt = receipts.get(str(event.get("txHash")))
        if receipt is None:
            raise LeafMismatch("a listed anchoring is in no proven receipt")
        root, count = _anchored(receipt, event.get("logIndex"))
        leaves = event.get("leaves")
        if not isinstance(leaves, list) or not leaves:
            raise LeafMismatch("an anchoring lists no leaves")
        for leaf in leaves:
            record = leaf.get("record") if isinstance(leaf, Mapping) else None
            if not isinstance(record, Mapping) or not isinstance(record.get("batch"), Mapping):
                raise LeafMismatch("a leaf has no record with its path")
            batch = record["batch"]
            try:
                commitment = recompute_leaf(record, leaf.get("metadataSalt"))
                path = MerkleProof.from_siblings(
                    int(batch["leafIndex"]), count, bytes.fromhex(str(batch["siblings"]))
                )
                verify_proof(Hash32(root), commitment, path, leaf_count=count)
            except LeafMismatch as exc:
                raise LeafMismatch(f"leaf of {leaf.get('kind')}: {exc}") from exc
            except (KeyError, TypeError, ValueError, ChainError) as exc:
                raise LeafMismatch(f"leaf of {leaf.get('kind')}: {exc}") from exc
            checked += 1
    return checked
