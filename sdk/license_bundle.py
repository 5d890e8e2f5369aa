"""License issuance bundles: everything needed to show, without a network, that a license
was issued on LicenseRegistry by an authorised issuer key — the issuing transaction
(``issue``, or ``change`` of its predecessor), its receipt with the LicenseIssued event, their
inclusion proofs, the certified header and the key's IssuerRegistry record — and (version 2)
the issuing department's own SM2 signature over the license's commitment
(:func:`sdk.license_signing.license_commitment`) with its key's IssuerRegistry record at the
issuing block. Checked with the same chain links and department check as record bundles
(:mod:`sdk.bundle_links`). Version 3 also carries each status change of the license
(suspend, resume, revoke, expire), signed by the department
(:mod:`sdk.license_status_bundle`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.commit import ValidatorSet
from chain.crypto import sm3
from chain.errors import ChainError
from chain.merkle import MerkleProof
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, Header, Log, Transaction
from contracts.errors import ContractsError
from contracts.trust import ContractCodec, account_of
from sdk.bundle_links import (
    BundleFormatError,
    BundleVerdict,
    DepartmentClaim,
    IssuerKeyClaim,
    LicenseLink,
    SigningDepartment,
    _bytes,
    _ChainEvidence,
    _check_link,
    _ExpectedCall,
    _int,
    _LinkFailed,
    _parse_issuer_key,
    _parse_validators,
    check_department,
    verify_chain_links,
)
from sdk.commitments import DEPARTMENT_KEY_SIZE
from sdk.license_signing import NO_PREDECESSOR, license_commitment
from sdk.license_status_bundle import StatusChangeClaim, parse_status_changes

LICENSE_BUNDLE_VERSION = 3
"""The license bundle format of licenses signed by their department, with their signed
status changes."""

ISSUANCE_ONLY_BUNDLE_VERSION = 2
"""The format of licenses signed by their department, before status changes were signed:
still read and verified."""

LEGACY_LICENSE_BUNDLE_VERSION = 1
"""The format of licenses issued before departments signed: still read and verified."""

LICENSE_BUNDLE_KIND = "license-issuance"
"""The ``kind`` of a license issuance bundle's JSON."""

_LICENSES = ContractCodec.load("LicenseRegistry")


@dataclass(frozen=True)
class LicenseClaim:
    """What a license issuance bundle says was issued."""

    identifier: str
    """The GB/T 36904 identifier."""
    id_hash: Hash32
    """Its on-chain key: SM3 of the identifier (contracts.trust.license_id_hash)."""
    holder_commitment: Hash32
    """Salted SM3 commitment to the holder's identifier."""
    metadata_hash: Hash32
    """Salted SM3 hash of the GB/T 36903 metadata."""
    valid_until: int
    """Seconds since the epoch from which it is expired; 0 for no limit."""
    predecessor: str | None
    """Identifier of the version it replaced, if it was issued by a change."""
    department_key: bytes | None = None
    """Version 2: the public key of the department that signed the license's commitment;
    None for version 1."""

    def commitment(self) -> Hash32:
        """What the department signed (:func:`sdk.license_signing.license_commitment`);
        raises ValueError for a version 1 claim, which names no department key."""
        if self.department_key is None:
            raise ValueError("a license issued before departments signed has no commitment")
        predecessor = (
            NO_PREDECESSOR if self.predecessor is None else sm3(self.predecessor.encode("ascii"))
        )
        return license_commitment(
            self.department_key,
            self.id_hash,
            self.holder_commitment,
            self.metadata_hash,
            self.valid_until,
            predecessor,
        )


