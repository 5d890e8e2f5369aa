"""What a department, a subject or an auditor checks about data sharing, offline: the
hash of an authorization's terms and the messages consent is signed over; access log
entries, their hash chain, and the receipt the gateway gives for each access.

An access log entry is a JSON object (see :func:`access_entry_hash`); its hash is the
digest of a record the registry signs with its own key and anchors in a Notary batch like
any notarized record, so its proof bundle verifies with :func:`sdk.bundle.verify_bundle`.
Entries of one stream (one authorization) form a hash chain: each names its position and
the hash of the one before, so an entry changed, left out or moved shows against the
anchored hashes (:func:`verify_access_chain`).

A credit check made of a subject is logged the same way, as a check entry (see
:func:`check_entry_hash`) anchored as a record of its own kind; its receipt is an
:class:`AccessReceipt` whose ``kind`` is :data:`CHECK_KIND`, verified by the same calls.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain.commit import ValidatorSet
from chain.crypto import PublicKey, sm3
from chain.errors import ChainError
from chain.merkle import MerkleProof
from chain.primitives import Hash32
from sdk.bundle import ProofBundle, verify_bundle
from sdk.bundle_links import (
    BundleVerdict,
    department_root_sign_bytes,
    department_sign_bytes,
    root_of_path,
)
from sdk.commitments import (
    canonical_json,
    commitment_salt,
    department_record_commitment,
    salted_metadata_hash,
)
from sdk.errors import SdkError

SUBJECT_COMMITMENT_PREFIX = b"lianxin/authorization-subject/v1\x00"
"""Domain separation of subject commitments."""

SUBJECT_SALT_SIZE = 16
"""Bytes of a subject commitment's salt."""

TERMS_HASH_PREFIX = b"lianxin/authorization-terms/v1\x00"
"""Domain separation of the terms hash (what consent is given to)."""

CONSENT_PREFIX = b"lianxin/authorization-consent/v1\x00"
"""Prefix of what an enterprise signs to consent."""

APPROVAL_PREFIX = b"lianxin/subject-approval/v1\x00"
"""Prefix of what an identity provider signs to attest a citizen's approval."""

ACCESS_ENTRY_PREFIX = b"lianxin/access-log-entry/v1\x00"
"""Domain separation of access log entry hashes."""

AUTHORIZATION_EVENT_PREFIX = b"lianxin/authorization-event/v1\x00"
"""Domain separation of authorization event hashes (grant, amend, revoke, expire)."""

LOG_METADATA = {"kind": "access-log-entry"}
"""The metadata of the record an access log entry is anchored as."""

EVENT_METADATA = {"kind": "authorization-event"}
"""The metadata of the record an authorization event is anchored as."""

GENESIS = bytes(32)
"""The ``previous`` of the first entry of a stream."""

CHECK_ENTRY_PREFIX = b"lianxin/credit-check-entry/v1\x00"
"""Domain separation of credit check entry hashes."""

CHECK_METADATA = {"kind": "credit-check-entry"}
"""The metadata of the record a credit check entry is anchored as."""

ACCESS_KIND = "access"
"""The receipt of an access log entry."""

CHECK_KIND = "credit-check"
"""The receipt of a credit check entry."""


class ReceiptInvalid(SdkError):
    """An access receipt, or a sequence of access log entries, that does not prove what it
    claims; the message says which check failed."""


def subject_commitment(kind: str, identifier: str, salt: bytes) -> Hash32:
    """The salted SM3 commitment of a data subject: SM3(prefix, kind (``citizen`` or
    ``enterprise``), NUL, identifier, salt). Without the salt, guessing the identifier is
    no help."""
    if len(salt) != SUBJECT_SALT_SIZE:
        raise ValueError(f"a subject salt is {SUBJECT_SALT_SIZE} bytes")
    return sm3(SUBJECT_COMMITMENT_PREFIX + kind.encode() + b"\x00" + identifier.encode() + salt)


def terms_hash(terms_json: Mapping[str, Any]) -> Hash32:
    """SM3 of the prefix and the canonical JSON of an authorization's terms (the
    ``terms`` object the registry answers): the request R a subject approves."""
    return sm3(TERMS_HASH_PREFIX + canonical_json(dict(terms_json)))


def consent_sign_bytes(chain_id: int, terms_digest: bytes) -> bytes:
    """What an enterprise signs to consent to the terms with hash ``terms_digest``."""
    return CONSENT_PREFIX + chain_id.to_bytes(8, "big") + bytes(terms_digest)


def approval_sign_bytes(chain_id: int, subject_commitment: bytes, terms_digest: bytes) -> bytes:
    """What an identity provider signs: subject S (its commitment) approved request R (the
    terms hash), on chain ``chain_id``."""
    return APPROVAL_PREFIX + chain_id.to_bytes(8, "big") + bytes(subject_commitment) + terms_digest


