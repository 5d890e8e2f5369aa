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
    → the IssuerRegistry key record of the signing key, valid at the anchoring height.

Every bundle has one canonical JSON form (:meth:`ProofBundle.canonical_json`): sorted keys,
no whitespace, byte strings as ``0x`` hex, ledger types as their canonical RLP encodings.
"""

from __future__ import annotations

import enum
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain import encoding as enc
from chain.commit import CommitError, Validator, ValidatorSet, verify_commit_certificate
from chain.crypto import sm3
from chain.errors import ChainError
from chain.merkle import MerkleProof, verify_proof
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, Header, Log, Receipt, Transaction
from chain.validation import verify_transaction_signature
from contracts.errors import ContractsError
from contracts.trust import ContractCodec, Role, account_of, uscc_bytes
from sdk import canonical
from sdk.errors import SdkError

BUNDLE_VERSION = 1
"""The bundle format this module writes and reads."""

RECORD_COMMITMENT_PREFIX = b"lianxin/record/v1\x00"
"""Domain separation of record commitments (the Merkle leaves of a batch)."""

FIELD_HASH_PREFIX = b"lianxin/field/v1\x00"
"""Domain separation of salted per-field hashes."""

NO_FIELDS = Hash32(bytes(32))
"""The field root of a record notarized without selectively disclosable fields."""

_NOTARY = ContractCodec.load("Notary")


class BundleFormatError(SdkError):
    """A proof bundle whose JSON does not have the bundle shape or canonical encodings."""


class BundleInvalid(SdkError):
    """Raised by :meth:`BundleVerdict.raise_for_failure`; ``verdict`` says which links
    failed."""

    def __init__(self, verdict: BundleVerdict) -> None:
        failed = ", ".join(f"{c.link}: {c.detail}" for c in verdict.failures)
        super().__init__(f"proof bundle does not verify ({failed})")
        self.verdict = verdict


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value``: RFC 8785 (see :mod:`sdk.canonical`)."""
    return canonical.canonical_json(value)


def metadata_hash(metadata: Mapping[str, Any]) -> Hash32:
    """SM3 of the canonical JSON of a record's metadata."""
    return sm3(canonical_json(dict(metadata)))


def field_hash(name: str, value: Any, salt: bytes) -> Hash32:
    """The salted hash of one disclosable field: SM3 of the prefix and the RLP of
    ``[salt, name, canonical JSON of value]``. Revealing ``value`` and ``salt`` lets anyone
    recompute it; without the salt, guessing ``value`` is no help."""
    payload: list[enc.RLPItem] = [salt, name.encode(), canonical_json(value)]
    return sm3(FIELD_HASH_PREFIX + enc.encode(payload))


def fields_root(field_hashes: Sequence[tuple[str, bytes]]) -> Hash32:
    """SM3 over the RLP of the ``[name, hash]`` pairs sorted by name; NO_FIELDS if none."""
    if not field_hashes:
        return NO_FIELDS
    pairs: list[enc.RLPItem] = [[name.encode(), digest] for name, digest in sorted(field_hashes)]
    return sm3(enc.encode(pairs))


