"""Proof bundles: everything needed to show, without a network, that a notarized record was
anchored on a lianxin chain by an authorised issuer.

A bundle is a chain of links, each checked by :func:`verify_bundle`:

    record digest (+ metadata hash, salted field hashes)  →  record commitment (a leaf)
    → Merkle path to the batch root (chain.merkle, with the batch's leaf count)
    → the anchoring transaction, signed by the issuer key, calling Notary.anchor(root, ...)
    → its receipt (status 1, BatchAnchored event) proven under the header's receipt root,
      and the transaction hash proven under the header's tx root
    → the block header, whose hash the commit certificate certifies by ≥ 2/3 of the
      validator set the verifier trusts
    → the IssuerRegistry key record of the signing key, valid at the anchoring height
    → the notarizing department's own SM2 signature over the commitment (version 2), by a
      key IssuerRegistry gave the ISSUER role at the anchoring height — or, for a record of
      a bulk request, its one signature over the Merkle root of the request's commitments,
      with the record's path to that root.

Version 2 commitments hide what they commit to: the metadata hash is salted like every
field hash (:func:`salted_metadata_hash`), and the leaf names the department's key
(:func:`department_record_commitment`). Bundles of version 1 (records notarized before)
are read and verified as they were.

Every bundle has one canonical JSON form (:meth:`ProofBundle.canonical_json`): sorted keys,
no whitespace, byte strings as ``0x`` hex, ledger types as their canonical RLP encodings.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from chain.commit import ValidatorSet
from chain.errors import ChainError
from chain.merkle import MerkleProof, verify_proof
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, Header, Log, Transaction
from contracts.errors import ContractsError
from contracts.trust import ContractCodec, account_of
from sdk.bundle_evidence import (
    CHAIN_LINKS,
    EVIDENCE_KEY_PREFIX,
    VerifiedEvidence,
    evidence_key,
)
from sdk.bundle_links import (
    DEPARTMENT_ROOT_SIGNATURE_PREFIX,
    DEPARTMENT_SIGNATURE_PREFIX,
    BundleFormatError,
    BundleInvalid,
    BundleVerdict,
    DepartmentClaim,
    IssuerKeyClaim,
    LicenseLink,
    Link,
    LinkCheck,
    SigningDepartment,
    _bytes,
    _ChainEvidence,
    _check_link,
    _ExpectedCall,
    _hex,
    _int,
    _LinkFailed,
    _need,
    _parse_issuer_key,
    _parse_validators,
    check_department,
    department_root_sign_bytes,
    department_sign_bytes,
    issuer_key_json,
    verify_chain_links,
)
from sdk.commitments import (
    COMMITMENT_SALT_SIZE,
    DEPARTMENT_KEY_SIZE,
    FIELD_HASH_PREFIX,
    NO_FIELDS,
    RECORD_COMMITMENT_PREFIX,
    RECORD_COMMITMENT_V2_PREFIX,
    SALTED_METADATA_PREFIX,
    canonical_json,
    department_record_commitment,
    field_hash,
    fields_root,
    metadata_hash,
    record_commitment,
    salted_metadata_hash,
)
from sdk.license_bundle import (
    LICENSE_BUNDLE_KIND,
    LicenseBundle,
    LicenseClaim,
    verify_license_bundle,
)

BUNDLE_VERSION = 2
"""The bundle format this module writes for new records (department-signed, salted)."""

LEGACY_BUNDLE_VERSION = 1
"""The format of records notarized before departments signed: still read and verified."""

_NOTARY = ContractCodec.load("Notary")


# -- the bundle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordClaim:
    """What the bundle says about the record."""

    record_id: str
    """The registry's record id (a UUID)."""
    digest: Hash32
    """SM3 digest of the notarized document."""
    metadata_hash: Hash32
    """SM3 of the canonical JSON of the record's metadata (see :func:`metadata_hash`)."""
    field_hashes: tuple[tuple[str, Hash32], ...]
    """Salted hash of each disclosable field, sorted by name (see :func:`field_hash`)."""
    department_key: bytes | None = None
    """Version 2: the public key of the department that signed the commitment (its
    metadata hash is then salted); None for version 1 records."""

    def commitment(self) -> Hash32:
        """The record's Merkle leaf (:func:`department_record_commitment`, or
        :func:`record_commitment` for a version 1 record)."""
        if self.department_key is not None:
            return department_record_commitment(
                self.department_key, self.digest, self.metadata_hash, self.field_hashes
            )
        return record_commitment(self.record_id, self.digest, self.metadata_hash, self.field_hashes)