def access_entry_hash(entry: Mapping[str, Any]) -> Hash32:
    """SM3 of the prefix and the canonical JSON of one access log entry."""
    return sm3(ACCESS_ENTRY_PREFIX + canonical_json(dict(entry)))


def check_entry_hash(entry: Mapping[str, Any]) -> Hash32:
    """SM3 of the prefix and the canonical JSON of one credit check entry."""
    return encoded_check_entry_hash(canonical_json(dict(entry)))


def encoded_check_entry_hash(encoded: bytes) -> Hash32:
    """:func:`check_entry_hash` of the entry whose canonical JSON is ``encoded`` (for a
    writer that stores that text too, and so encodes it once)."""
    return sm3(CHECK_ENTRY_PREFIX + encoded)


_KINDS: dict[str, tuple[Any, Mapping[str, str]]] = {
    ACCESS_KIND: (access_entry_hash, LOG_METADATA),
    CHECK_KIND: (check_entry_hash, CHECK_METADATA),
}
"""Receipt kind → how its entry hashes, and the metadata of its record."""


def event_hash(event: Mapping[str, Any]) -> Hash32:
    """SM3 of the prefix and the canonical JSON of one authorization event."""
    return sm3(AUTHORIZATION_EVENT_PREFIX + canonical_json(dict(event)))


def signed_commitment(
    registry_key: bytes, digest: bytes, metadata: Mapping[str, Any], salt: bytes
) -> Hash32:
    """The commitment of the record the registry signs for an entry or event with hash
    ``digest``: a version 2 record commitment of its key, the digest, and its salted
    metadata, with no fields."""
    return commitment_over_metadata_hash(registry_key, digest, salted_metadata_hash(metadata, salt))


def commitment_over_metadata_hash(
    registry_key: bytes, digest: bytes, metadata_hash: bytes
) -> Hash32:
    """:func:`signed_commitment` with its salted metadata hash made already (for a signer
    that stores that hash too, and so makes it once)."""
    return department_record_commitment(registry_key, Hash32(digest), metadata_hash, ())


