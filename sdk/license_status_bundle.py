"""The signed status changes a license bundle carries (version 3): for each suspend, resume,
revoke or expire of the license, the LicenseRegistry transaction that made it, its receipt
with the StatusChanged event, their inclusion proofs and certified header, and the
department's own SM2 signature over the change's commitment
(:func:`sdk.license_status_signing.license_status_commitment`) with its key's
IssuerRegistry record at that block. :func:`verify_status_changes` checks each offline, with
the same chain links and department check as the issuance (:mod:`sdk.bundle_links`), and
names the department that made each change.

Also the public check of a department's signature over a license commitment
(:func:`check_signed_commitment`), for a verifier outside this package (the citizen's
verify page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chain.commit import ValidatorSet
from chain.errors import ChainError
from chain.merkle import MerkleProof
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, Header, Log, Transaction
from contracts.errors import ContractsError
from contracts.trust import ContractCodec, LicenseStatus, account_of
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
    check_department,
    verify_chain_links,
)
from sdk.commitments import DEPARTMENT_KEY_SIZE
from sdk.errors import SdkError
from sdk.license_status_signing import StatusAction, license_status_commitment

if TYPE_CHECKING:
    from sdk.license_bundle import LicenseBundle

MAX_STATUS_CHANGES = 1_000
"""Most status changes one bundle may carry (a license's history is short; the bound keeps
a hostile bundle from making a verifier loop)."""

_LICENSES = ContractCodec.load("LicenseRegistry")

_ENTERED = {
    StatusAction.SUSPEND: LicenseStatus.SUSPENDED,
    StatusAction.RESUME: LicenseStatus.ISSUED,
    StatusAction.REVOKE: LicenseStatus.REVOKED,
    StatusAction.EXPIRE: LicenseStatus.EXPIRED,
}
"""The status each action enters (StatusChanged's ``status``)."""


class DepartmentSignatureInvalid(SdkError):
    """A department's signature over a commitment does not verify against the key record
    IssuerRegistry held at the block (or that record is missing, expired, or of another
    key)."""


def check_signed_commitment(
    claim: DepartmentClaim,
    department_key: bytes,
    commitment: bytes,
    *,
    chain_id: int,
    height: int,
    issuer_registry: bytes,
) -> SigningDepartment:
    """The department whose signature ``claim`` over ``commitment`` verifies with
    ``department_key``, a key IssuerRegistry gave the ISSUER role at block ``height``
    (:func:`sdk.bundle_links.check_department`). Raises DepartmentSignatureInvalid."""
    try:
        return check_department(
            claim,
            department_key,
            commitment,
            chain_id=chain_id,
            height=height,
            issuer_registry=issuer_registry,
        )
    except (_LinkFailed, ChainError, ContractsError, ValueError) as exc:
        raise DepartmentSignatureInvalid(str(exc)) from None


@dataclass(frozen=True)
class StatusChangeClaim:
    """One signed status change of the license and the proof of its transaction."""

    action: StatusAction
    """What was done."""
    reason: int
    """Reason code (contracts.trust.Reason)."""
    sequence: int
    """The position it took in the license's on-chain history (the issuance is 0)."""
    department_key: bytes
    """The public key of the department that signed it."""
    department: DepartmentClaim
    """Its signature over the change's commitment and the key's record at the block."""
    license_registry: Address
    """The LicenseRegistry called."""
    raw_transaction: bytes
    """The signed transaction that made the change."""
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
    issuer_key: IssuerKeyClaim
    """The transaction signer's IssuerRegistry record at that block."""

    def commitment(self, chain_id: int, id_hash: bytes) -> Hash32:
        """What the department signed, for the license ``id_hash`` on ``chain_id``."""
        return license_status_commitment(
            self.department_key, chain_id, id_hash, self.action, self.reason, self.sequence
        )


def _parse_status_change(value: Any) -> StatusChangeClaim:
    if not isinstance(value, dict):
        raise BundleFormatError("a status change is a JSON object")
    anchor = value["anchor"]
    if not isinstance(anchor, dict):
        raise BundleFormatError("a status change's anchor is a JSON object")
    return StatusChangeClaim(
        action=StatusAction.named(str(value["action"])),
        reason=_int(value["reason"], bits=16),
        sequence=_int(value["sequence"], bits=64),
        department_key=_bytes(value["departmentKey"], DEPARTMENT_KEY_SIZE),
        department=DepartmentClaim.from_json(value["department"]),
        license_registry=Address(_bytes(anchor["licenseRegistry"], 20)),
        raw_transaction=_bytes(anchor["rawTransaction"]),
        transaction_proof=MerkleProof.decode(_bytes(anchor["transactionProof"])),
        receipt=_bytes(anchor["receipt"]),
        receipt_proof=MerkleProof.decode(_bytes(anchor["receiptProof"])),
        header=Header.decode(_bytes(value["header"])),
        commit_certificate=CommitCertificate.decode(_bytes(value["commitCertificate"])),
        issuer_key=_parse_issuer_key(value["issuerKey"]),
    )


def parse_status_changes(value: Any) -> tuple[StatusChangeClaim, ...]:
    """The ``statusChanges`` member of a version 3 bundle (at most MAX_STATUS_CHANGES);
    raises BundleFormatError, KeyError, TypeError or ValueError."""
    if not isinstance(value, list):
        raise BundleFormatError("statusChanges is a JSON list")
    if len(value) > MAX_STATUS_CHANGES:
        raise BundleFormatError(f"more than {MAX_STATUS_CHANGES} status changes")
    return tuple(_parse_status_change(entry) for entry in value)


@dataclass(frozen=True)
class StatusChangeVerdict:
    """The outcome of checking one status change of a bundle."""

    change: StatusChangeClaim
    """The change checked."""
    verdict: BundleVerdict
    """Its links (named as in :class:`sdk.bundle_links.LicenseLink`): LICENSE (in order,
    by the department that issued the license), the chain links of its transaction, and
    DEPARTMENT (the signature); ``signed_by`` names the department that made it."""

    @property
    def valid(self) -> bool:
        """Every link holds."""
        return self.verdict.valid

    @property
    def signed_by(self) -> SigningDepartment | None:
        """The department whose signature over the change verified."""
        return self.verdict.signed_by


def verify_status_changes(
    bundle: LicenseBundle,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    license_registry: bytes | None = None,
) -> tuple[StatusChangeVerdict, ...]:
    """Check every status change ``bundle`` carries, without any network access, against
    the validator set and chain id the caller trusts (``license_registry``: the genuine
    contract, if known). Each verdict proves that a transaction of an authorised issuer key
    made exactly this change (action and reason) of this license in a certified block, that
    the department which signed the license's issuance signed this change for this history
    position with a key IssuerRegistry gave the ISSUER role at that block, and that the
    changes come in history order. What it cannot prove: that no later change exists (ask
    the chain, ``historyLength``)."""
    claim = bundle.license
    issuing_department = None if bundle.department is None else bundle.department.key
    verdicts: list[StatusChangeVerdict] = []
    previous: StatusChangeClaim | None = None
    for change in bundle.status_changes:
        verdicts.append(
            _verify_one(
                change,
                previous,
                claim.id_hash,
                None if issuing_department is None else issuing_department.uscc,
                validator_set,
                chain_id=chain_id,
                license_registry=license_registry,
            )
        )
        previous = change
    return tuple(verdicts)


def _verify_one(
    change: StatusChangeClaim,
    previous: StatusChangeClaim | None,
    id_hash: Hash32,
    issuing_uscc: str | None,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    license_registry: bytes | None,
) -> StatusChangeVerdict:
    entered = _ENTERED[change.action]

    def license_link() -> str:
        if issuing_uscc is None:
            raise _LinkFailed("the license's issuance names no signing department")
        if previous is not None and not (
            change.sequence > previous.sequence and change.header.height >= previous.header.height
        ):
            raise _LinkFailed("status changes are not in history order")
        return f"{change.action.function} #{change.sequence} of the license"

    signer: list[SigningDepartment] = []

    def department() -> str:
        signed_by = check_department(
            change.department,
            change.department_key,
            change.commitment(chain_id, id_hash),
            chain_id=chain_id,
            height=change.header.height,
            issuer_registry=change.issuer_key.issuer_registry,
        )
        if signed_by.uscc != issuing_uscc:
            raise _LinkFailed(
                f"signed by {signed_by.uscc}, not by the issuing department {issuing_uscc}"
            )
        signer.append(signed_by)
        return f"{change.action.function} signed by {signed_by.name} ({signed_by.uscc})"

    def calldata(tx: Transaction) -> None:
        expected = _LICENSES.encode_call(change.action.function, id_hash, change.reason)
        if tx.data != expected:
            raise _LinkFailed(f"transaction does not {change.action.function} this license")

    def status_changed(log: Log, tx: Transaction, _department: bytes) -> bool:
        try:
            event = _LICENSES.decode_log(log)
        except ContractsError:
            return False
        args = event.args
        return bool(
            event.name == "StatusChanged"
            and args["id"] == id_hash
            and args["status"] == entered
            and args["reason"] == change.reason
            and args["by"] == account_of(tx.public_key)
        )

    chain_checks = verify_chain_links(
        _ChainEvidence.of(change, change),
        _ExpectedCall(
            contract_name="LicenseRegistry",
            bundle_contract=change.license_registry,
            trusted_contract=license_registry,
            check_calldata=calldata,
            action=change.action.function,
            event="StatusChanged",
            event_matches=status_changed,
        ),
        validator_set,
        chain_id=chain_id,
        links=LicenseLink,
    )
    checks = (
        _check_link(LicenseLink.LICENSE, license_link),
        *chain_checks,
        _check_link(LicenseLink.DEPARTMENT, department),
    )
    return StatusChangeVerdict(
        change, BundleVerdict(checks, signed_by=signer[0] if signer else None)
    )


def status_change_json(
    action: StatusAction,
    reason: int,
    sequence: int,
    department_key: bytes,
    department: DepartmentClaim,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    """One member of a bundle's ``statusChanges``: the change, its signature and key
    record, and ``evidence`` (the chain half: anchor with ``licenseRegistry``, header,
    commit certificate and issuer key)."""
    return {
        "action": action.function,
        "reason": reason,
        "sequence": sequence,
        "departmentKey": "0x" + bytes(department_key).hex(),
        "department": department.to_json(),
        "anchor": evidence["anchor"],
        "header": evidence["header"],
        "commitCertificate": evidence["commitCertificate"],
        "issuerKey": evidence["issuerKey"],
    }


__all__ = [
    "MAX_STATUS_CHANGES",
    "DepartmentSignatureInvalid",
    "StatusChangeClaim",
    "StatusChangeVerdict",
    "check_signed_commitment",
    "parse_status_changes",
    "status_change_json",
    "verify_status_changes",
]