@dataclass(frozen=True)
class BatchClaim:
    """The batch the record was sealed into."""

    root: Hash32
    """Merkle root of the batch's record commitments."""
    leaf_count: int
    """Number of records in the batch."""
    metadata_hash: Hash32
    """The ``metadataHash`` argument the batch was anchored with."""
    proof: MerkleProof
    """Path from the record commitment to ``root``."""


@dataclass(frozen=True)
class AnchorClaim:
    """The transaction that anchored the batch, and its place in the block."""

    notary: Address
    """The Notary contract called."""
    raw_transaction: bytes
    """The signed transaction's canonical encoding."""
    transaction_proof: MerkleProof
    """Path from the transaction hash to the header's tx root."""
    receipt: bytes
    """The receipt's canonical encoding."""
    receipt_proof: MerkleProof
    """Path from the receipt encoding to the header's receipt root."""


@dataclass(frozen=True)
class ProofBundle:
    """A self-contained proof that one record was anchored; see the module docstring."""

    version: int
    """Bundle format version (BUNDLE_VERSION)."""
    chain_id: int
    """The chain the batch was anchored on."""
    record: RecordClaim
    """The record."""
    batch: BatchClaim
    """Its batch and Merkle path."""
    anchor: AnchorClaim
    """The anchoring transaction, receipt and their inclusion proofs."""
    header: Header
    """The header of the anchoring block."""
    commit_certificate: CommitCertificate
    """Precommits certifying the header's hash."""
    validators: ValidatorSet
    """The validator set the producer of the bundle used; a verifier should pass its own."""
    issuer_key: IssuerKeyClaim
    """The signing key's IssuerRegistry record at the anchoring block."""
    department: DepartmentClaim | None = None
    """Version 2: the notarizing department's signature over the record's commitment and
    its key's IssuerRegistry record at the anchoring block."""

    def to_json(self) -> dict[str, Any]:
        """The bundle as JSON values (the input of :func:`canonical_json`)."""
        return {**self.record_json(), **self.chain_json()}

    def record_json(self) -> dict[str, Any]:
        """The part of :meth:`to_json` that differs between the records of one batch:
        version, chain id, record and batch (with the record's Merkle path), and the
        department's signature."""
        record: dict[str, Any] = {
            "recordId": self.record.record_id,
            "digest": _hex(self.record.digest),
            "metadataHash": _hex(self.record.metadata_hash),
            "fieldHashes": {name: _hex(value) for name, value in self.record.field_hashes},
        }
        if self.record.department_key is not None:
            record["departmentKey"] = _hex(self.record.department_key)
        value: dict[str, Any] = {
            "version": self.version,
            "chainId": self.chain_id,
            "record": record,
            "batch": {
                "root": _hex(self.batch.root),
                "leafCount": self.batch.leaf_count,
                "metadataHash": _hex(self.batch.metadata_hash),
                "proof": _hex(self.batch.proof.encode()),
            },
        }
        if self.department is not None:
            value["department"] = self.department.to_json()
        return value

    def chain_json(self) -> dict[str, Any]:
        """The rest of :meth:`to_json`, the same for every record of a batch: anchoring
        transaction, receipt, proofs, header, certificate, validators, issuer key."""
        return {
            "anchor": {
                "notary": _hex(self.anchor.notary),
                "rawTransaction": _hex(self.anchor.raw_transaction),
                "transactionProof": _hex(self.anchor.transaction_proof.encode()),
                "receipt": _hex(self.anchor.receipt),
                "receiptProof": _hex(self.anchor.receipt_proof.encode()),
            },
            "header": _hex(self.header.encode()),
            "commitCertificate": _hex(self.commit_certificate.encode()),
            "validators": [
                {"publicKey": _hex(v.public_key), "power": v.power}
                for v in self.validators.validators
            ],
            "issuerKey": issuer_key_json(self.issuer_key),
        }

    def canonical_json(self) -> bytes:
        """The one canonical byte form of the bundle."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, value: Any) -> ProofBundle:
        """Parse :meth:`to_json` output; raises BundleFormatError on anything else."""
        try:
            return _parse_bundle(value)
        except BundleFormatError:
            raise
        except (KeyError, TypeError, ValueError, ChainError, ContractsError) as exc:
            raise BundleFormatError(f"not a proof bundle: {exc}") from exc

    @classmethod
    def from_canonical_json(cls, data: bytes) -> ProofBundle:
        """Parse the bytes of :meth:`canonical_json`."""
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise BundleFormatError(f"proof bundle is not JSON: {exc}") from exc
        return cls.from_json(value)


def _record_id(value: Any) -> str:
    """The ``recordId`` of a bundle's JSON, a UUID in its canonical text."""
    if not isinstance(value, str):
        raise BundleFormatError(f"recordId: expected a UUID string, got {value!r}")
    return str(uuid.UUID(value))