@dataclass(frozen=True)
class AccessReceipt:
    """What the gateway hands the caller for one access, allowed or refused."""

    entry: Mapping[str, Any]
    """The access log entry."""
    record_id: str
    """The id of the record the entry is anchored as."""
    registry_key: bytes
    """The registry's SM2 public key that signed the entry."""
    metadata_salt: bytes
    """The salt of the record's metadata hash."""
    signature: bytes
    """The registry's signature over the record's commitment (``department_sign_bytes``)."""
    chain_id: int
    """The chain it is signed for and anchored on."""
    proof: bytes | None = None
    """When the registry signed the entries of one group at once: the encoded Merkle path
    from this record's commitment to the signed root."""
    bundle: ProofBundle | None = None
    """The record's proof bundle once anchored."""
    kind: str = ACCESS_KIND
    """What the entry is: :data:`ACCESS_KIND` or :data:`CHECK_KIND`."""

    @property
    def entry_hash(self) -> Hash32:
        """The entry's hash (:func:`access_entry_hash`, :func:`check_entry_hash`)."""
        hashing, _ = _KINDS[self.kind]
        digest: Hash32 = hashing(self.entry)
        return digest

    @property
    def metadata(self) -> Mapping[str, str]:
        """The metadata of the record the entry is anchored as."""
        return _KINDS[self.kind][1]

    @classmethod
    def from_json(cls, value: Any) -> AccessReceipt:
        """Parse a receipt as the registry answers it; raises ReceiptInvalid."""
        try:
            bundle = value.get("bundle")
            kind = str(value.get("entryKind", ACCESS_KIND))
            if kind not in _KINDS:
                raise ValueError(f"unknown entry kind {kind!r}")
            metadata_salt = commitment_salt(value["metadataSalt"])
            return cls(
                entry=dict(value["entry"]),
                record_id=str(value["recordId"]),
                registry_key=bytes.fromhex(value["registryKey"]),
                metadata_salt=metadata_salt,
                signature=base64.b64decode(value["registrySignature"], validate=True),
                chain_id=int(value["chainId"]),
                proof=(
                    None
                    if value.get("registryProof") is None
                    else bytes.fromhex(value["registryProof"])
                ),
                bundle=None if bundle is None else ProofBundle.from_json(bundle),
                kind=kind,
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            raise ReceiptInvalid(f"not an access receipt: {exc}") from None


def verify_receipt_signature(receipt: AccessReceipt, registry_key: bytes) -> None:
    """Check that the registry key the caller trusts (``registry_key``) signed the entry
    (its record's commitment, or the root of its group that ``proof`` leads to); raises
    ReceiptInvalid. Needs no anchoring: this is what a caller checks at once."""
    if bytes(receipt.registry_key) != bytes(registry_key):
        raise ReceiptInvalid("the receipt is signed by another key than the registry's")
    commitment = signed_commitment(
        receipt.registry_key, receipt.entry_hash, receipt.metadata, receipt.metadata_salt
    )
    try:
        if receipt.proof is None:
            message = department_sign_bytes(receipt.chain_id, commitment)
        else:
            path = MerkleProof.decode(receipt.proof)
            root = root_of_path(commitment, path)
            message = department_root_sign_bytes(receipt.chain_id, path.leaf_count, root)
        PublicKey.from_bytes(registry_key).verify(receipt.signature, message)
    except (ChainError, ValueError):
        raise ReceiptInvalid("the registry's signature over the entry does not verify") from None


def verify_receipt(
    receipt: AccessReceipt,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    registry_key: bytes,
    notary: bytes | None = None,
) -> BundleVerdict:
    """Check a receipt offline, through the one bundle verifier: the registry's signature
    over the entry, then the proof bundle of its record (the record's digest is the entry's
    hash, and every link of :func:`sdk.bundle.verify_bundle` holds against the trusted
    validator set). Returns the bundle's verdict; raises ReceiptInvalid when the receipt
    has no bundle yet, names another chain, or any check fails."""
    if receipt.chain_id != chain_id:
        raise ReceiptInvalid(f"the receipt is for chain {receipt.chain_id}, not {chain_id}")
    verify_receipt_signature(receipt, registry_key)
    if receipt.bundle is None:
        raise ReceiptInvalid("the entry is not anchored yet: ask for the receipt again later")
    if bytes(receipt.bundle.record.department_key or b"") != bytes(registry_key):
        raise ReceiptInvalid("the anchored record was not signed by the registry's key")
    verdict = verify_bundle(
        receipt.bundle,
        validator_set,
        chain_id=chain_id,
        expected_digest=receipt.entry_hash,
        notary=notary,
    )
    if not verdict.valid:
        failed = "; ".join(f"{c.link.value}: {c.detail}" for c in verdict.failures)
        raise ReceiptInvalid(f"the entry's proof bundle does not verify: {failed}")
    return verdict


def verify_access_chain(
    entries: Sequence[Mapping[str, Any]],
    *,
    from_start: bool = True,
    head: bytes | None = None,
) -> None:
    """Check that ``entries`` are one unbroken stretch of one stream's hash chain, in
    order: the same stream, consecutive positions (from 0 if ``from_start``), and each
    entry naming the hash of the one before (the first of a stream naming
    :data:`GENESIS`), the last one hashing to ``head`` if given (the stream's head as
    last seen: a receipt's entry, say). Raises ReceiptInvalid at the first break: an entry
    changed after the next one was written, one left out, two swapped, or the tail cut off
    (given ``head``) all break it. That each entry's
    hash is the anchored one is :func:`verify_receipt`'s part."""
    previous: Hash32 | None = None
    for index, entry in enumerate(entries):
        try:
            stream, position = entry["stream"], entry["position"]
            named_previous = bytes.fromhex(entry["previous"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ReceiptInvalid(f"entry {index} is malformed: {exc}") from None
        if stream != entries[0]["stream"]:
            raise ReceiptInvalid(f"entry {index} belongs to another stream")
        expected_position = (0 if from_start else entries[0]["position"]) + index
        if position != expected_position:
            raise ReceiptInvalid(
                f"entry {index} is at position {position}, not {expected_position}"
            )
        if previous is not None and named_previous != previous:
            raise ReceiptInvalid(f"entry {index} does not follow the entry before it")
        if previous is None and position == 0 and named_previous != GENESIS:
            raise ReceiptInvalid("the first entry of the stream names a predecessor")
        previous = access_entry_hash(entry)
    if head is not None and previous != bytes(head):
        raise ReceiptInvalid("the stream does not end at the head it should end at")


__all__ = [
    "ACCESS_ENTRY_PREFIX",
    "ACCESS_KIND",
    "APPROVAL_PREFIX",
    "AUTHORIZATION_EVENT_PREFIX",
    "CHECK_ENTRY_PREFIX",
    "CHECK_KIND",
    "CHECK_METADATA",
    "CONSENT_PREFIX",
    "EVENT_METADATA",
    "GENESIS",
    "LOG_METADATA",
    "SUBJECT_COMMITMENT_PREFIX",
    "SUBJECT_SALT_SIZE",
    "TERMS_HASH_PREFIX",
    "AccessReceipt",
    "ReceiptInvalid",
    "access_entry_hash",
    "approval_sign_bytes",
    "check_entry_hash",
    "commitment_over_metadata_hash",
    "consent_sign_bytes",
    "encoded_check_entry_hash",
    "event_hash",
    "signed_commitment",
    "subject_commitment",
    "terms_hash",
    "verify_access_chain",
    "verify_receipt",
    "verify_receipt_signature",
]