def record_commitment(
    record_id: str, digest: bytes, metadata: bytes, field_hashes: Sequence[tuple[str, bytes]]
) -> Hash32:
    """The 32-byte leaf that stands for a record in its batch: SM3 of the prefix and the RLP
    of ``[record id (16 bytes), digest, metadata hash, fields root]``. The record id makes
    every leaf, and so every batch root, unique."""
    payload: list[enc.RLPItem] = [
        uuid.UUID(record_id).bytes,
        bytes(digest),
        bytes(metadata),
        fields_root(field_hashes),
    ]
    return sm3(RECORD_COMMITMENT_PREFIX + enc.encode(payload))


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

    def commitment(self) -> Hash32:
        """The record's Merkle leaf (see :func:`record_commitment`)."""
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

    def to_json(self) -> dict[str, Any]:
        """The bundle as JSON values (the input of :func:`canonical_json`)."""
        return {**self.record_json(), **self.chain_json()}

    def record_json(self) -> dict[str, Any]:
        """The part of :meth:`to_json` that differs between the records of one batch:
        version, chain id, record and batch (with the record's Merkle path)."""
        return {
            "version": self.version,
            "chainId": self.chain_id,
            "record": {
                "recordId": self.record.record_id,
                "digest": _hex(self.record.digest),
                "metadataHash": _hex(self.record.metadata_hash),
                "fieldHashes": {name: _hex(value) for name, value in self.record.field_hashes},
            },
            "batch": {
                "root": _hex(self.batch.root),
                "leafCount": self.batch.leaf_count,
                "metadataHash": _hex(self.batch.metadata_hash),
                "proof": _hex(self.batch.proof.encode()),
            },
        }

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
            "issuerKey": {
                "issuerRegistry": _hex(self.issuer_key.issuer_registry),
                "uscc": self.issuer_key.uscc,
                "keyId": self.issuer_key.key_id,
                "publicKey": _hex(self.issuer_key.public_key),
                "roles": self.issuer_key.roles,
                "validFromBlock": self.issuer_key.valid_from_block,
                "validUntilBlock": self.issuer_key.valid_until_block,
                "readAtBlock": self.issuer_key.read_at_block,
            },
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


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _bytes(value: Any, size: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise BundleFormatError(f"expected 0x hex, got {value!r}")
    raw = bytes.fromhex(value[2:])
    if size is not None and len(raw) != size:
        raise BundleFormatError(f"expected {size} bytes, got {len(raw)}")
    return raw


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleFormatError(f"expected a non-negative integer, got {value!r}")
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


def _parse_bundle(value: Any) -> ProofBundle:
    if not isinstance(value, dict):
        raise BundleFormatError("a proof bundle is a JSON object")
    if value["version"] != BUNDLE_VERSION:
        raise BundleFormatError(f"unsupported bundle version {value['version']!r}")
    record, batch, anchor, issuer = (
        value["record"],
        value["batch"],
        value["anchor"],
        value["issuerKey"],
    )
    field_hashes = record["fieldHashes"]
    if not isinstance(field_hashes, dict):
        raise BundleFormatError("fieldHashes must be an object")
    return ProofBundle(
        version=BUNDLE_VERSION,
        chain_id=_int(value["chainId"]),
        record=RecordClaim(
            record_id=str(uuid.UUID(record["recordId"])),
            digest=Hash32(_bytes(record["digest"], 32)),
            metadata_hash=Hash32(_bytes(record["metadataHash"], 32)),
            field_hashes=tuple(
                sorted((str(name), Hash32(_bytes(h, 32))) for name, h in field_hashes.items())
            ),
        ),
        batch=BatchClaim(
            root=Hash32(_bytes(batch["root"], 32)),
            leaf_count=_int(batch["leafCount"]),
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
    )


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


def _verify_chain_links(
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


EVIDENCE_KEY_PREFIX = b"lianxin/bundle-evidence/v1\x00"
"""Domain separation of :func:`evidence_key`."""

CHAIN_LINKS = (
    Link.TRANSACTION,
    Link.SIGNER,
    Link.RECEIPT,
    Link.TX_INCLUSION,
    Link.RECEIPT_INCLUSION,
    Link.CERTIFICATE,
    Link.ISSUER_KEY,
)
"""The links that depend only on the batch and the chain, not on the record: the same for
every record of a batch."""


def evidence_key(
    bundle: ProofBundle, validator_set: ValidatorSet, *, chain_id: int, notary: bytes | None
) -> Hash32:
    """SM3 over everything the :data:`CHAIN_LINKS` of ``bundle`` read (batch root, leaf
    count and metadata hash; anchoring transaction, receipt, both inclusion proofs; header,
    certificate, issuer key record) and the verifier's trusted inputs. Equal keys mean the
    chain links come out the same."""
    batch, anchor, key = bundle.batch, bundle.anchor, bundle.issuer_key
    payload: list[enc.RLPItem] = [
        enc.encode_int(chain_id),
        validator_set.hash(),
        b"" if notary is None else bytes(notary),
        batch.root,
        enc.encode_int(batch.leaf_count),
        batch.metadata_hash,
        anchor.notary,
        anchor.raw_transaction,
        anchor.transaction_proof.encode(),
        anchor.receipt,
        anchor.receipt_proof.encode(),
        bundle.header.encode(),
        bundle.commit_certificate.encode(),
        [
            key.issuer_registry,
            key.uscc.encode(),
            enc.encode_int(key.key_id),
            key.public_key,
            enc.encode_int(key.roles),
            enc.encode_int(key.valid_from_block),
            enc.encode_int(key.valid_until_block),
            enc.encode_int(key.read_at_block),
        ],
    ]
    return sm3(EVIDENCE_KEY_PREFIX + enc.encode(payload))


class VerifiedEvidence:
    """A bounded memory of bundle chain halves that verified, keyed by :func:`evidence_key`,
    so that the records of one batch pay the signature checks (transaction, commit
    certificate) once. Only successes are kept; a failing chain half is checked again every
    time. Thread-safe; pass one to :func:`verify_bundle` as ``verified``."""

    def __init__(self, capacity: int = 1024) -> None:
        """Remember at most ``capacity`` chain halves (least recently used go first)."""
        self.capacity = capacity
        self._checks: OrderedDict[bytes, tuple[LinkCheck, ...]] = OrderedDict()
        self._keys: OrderedDict[tuple[Any, ...], tuple[Hash32, tuple[Any, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def key_of(
        self,
        bundle: ProofBundle,
        validator_set: ValidatorSet,
        *,
        chain_id: int,
        notary: bytes | None,
    ) -> Hash32:
        """:func:`evidence_key`, computed once for bundles that share their chain half's
        objects (as the bundles a registry builds for the records of one batch do): the
        memo is keyed by those objects' identities, which it holds on to, so an identity
        cannot be reused by another object while it is remembered."""
        held = (
            bundle.anchor,
            bundle.header,
            bundle.commit_certificate,
            bundle.issuer_key,
            validator_set,
        )
        memo = (
            *map(id, held),
            chain_id,
            None if notary is None else bytes(notary),
            bytes(bundle.batch.root),
            bundle.batch.leaf_count,
            bytes(bundle.batch.metadata_hash),
        )
        with self._lock:
            found = self._keys.get(memo)
            if found is not None:
                self._keys.move_to_end(memo)
                return found[0]
        key = evidence_key(bundle, validator_set, chain_id=chain_id, notary=notary)
        with self._lock:
            self._keys[memo] = (key, held)
            while len(self._keys) > self.capacity:
                self._keys.popitem(last=False)
        return key

    def recall(self, key: bytes) -> tuple[LinkCheck, ...] | None:
        """The chain-link checks remembered under ``key``, or None."""
        with self._lock:
            checks = self._checks.get(key)
            if checks is not None:
                self._checks.move_to_end(key)
            return checks

    def remember(self, key: bytes, checks: tuple[LinkCheck, ...]) -> None:
        """Remember ``checks`` (every one of which must hold) under ``key``."""
        if not all(check.ok for check in checks):
            raise ValueError("only chain halves that verified are remembered")
        with self._lock:
            self._checks[key] = checks
            self._checks.move_to_end(key)
            while len(self._checks) > self.capacity:
                self._checks.popitem(last=False)


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

    record_checks = (_check_link(Link.RECORD, record), _check_link(Link.BATCH, batch))
    key = None
    if verified is not None:
        key = verified.key_of(bundle, validator_set, chain_id=chain_id, notary=notary)
        remembered = verified.recall(key)
        if remembered is not None:
            return BundleVerdict((*record_checks, *remembered))
    anchor = bundle.anchor
    chain_checks = _verify_chain_links(
        _ChainEvidence(
            raw_transaction=anchor.raw_transaction,
            transaction_proof=anchor.transaction_proof,
            receipt=anchor.receipt,
            receipt_proof=anchor.receipt_proof,
            header=bundle.header,
            commit_certificate=bundle.commit_certificate,
            issuer_key=bundle.issuer_key,
        ),
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
    return BundleVerdict((*record_checks, *chain_checks))


# -- license issuance bundles ----------------------------------------------------------------

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
    if value["version"] != BUNDLE_VERSION:
        raise BundleFormatError(f"unsupported bundle version {value['version']!r}")
    claim, anchor, issuer = value["license"], value["anchor"], value["issuerKey"]
    predecessor = claim.get("predecessor")
    return LicenseBundle(
        chain_id=_int(value["chainId"]),
        license=LicenseClaim(
            identifier=str(claim["identifier"]),
            id_hash=Hash32(_bytes(claim["idHash"], 32)),
            holder_commitment=Hash32(_bytes(claim["holderCommitment"], 32)),
            metadata_hash=Hash32(_bytes(claim["metadataHash"], 32)),
            valid_until=_int(claim["validUntil"]),
            predecessor=None if predecessor is None else str(predecessor),
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
    and is in a block ≥ 2/3 of the trusted validators certified. What it cannot prove: the
    license's status now (suspended, revoked, expired): ask the chain (``statusOf``)."""
    claim = bundle.license

    def license_link() -> str:
        if bundle.chain_id != chain_id:
            raise _LinkFailed(f"bundle is for chain {bundle.chain_id}, not {chain_id}")
        if sm3(claim.identifier.encode("ascii")) != claim.id_hash:
            raise _LinkFailed("the identifier does not hash to the claimed key")
        if expected_identifier is not None and claim.identifier != expected_identifier:
            raise _LinkFailed("the bundle is for another license")
        return f"license {claim.identifier}"

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

    chain_checks = _verify_chain_links(
        _ChainEvidence(
            raw_transaction=bundle.raw_transaction,
            transaction_proof=bundle.transaction_proof,
            receipt=bundle.receipt,
            receipt_proof=bundle.receipt_proof,
            header=bundle.header,
            commit_certificate=bundle.commit_certificate,
            issuer_key=bundle.issuer_key,
        ),
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
    return BundleVerdict((_check_link(LicenseLink.LICENSE, license_link), *chain_checks))


def _is_batch_anchored(log: Log) -> bool:
    try:
        return _NOTARY.decode_log(log).name == "BatchAnchored"
    except ContractsError:
        return False