def _parse_bundle(value: Any) -> ProofBundle:
    if not isinstance(value, dict):
        raise BundleFormatError("a proof bundle is a JSON object")
    version = value["version"]
    if version not in (LEGACY_BUNDLE_VERSION, BUNDLE_VERSION):
        raise BundleFormatError(f"unsupported bundle version {version!r}")
    signed = version == BUNDLE_VERSION
    record, batch, anchor, issuer = (
        value["record"],
        value["batch"],
        value["anchor"],
        value["issuerKey"],
    )
    field_hashes = record["fieldHashes"]
    if not isinstance(field_hashes, dict):
        raise BundleFormatError("fieldHashes must be an object")
    if signed != ("departmentKey" in record) or signed != ("department" in value):
        raise BundleFormatError(
            "a bundle of version 2, and only such a bundle, names the department and its key"
        )
    return ProofBundle(
        version=version,
        chain_id=_int(value["chainId"]),
        record=RecordClaim(
            record_id=_record_id(record["recordId"]),
            digest=Hash32(_bytes(record["digest"], 32)),
            metadata_hash=Hash32(_bytes(record["metadataHash"], 32)),
            field_hashes=tuple(
                sorted((str(name), Hash32(_bytes(h, 32))) for name, h in field_hashes.items())
            ),
            department_key=(
                _bytes(record["departmentKey"], DEPARTMENT_KEY_SIZE) if signed else None
            ),
        ),
        batch=BatchClaim(
            root=Hash32(_bytes(batch["root"], 32)),
            # Notary.anchor takes a uint64; a larger count could not have been anchored.
            leaf_count=_int(batch["leafCount"], bits=64),
            metadata_hash=Hash32(_bytes(batch["metadataHash"], 32)),
            proof=MerkleProof.decode(_bytes(batch["proof"])),
        ),
        anchor=AnchorClaim(
            notary=Address(_bytes(anchor["notary"], 20)),
            raw_transaction=_bytes(anchor["rawTransaction"]),
            transaction_proof=MerkleProof.decode(_bytes(anchor["transactionProof"])),
            receipt=_bytes(anchor["receipt"]),
            receipt_proof=MerkleProof.decode(_bytes(anchor["receiptProof"])),
        ),
        header=Header.decode(_bytes(value["header"])),
        commit_certificate=CommitCertificate.decode(_bytes(value["commitCertificate"])),
        validators=_parse_validators(value["validators"]),
        issuer_key=_parse_issuer_key(issuer),
        department=DepartmentClaim.from_json(value["department"]) if signed else None,
    )


