"""What every kind of proof bundle shares: the format errors, the IssuerRegistry key
record, the JSON helpers, and the offline checks of the links from a signed transaction to
a certified block (:func:`verify_chain_links`) and of a department's own signature over a
commitment (:func:`check_department`). :mod:`sdk.bundle` (notarized records) and
:mod:`sdk.license_bundle` (licenses) build their verifiers from these pieces."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chain.commit import CommitError, Validator, ValidatorSet, verify_commit_certificate
from chain.crypto import PublicKey
from chain.errors import ChainError
from chain.merkle import MerkleProof, leaf_hash, node_hash, verify_proof
from chain.primitives import Address
from chain.types import CommitCertificate, Header, Log, Receipt, Transaction
from chain.validation import verify_transaction_signature
from contracts.errors import ContractsError
from contracts.trust import Role, account_of, uscc_bytes
from sdk.errors import SdkError
from sdk.signature_memory import SignatureMemory


class BundleFormatError(SdkError):
    """A proof bundle whose JSON does not have the bundle shape or canonical encodings."""


class BundleInvalid(SdkError):
    """Raised by :meth:`BundleVerdict.raise_for_failure`; ``verdict`` says which links
    failed."""

    def __init__(self, verdict: BundleVerdict) -> None:
        failed = ", ".join(f"{c.link}: {c.detail}" for c in verdict.failures)
        super().__init__(f"proof bundle does not verify ({failed})")
        self.verdict = verdict


@dataclass(frozen=True)
class IssuerKeyClaim:
    """The IssuerRegistry record of the key that signed the anchoring transaction, as the
    registry read it from the chain state at ``read_at_block``."""

    issuer_registry: Address
    """The IssuerRegistry contract read."""
    uscc: str
    """The issuing department's unified social credit code."""
    key_id: int
    """The key's index in ``keysOf(uscc)``."""
    public_key: bytes
    """The key (65 bytes, uncompressed)."""
    roles: int
    """Role bits (contracts.trust.Role)."""
    valid_from_block: int
    """First block of the key's validity."""
    valid_until_block: int
    """First block past its validity."""
    read_at_block: int
    """The block whose state the record was read from (the anchoring block)."""


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _bytes(value: Any, size: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise BundleFormatError(f"expected 0x hex, got {value!r}")
    raw = bytes.fromhex(value[2:])
    if size is not None and len(raw) != size:
        raise BundleFormatError(f"expected {size} bytes, got {len(raw)}")
    return raw


def _int(value: Any, *, bits: int | None = None) -> int:
    """A non-negative JSON integer, below ``2**bits`` if given; else BundleFormatError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleFormatError(f"expected a non-negative integer, got {value!r}")
    if bits is not None and value >= 1 << bits:
        raise BundleFormatError(f"expected an integer below 2**{bits}, got {value!r}")
    return value


def _parse_validators(entries: Any) -> ValidatorSet:
    """The ``validators`` member of a bundle's JSON."""
    return ValidatorSet.of(
        Validator(_bytes(v["publicKey"], 65), _int(v["power"]))  # type: ignore[arg-type]
        for v in entries
    )


def _parse_issuer_key(issuer: Any) -> IssuerKeyClaim:
    """The ``issuerKey`` member of a bundle's JSON."""
    return IssuerKeyClaim(
        issuer_registry=Address(_bytes(issuer["issuerRegistry"], 20)),
        uscc=str(issuer["uscc"]),
        key_id=_int(issuer["keyId"]),
        public_key=_bytes(issuer["publicKey"], 65),
        roles=_int(issuer["roles"]),
        valid_from_block=_int(issuer["validFromBlock"]),
        valid_until_block=_int(issuer["validUntilBlock"]),
        read_at_block=_int(issuer["readAtBlock"]),
    )


def issuer_key_json(key: IssuerKeyClaim) -> dict[str, Any]:
    """The JSON of an IssuerRegistry key record in a bundle."""
    return {
        "issuerRegistry": _hex(key.issuer_registry),
        "uscc": key.uscc,
        "keyId": key.key_id,
        "publicKey": _hex(key.public_key),
        "roles": key.roles,
        "validFromBlock": key.valid_from_block,
        "validUntilBlock": key.valid_until_block,
        "readAtBlock": key.read_at_block,
    }


# -- offline verification --------------------------------------------------------------------


class Link(enum.StrEnum):
    """The links of a bundle, in the order :func:`verify_bundle` checks them."""

    RECORD = "record"
    """The record claim is well formed and (if asked) carries the expected digest."""
    BATCH = "batch"
    """The record commitment is the leaf at the proof's index under the batch root."""
    TRANSACTION = "transaction"
    """The transaction is for this chain, validly signed, and calls Notary.anchor with
    exactly this batch's root, leaf count and metadata hash."""
    SIGNER = "signer"
    """The transaction is signed by the issuer key the bundle names."""
    RECEIPT = "receipt"
    """The receipt belongs to the transaction, has status 1, and carries the Notary's
    BatchAnchored event for this root, signer and department."""
    TX_INCLUSION = "tx_inclusion"
    """The transaction hash is proven under the header's tx root."""
    RECEIPT_INCLUSION = "receipt_inclusion"
    """The receipt is proven under the header's receipt root."""
    CERTIFICATE = "certificate"
    """The header names the trusted validator set, and ≥ 2/3 of its power certified it."""
    ISSUER_KEY = "issuer_key"
    """The issuer key record gives the key the ISSUER role over a window that contains the
    anchoring height, read at that height."""
    DEPARTMENT = "department"
    """The department that notarized the record signed its commitment (for the chain id)
    with the key the commitment names, and that key's IssuerRegistry record, read at the
    anchoring height, gives it the ISSUER role there. Bundles of version 1 (records
    notarized before departments signed) carry no signature: the link says so."""


class LicenseLink(enum.StrEnum):
    """The links of a license issuance bundle, in the order :func:`verify_license_bundle`
    checks them (those named as in :class:`Link` mean the same there)."""

    LICENSE = "license"
    """The identifier hashes to the claimed on-chain key (and is the one expected)."""
    TRANSACTION = "transaction"
    """The transaction is for this chain, validly signed, and calls LicenseRegistry.issue
    (or change, for a new version) with exactly the claimed key, holder commitment,
    metadata hash and validity."""
    SIGNER = "signer"
    """The transaction is signed by the issuer key the bundle names."""
    RECEIPT = "receipt"
    """The receipt belongs to the transaction, has status 1, and carries LicenseIssued for
    this key, department, signer, holder commitment and metadata hash."""
    TX_INCLUSION = "tx_inclusion"
    """The transaction hash is proven under the header's tx root."""
    RECEIPT_INCLUSION = "receipt_inclusion"
    """The receipt is proven under the header's receipt root."""
    CERTIFICATE = "certificate"
    """The header names the trusted validator set, and ≥ 2/3 of its power certified it."""
    ISSUER_KEY = "issuer_key"
    """The issuer key record gives the key the ISSUER role at the block, read there."""
    DEPARTMENT = "department"
    """The department that issued the license signed its commitment (for the chain id)
    with the key the claim names, and that key's IssuerRegistry record, read at the
    issuing block, gives it the ISSUER role there. Bundles of version 1 (licenses issued
    before departments signed) carry no signature: the link says so."""


@dataclass(frozen=True)
class LinkCheck:
    """The outcome of checking one link."""

    link: Link | LicenseLink
    """Which link."""
    ok: bool
    """Whether it holds."""
    detail: str
    """Why it failed, or what it established."""


@dataclass(frozen=True)
class BundleVerdict:
    """Every link's outcome. The bundle verifies only if every link holds."""

    checks: tuple[LinkCheck, ...]
    """One entry per :class:`Link`, in order."""
    signed_by: SigningDepartment | None = None
    """The department whose own signature over the record's (or license's) commitment
    verified (None for bundles without one, and when that link fails)."""

    @property
    def valid(self) -> bool:
        """Every link holds."""
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[LinkCheck, ...]:
        """The links that do not hold."""
        return tuple(check for check in self.checks if not check.ok)

    def check(self, link: Link | LicenseLink) -> LinkCheck:
        """The outcome of ``link``."""
        return next(check for check in self.checks if check.link is link)

    def raise_for_failure(self) -> None:
        """Return if the bundle verifies; raise BundleInvalid otherwise."""
        if not self.valid:
            raise BundleInvalid(self)


class _LinkFailed(Exception):
    """Internal: one link does not hold."""


def _check_link(link: Link | LicenseLink, check: Callable[[], str]) -> LinkCheck:
    """Run one link's check; a failure of the link or of a decoding becomes a failed check."""
    try:
        detail = check()
    except _LinkFailed as exc:
        return LinkCheck(link, False, str(exc))
    except (ChainError, ContractsError, ValueError) as exc:
        return LinkCheck(link, False, f"{type(exc).__name__}: {exc}")
    return LinkCheck(link, True, detail)


def _need(state: Mapping[str, Any], name: str) -> Any:
    """A value an earlier link decoded; the link fails if that one did not."""
    if name not in state:
        raise _LinkFailed(f"depends on the {name}, which did not decode")
    return state[name]


@dataclass(frozen=True)
class _ChainEvidence:
    """What a bundle carries to show that a transaction signed by an issuer key succeeded
    in a certified block."""

    raw_transaction: bytes
    """The signed transaction's canonical encoding."""
    transaction_proof: MerkleProof
    """Path from the transaction hash to the header's tx root."""
    receipt: bytes
    """The receipt's canonical encoding."""
    receipt_proof: MerkleProof
    """Path from the receipt encoding to the header's receipt root."""
    header: Header
    """Header of the block that includes the transaction."""
    commit_certificate: CommitCertificate
    """Precommits certifying the header."""
    issuer_key: IssuerKeyClaim
    """The signing key's IssuerRegistry record at that block."""

    @classmethod
    def of(cls, sent: _SentTransaction, block: _CertifiedBlock) -> _ChainEvidence:
        """The evidence a bundle part carries: the transaction and receipt with their paths
        from ``sent``, the block and the signing key's record from ``block`` (often the
        same part)."""
        return cls(
            raw_transaction=sent.raw_transaction,
            transaction_proof=sent.transaction_proof,
            receipt=sent.receipt,
            receipt_proof=sent.receipt_proof,
            header=block.header,
            commit_certificate=block.commit_certificate,
            issuer_key=block.issuer_key,
        )


class _SentTransaction(Protocol):
    """A bundle part holding a transaction and its receipt, each with its path to a root."""

    @property
    def raw_transaction(self) -> bytes: ...
    @property
    def transaction_proof(self) -> MerkleProof: ...
    @property
    def receipt(self) -> bytes: ...
    @property
    def receipt_proof(self) -> MerkleProof: ...


class _CertifiedBlock(Protocol):
    """A bundle part holding a header, its commit certificate and the signing key's record."""

    @property
    def header(self) -> Header: ...
    @property
    def commit_certificate(self) -> CommitCertificate: ...
    @property
    def issuer_key(self) -> IssuerKeyClaim: ...


@dataclass(frozen=True)
class _ExpectedCall:
    """What the transaction of a :class:`_ChainEvidence` must have done."""

    contract_name: str
    """The called contract's name, as the link details say it."""
    bundle_contract: Address
    """The contract the bundle says was called."""
    trusted_contract: bytes | None
    """The genuine contract, if the verifier knows it."""
    check_calldata: Callable[[Transaction], None]
    """Raises _LinkFailed unless the transaction's calldata is the expected call."""
    action: str
    """What the transaction does, as the link details say it (``anchoring``)."""
    event: str
    """The name of the event a successful call emits."""
    event_matches: Callable[[Log, Transaction, bytes], bool]
    """Whether a log of the called contract is that event for this transaction and the
    issuer key's department."""


def verify_chain_links(
    evidence: _ChainEvidence,
    call: _ExpectedCall,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    links: type[Link] | type[LicenseLink],
) -> tuple[LinkCheck, ...]:
    """Check the links from the transaction to the issuer key (named as in ``links``):
    the transaction is this chain's, validly signed by the issuer key and makes ``call``;
    its receipt succeeded with the expected event; both are in a block the trusted
    validators certified; the issuer key record is valid at that block."""
    state: dict[str, Any] = {}
    header = evidence.header

    def transaction() -> str:
        tx = Transaction.decode(evidence.raw_transaction)
        if tx.chain_id != chain_id:
            raise _LinkFailed(f"transaction is for chain {tx.chain_id}")
        verify_transaction_signature(tx)
        state["tx"] = tx
        if tx.to != call.bundle_contract:
            raise _LinkFailed(f"transaction does not call the bundle's {call.contract_name}")
        if call.trusted_contract is not None and tx.to != bytes(call.trusted_contract):
            raise _LinkFailed(f"transaction does not call the expected {call.contract_name}")
        call.check_calldata(tx)
        return f"transaction {tx.hash.hex()}"

    def signer() -> str:
        tx = _need(state, "tx")
        if tx.public_key != evidence.issuer_key.public_key:
            raise _LinkFailed("transaction is not signed by the named issuer key")
        return f"signed by account {account_of(tx.public_key).hex()}"

    def receipt() -> str:
        tx = _need(state, "tx")
        decoded = Receipt.decode(evidence.receipt)
        if decoded.tx_hash != tx.hash:
            raise _LinkFailed("receipt belongs to another transaction")
        if decoded.status != 1:
            raise _LinkFailed(f"the {call.action} transaction reverted")
        department = uscc_bytes(evidence.issuer_key.uscc)
        for log in decoded.logs:
            if log.address == tx.to and call.event_matches(log, tx, department):
                return f"{call.event} event found"
        raise _LinkFailed(f"receipt has no matching {call.event} event")

    def tx_inclusion() -> str:
        tx = _need(state, "tx")
        try:
            verify_proof(header.tx_root, tx.hash, evidence.transaction_proof)
        except ChainError as exc:
            raise _LinkFailed(f"transaction is not in the block: {exc}") from exc
        return f"transaction {evidence.transaction_proof.leaf_index} of the block"

    def receipt_inclusion() -> str:
        try:
            verify_proof(header.receipt_root, evidence.receipt, evidence.receipt_proof)
        except ChainError as exc:
            raise _LinkFailed(f"receipt is not in the block: {exc}") from exc
        return "receipt under the receipt root"

    def certificate() -> str:
        if header.validator_set_hash != validator_set.hash():
            raise _LinkFailed("the header names another validator set")
        try:
            verify_commit_certificate(
                evidence.commit_certificate,
                validator_set,
                chain_id=chain_id,
                block_hash=header.hash,
                height=header.height,
            )
        except CommitError as exc:
            raise _LinkFailed(str(exc)) from exc
        return f"block {header.height} certified"

    def issuer_key() -> str:
        key = evidence.issuer_key
        height = header.height
        uscc_bytes(key.uscc)
        if key.read_at_block != height:
            raise _LinkFailed(f"key record read at block {key.read_at_block}, not {height}")
        if not key.valid_from_block <= height < key.valid_until_block:
            raise _LinkFailed(f"key not valid at block {height}")
        if not key.roles & Role.ISSUER:
            raise _LinkFailed("key does not hold the ISSUER role")
        return f"key {key.key_id} of {key.uscc} valid at block {height}"

    return (
        _check_link(links.TRANSACTION, transaction),
        _check_link(links.SIGNER, signer),
        _check_link(links.RECEIPT, receipt),
        _check_link(links.TX_INCLUSION, tx_inclusion),
        _check_link(links.RECEIPT_INCLUSION, receipt_inclusion),
        _check_link(links.CERTIFICATE, certificate),
        _check_link(links.ISSUER_KEY, issuer_key),
    )


# -- the department's own signature --------------------------------------------------------

DEPARTMENT_SIGNATURE_PREFIX = b"lianxin/department-commitment/v1\x00"
"""Domain separation of a department's signature over a commitment."""


def department_sign_bytes(chain_id: int, commitment: bytes) -> bytes:
    """What a department signs (SM2, default signer ID) to vouch for a commitment: the
    prefix, the chain id as 8 bytes big-endian, and the 32-byte commitment. Fixed widths,
    so that any SM2 tool can produce it (``openssl pkeyutl`` over these bytes)."""
    if not 0 <= chain_id < 2**64:
        raise ValueError("chain id out of range")
    if len(commitment) != 32:
        raise ValueError("a commitment is 32 bytes")
    return DEPARTMENT_SIGNATURE_PREFIX + chain_id.to_bytes(8, "big") + bytes(commitment)


DEPARTMENT_ROOT_SIGNATURE_PREFIX = b"lianxin/department-commitments/v1\x00"
"""Domain separation of a department's one signature over the Merkle root of the
commitments of a bulk request."""


def department_root_sign_bytes(chain_id: int, leaf_count: int, root: bytes) -> bytes:
    """What a department signs (SM2, default signer ID) to vouch at once for every
    commitment of a bulk request: the prefix, the chain id and the number of commitments
    (8 bytes big-endian each), and the 32-byte SM3 Merkle root of the commitments in
    request order (:class:`chain.merkle.MerkleTree`: RFC 6962 style, leaf prefix 0x00,
    node prefix 0x01, an odd last node promoted)."""
    if not 0 <= chain_id < 2**64:
        raise ValueError("chain id out of range")
    if not 1 <= leaf_count < 2**64:
        raise ValueError("a signed root covers at least one commitment")
    if len(root) != 32:
        raise ValueError("a Merkle root is 32 bytes")
    return (
        DEPARTMENT_ROOT_SIGNATURE_PREFIX
        + chain_id.to_bytes(8, "big")
        + leaf_count.to_bytes(8, "big")
        + bytes(root)
    )


def root_of_path(commitment: bytes, proof: MerkleProof) -> bytes:
    """The Merkle root ``proof`` leads to from ``commitment`` (its directions checked
    against its leaf index and count); raises ChainError for a malformed path."""
    node = leaf_hash(commitment)
    for step in proof.path:
        if step.sibling_is_left:
            node = node_hash(step.sibling, node)
        else:
            node = node_hash(node, step.sibling)
    verify_proof(node, commitment, proof, leaf_count=proof.leaf_count)
    return node


@dataclass(frozen=True)
class SigningDepartment:
    """The department a verified signature names."""

    uscc: str
    """Its unified social credit code."""
    name: str
    """Its name in IssuerRegistry."""
    key_id: int
    """The signing key's index in ``keysOf(uscc)``."""


@dataclass(frozen=True)
class DepartmentClaim:
    """A department's own SM2 signature over a commitment, and the IssuerRegistry record of
    its key as the registry read it at the anchoring block."""

    signature: bytes
    """DER SM2 signature over :func:`department_sign_bytes` (or, with ``request_proof``,
    over :func:`department_root_sign_bytes`)."""
    name: str
    """The department's name in IssuerRegistry (``departmentInfo``)."""
    key: IssuerKeyClaim | None
    """The key's record at the anchoring block; None if it was not registered there."""
    request_proof: MerkleProof | None = None
    """For a commitment of a bulk request signed once: its path to the signed root of the
    request's commitments; None for a commitment signed alone."""

    def to_json(self) -> dict[str, Any]:
        """The ``department`` member of a bundle's JSON."""
        value: dict[str, Any] = {
            "signature": _hex(self.signature),
            "name": self.name,
            "key": None if self.key is None else issuer_key_json(self.key),
        }
        if self.request_proof is not None:
            value["requestProof"] = _hex(self.request_proof.encode())
        return value

    @classmethod
    def from_json(cls, value: Any) -> DepartmentClaim:
        """Parse :meth:`to_json` output (raises KeyError, TypeError, BundleFormatError)."""
        if not isinstance(value, dict) or not isinstance(value["name"], str):
            raise BundleFormatError("department must be an object with a name")
        key, proof = value["key"], value.get("requestProof")
        return cls(
            signature=_bytes(value["signature"]),
            name=value["name"],
            key=None if key is None else _parse_issuer_key(key),
            request_proof=None if proof is None else MerkleProof.decode(_bytes(proof)),
        )


def check_department(
    claim: DepartmentClaim,
    department_key: bytes,
    commitment: bytes,
    *,
    chain_id: int,
    height: int,
    issuer_registry: bytes,
    signatures: SignatureMemory | None = None,
) -> SigningDepartment:
    """Check that ``claim`` is a valid signature over ``commitment`` (or, for a bulk
    request signed once, over the root its ``request_proof`` leads to from ``commitment``)
    by ``department_key``, a key IssuerRegistry (``issuer_registry``) gave the ISSUER role
    at block ``height``; raises _LinkFailed. ``signatures``, if given, spares checking again
    a signature that verified before (the records of one bulk request share it)."""
    key = claim.key
    if key is None:
        raise _LinkFailed(f"the department's key was not registered at block {height}")
    if key.public_key != bytes(department_key):
        raise _LinkFailed("the key record is not of the key the commitment names")
    if key.issuer_registry != bytes(issuer_registry):
        raise _LinkFailed("the key record is from another IssuerRegistry")
    uscc_bytes(key.uscc)
    if key.read_at_block != height:
        raise _LinkFailed(f"key record read at block {key.read_at_block}, not {height}")
    if not key.valid_from_block <= height < key.valid_until_block:
        raise _LinkFailed(f"the department's key was not valid at block {height}")
    if not key.roles & Role.ISSUER:
        raise _LinkFailed("the department's key does not hold the ISSUER role")
    proof = claim.request_proof
    if proof is None:
        signed = department_sign_bytes(chain_id, commitment)
    else:
        try:
            root = root_of_path(commitment, proof)
        except ChainError as exc:
            raise _LinkFailed(f"the path to the request's signed root is broken: {exc}") from exc
        signed = department_root_sign_bytes(chain_id, proof.leaf_count, root)
    try:
        if signatures is None:
            PublicKey.from_bytes(department_key).verify(claim.signature, signed)
        else:
            signatures.verify(bytes(department_key), claim.signature, signed)
    except ChainError as exc:
        raise _LinkFailed(f"the department's signature does not verify: {exc}") from exc
    return SigningDepartment(uscc=key.uscc, name=claim.name, key_id=key.key_id)