@dataclass(frozen=True)
class LicenseBundle:
    """A self-contained proof that a license was issued on LicenseRegistry by an
    authorised issuer key: the issuing transaction (``issue``, or ``change`` of its
    predecessor), its receipt with the LicenseIssued event, their inclusion proofs, the
    certified header and the key's IssuerRegistry record. Made from the transaction's
    receipt, not from a Notary batch."""

    chain_id: int
    """The chain."""
    license: LicenseClaim
    """The license issued."""
    license_registry: Address
    """The LicenseRegistry called."""
    raw_transaction: bytes
    """The signed issuing transaction."""
    transaction_proof: MerkleProof
    """Path from the transaction hash to the header's tx root."""
    receipt: bytes
    """The receipt's canonical encoding."""
    receipt_proof: MerkleProof
    """Path from the receipt to the header's receipt root."""
    header: Header
    """Header of the block that includes the transaction."""
    commit_certificate: CommitCertificate
    """Precommits certifying the header."""
    validators: ValidatorSet
    """The validator set the producer used; a verifier passes its own."""
    issuer_key: IssuerKeyClaim
    """The signing key's IssuerRegistry record at that block."""
    version: int = LICENSE_BUNDLE_VERSION
    """Bundle format version."""
    department: DepartmentClaim | None = None
    """Version 2 and later: the issuing department's signature over the license's
    commitment and its key's IssuerRegistry record at the issuing block."""
    status_changes: tuple[StatusChangeClaim, ...] = ()
    """Version 3: the license's status changes the department signed, in history order
    (:func:`sdk.license_status_bundle.verify_status_changes`)."""

    @classmethod
    def from_json(cls, value: Any) -> LicenseBundle:
        """Parse the registry's bundle JSON; raises BundleFormatError on anything else."""
        try:
            return _parse_license_bundle(value)
        except BundleFormatError:
            raise
        except (KeyError, TypeError, ValueError, ChainError, ContractsError) as exc:
            raise BundleFormatError(f"not a license bundle: {exc}") from exc


def _parse_license_bundle(value: Any) -> LicenseBundle:
    if not isinstance(value, dict) or value.get("kind") != LICENSE_BUNDLE_KIND:
        raise BundleFormatError(f"a license bundle is a JSON object of kind {LICENSE_BUNDLE_KIND}")
    version = value["version"]
    if version not in (
        LEGACY_LICENSE_BUNDLE_VERSION,
        ISSUANCE_ONLY_BUNDLE_VERSION,
        LICENSE_BUNDLE_VERSION,
    ):
        raise BundleFormatError(f"unsupported bundle version {version!r}")
    claim, anchor, issuer = value["license"], value["anchor"], value["issuerKey"]
    if not isinstance(claim, dict):
        raise BundleFormatError("a license bundle's license is a JSON object")
    predecessor = claim.get("predecessor")
    signed = version != LEGACY_LICENSE_BUNDLE_VERSION
    if signed != ("departmentKey" in claim) or signed != ("department" in value):
        raise BundleFormatError(
            "a bundle of version 2 or later, and only such a bundle, names the department "
            "and its key"
        )
    with_changes = version == LICENSE_BUNDLE_VERSION
    if with_changes != ("statusChanges" in value):
        raise BundleFormatError(
            "a bundle of version 3, and only such a bundle, lists the status changes"
        )
    return LicenseBundle(
        version=version,
        department=DepartmentClaim.from_json(value["department"]) if signed else None,
        status_changes=parse_status_changes(value["statusChanges"]) if with_changes else (),
        chain_id=_int(value["chainId"]),
        license=LicenseClaim(
            identifier=str(claim["identifier"]),
            id_hash=Hash32(_bytes(claim["idHash"], 32)),
            holder_commitment=Hash32(_bytes(claim["holderCommitment"], 32)),
            metadata_hash=Hash32(_bytes(claim["metadataHash"], 32)),
            # LicenseRegistry keeps it as a uint64 (a status change's reason and sequence
            # as a uint16 and a uint64: sdk.license_status_bundle).
            valid_until=_int(claim["validUntil"], bits=64),
            predecessor=None if predecessor is None else str(predecessor),
            department_key=(
                _bytes(claim["departmentKey"], DEPARTMENT_KEY_SIZE) if signed else None
            ),
        ),
        license_registry=Address(_bytes(anchor["licenseRegistry"], 20)),
        raw_transaction=_bytes(anchor["rawTransaction"]),
        transaction_proof=MerkleProof.decode(_bytes(anchor["transactionProof"])),
        receipt=_bytes(anchor["receipt"]),
        receipt_proof=MerkleProof.decode(_bytes(anchor["receiptProof"])),
        header=Header.decode(_bytes(value["header"])),
        commit_certificate=CommitCertificate.decode(_bytes(value["commitCertificate"])),
        validators=_parse_validators(value["validators"]),
        issuer_key=_parse_issuer_key(issuer),
    )