def verify_bundle(
    bundle: ProofBundle,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    expected_digest: bytes | None = None,
    notary: bytes | None = None,
    verified: VerifiedEvidence | None = None,
) -> BundleVerdict:
    """Check every link of ``bundle`` without any network access, against the validator set
    and chain id the caller trusts (not the copy inside the bundle). ``expected_digest``, if
    given, must be the record's digest (the digest of the document in hand); ``notary``, if
    given, must be the Notary contract the transaction calls. ``verified``, if given, is
    asked for the outcome of the chain links (:data:`CHAIN_LINKS`) of an identical chain
    half verified before, and told of this one if it verifies.

    What this proves: the record commitment is in a batch whose root a transaction signed by
    the named key passed to ``Notary.anchor``; that transaction and its successful receipt
    are in a block whose header ≥ 2/3 of the trusted validators certified. Given the genuine
    Notary address (``notary``), a successful receipt with the BatchAnchored event also
    proves the signing account held the ISSUER role at that block, because the contract
    reverts otherwise.

    What it cannot prove: the IssuerRegistry key record (``bundle.issuer_key``) is what the
    registry read with ``eth_call`` at the anchoring block; the header's state root commits
    to it, but the bundle carries no state proof, so offline its fields (USCC, key id,
    window) are the bundle producer's word, checked only for consistency with the signature,
    the event and the height. Nor can anything offline say whether the record or its batch
    was revoked later: ask the chain (``Notary.statusAt``) for that.
    """
    state: dict[str, Any] = {}

    def record() -> str:
        if bundle.chain_id != chain_id:
            raise _LinkFailed(f"bundle is for chain {bundle.chain_id}, not {chain_id}")
        names = [name for name, _ in bundle.record.field_hashes]
        if names != sorted(set(names)):
            raise _LinkFailed("field hashes are not sorted by unique name")
        state["commitment"] = bundle.record.commitment()
        if expected_digest is not None and bytes(expected_digest) != bundle.record.digest:
            raise _LinkFailed("the record digest is not the digest of the document")
        return f"commitment {state['commitment'].hex()}"

    def batch() -> str:
        commitment = _need(state, "commitment")
        try:
            verify_proof(
                bundle.batch.root,
                commitment,
                bundle.batch.proof,
                leaf_count=bundle.batch.leaf_count,
            )
        except ChainError as exc:
            raise _LinkFailed(f"record is not in the batch: {exc}") from exc
        return f"leaf {bundle.batch.proof.leaf_index} of {bundle.batch.leaf_count}"

    def anchor_calldata(tx: Transaction) -> None:
        expected = _NOTARY.encode_call(
            "anchor", bundle.batch.root, bundle.batch.leaf_count, bundle.batch.metadata_hash
        )
        if tx.data != expected:
            raise _LinkFailed("transaction is not Notary.anchor of this batch")

    def batch_anchored(log: Log, tx: Transaction, department: bytes) -> bool:
        if not _is_batch_anchored(log):
            return False
        args = _NOTARY.decode_log(log).args
        return bool(
            args["root"] == bundle.batch.root
            and args["issuer"] == account_of(tx.public_key)
            and args["department"] == department
            and args["leafCount"] == bundle.batch.leaf_count
        )

    signer: list[SigningDepartment] = []

    def department() -> str:
        claim, department_key = bundle.department, bundle.record.department_key
        if claim is None or department_key is None:
            return "no department signature (version 1: notarized before departments signed)"
        signed_by = check_department(
            claim,
            department_key,
            _need(state, "commitment"),
            chain_id=chain_id,
            height=bundle.header.height,
            issuer_registry=bundle.issuer_key.issuer_registry,
            signatures=None if verified is None else verified.signatures,
        )
        signer.append(signed_by)
        return f"signed by {signed_by.name} ({signed_by.uscc}), key {signed_by.key_id}"

    record_checks = (_check_link(Link.RECORD, record), _check_link(Link.BATCH, batch))

    def verdict(chain_checks: tuple[LinkCheck, ...]) -> BundleVerdict:
        department_check = _check_link(Link.DEPARTMENT, department)
        return BundleVerdict(
            (*record_checks, *chain_checks, department_check),
            signed_by=signer[0] if signer else None,
        )

    key = None
    if verified is not None:
        key = verified.key_of(bundle, validator_set, chain_id=chain_id, notary=notary)
        remembered = verified.recall(key)
        if remembered is not None:
            return verdict(remembered)
    anchor = bundle.anchor
    chain_checks = verify_chain_links(
        _ChainEvidence.of(anchor, bundle),
        _ExpectedCall(
            contract_name="Notary",
            bundle_contract=anchor.notary,
            trusted_contract=notary,
            check_calldata=anchor_calldata,
            action="anchoring",
            event="BatchAnchored",
            event_matches=batch_anchored,
        ),
        validator_set,
        chain_id=chain_id,
        links=Link,
    )
    if verified is not None and key is not None and all(check.ok for check in chain_checks):
        verified.remember(key, chain_checks)
    return verdict(chain_checks)


def _is_batch_anchored(log: Log) -> bool:
    try:
        return _NOTARY.decode_log(log).name == "BatchAnchored"
    except ContractsError:
        return False


__all__ = [
    "BUNDLE_VERSION",
    "CHAIN_LINKS",
    "COMMITMENT_SALT_SIZE",
    "DEPARTMENT_ROOT_SIGNATURE_PREFIX",
    "DEPARTMENT_SIGNATURE_PREFIX",
    "EVIDENCE_KEY_PREFIX",
    "FIELD_HASH_PREFIX",
    "LEGACY_BUNDLE_VERSION",
    "LICENSE_BUNDLE_KIND",
    "NO_FIELDS",
    "RECORD_COMMITMENT_PREFIX",
    "RECORD_COMMITMENT_V2_PREFIX",
    "SALTED_METADATA_PREFIX",
    "AnchorClaim",
    "BatchClaim",
    "BundleFormatError",
    "BundleInvalid",
    "BundleVerdict",
    "DepartmentClaim",
    "IssuerKeyClaim",
    "LicenseBundle",
    "LicenseClaim",
    "LicenseLink",
    "Link",
    "LinkCheck",
    "ProofBundle",
    "RecordClaim",
    "SigningDepartment",
    "VerifiedEvidence",
    "canonical_json",
    "department_record_commitment",
    "department_root_sign_bytes",
    "department_sign_bytes",
    "evidence_key",
    "field_hash",
    "fields_root",
    "metadata_hash",
    "record_commitment",
    "salted_metadata_hash",
    "verify_bundle",
    "verify_license_bundle",
]