def _issuing_calls(claim: LicenseClaim) -> list[bytes]:
    """The calldata an issuing transaction of ``claim`` may carry: ``issue``, or a
    ``change`` from its predecessor with any reason code (checked by prefix)."""
    calls = [
        _LICENSES.encode_call(
            "issue", claim.id_hash, claim.holder_commitment, claim.metadata_hash, claim.valid_until
        )
    ]
    if claim.predecessor is not None:
        change = _LICENSES.encode_call(
            "change",
            sm3(claim.predecessor.encode("ascii")),
            claim.id_hash,
            claim.holder_commitment,
            claim.metadata_hash,
            claim.valid_until,
            0,
        )
        calls.append(change[:-32])  # every word but the reason code
    return calls


def verify_license_bundle(
    bundle: LicenseBundle,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    expected_identifier: str | None = None,
    license_registry: bytes | None = None,
) -> BundleVerdict:
    """Check every link of a license issuance bundle without any network access, against
    the validator set and chain id the caller trusts. ``expected_identifier`` (the license
    in hand) and ``license_registry`` (the genuine contract) make the proof specific.

    What this proves: a transaction signed by the named key called LicenseRegistry to
    issue exactly this identifier with this holder commitment, metadata hash and validity,
    succeeded (the contract reverts unless the signer holds the ISSUER role at that block),
    and is in a block ≥ 2/3 of the trusted validators certified; and (version 2) that the
    department named in the verdict's ``signed_by`` signed exactly these terms with a key
    IssuerRegistry gave the ISSUER role at that block (the key record is the bundle
    producer's word, as for record bundles: see :func:`sdk.bundle.verify_bundle`). What it
    cannot prove: the license's status now (suspended, revoked, expired): ask the chain
    (``statusOf``)."""
    claim = bundle.license

    def license_link() -> str:
        if bundle.chain_id != chain_id:
            raise _LinkFailed(f"bundle is for chain {bundle.chain_id}, not {chain_id}")
        if sm3(claim.identifier.encode("ascii")) != claim.id_hash:
            raise _LinkFailed("the identifier does not hash to the claimed key")
        if expected_identifier is not None and claim.identifier != expected_identifier:
            raise _LinkFailed("the bundle is for another license")
        return f"license {claim.identifier}"

    signer: list[SigningDepartment] = []

    def department() -> str:
        if bundle.department is None or claim.department_key is None:
            return "no department signature (version 1: issued before departments signed)"
        signed_by = check_department(
            bundle.department,
            claim.department_key,
            claim.commitment(),
            chain_id=chain_id,
            height=bundle.header.height,
            issuer_registry=bundle.issuer_key.issuer_registry,
        )
        signer.append(signed_by)
        return f"signed by {signed_by.name} ({signed_by.uscc}), key {signed_by.key_id}"

    def issuing_calldata(tx: Transaction) -> None:
        if not any(tx.data.startswith(call) for call in _issuing_calls(claim)):
            raise _LinkFailed("transaction does not issue this license")
        if len(tx.data) not in (4 + 32 * 4, 4 + 32 * 6):
            raise _LinkFailed("transaction calldata has trailing bytes")

    def license_issued(log: Log, tx: Transaction, department: bytes) -> bool:
        try:
            event = _LICENSES.decode_log(log)
        except ContractsError:
            return False
        args = event.args
        return bool(
            event.name == "LicenseIssued"
            and args["id"] == claim.id_hash
            and args["department"] == department
            and args["by"] == account_of(tx.public_key)
            and args["holderCommitment"] == claim.holder_commitment
            and args["metadataHash"] == claim.metadata_hash
            and args["validUntil"] == claim.valid_until
        )

    chain_checks = verify_chain_links(
        _ChainEvidence.of(bundle, bundle),
        _ExpectedCall(
            contract_name="LicenseRegistry",
            bundle_contract=bundle.license_registry,
            trusted_contract=license_registry,
            check_calldata=issuing_calldata,
            action="issuing",
            event="LicenseIssued",
            event_matches=license_issued,
        ),
        validator_set,
        chain_id=chain_id,
        links=LicenseLink,
    )
    license_check = _check_link(LicenseLink.LICENSE, license_link)
    department_check = _check_link(LicenseLink.DEPARTMENT, department)
    return BundleVerdict(
        (license_check, *chain_checks, department_check),
        signed_by=signer[0] if signer else None,
    )
