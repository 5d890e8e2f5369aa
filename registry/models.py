"""The registry's tables (SQLAlchemy 2 declarative models). The schema itself is created
and changed only by the Alembic migrations in ``registry/migrations``."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SEQUENCE_TYPE = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit counter; SQLite counts only in an INTEGER PRIMARY KEY."""


class Base(DeclarativeBase):
    """Declarative base of every registry table."""


class RecordStatus(enum.StrEnum):
    """Where a record is on its way to the chain."""

    ACCEPTED = "accepted"
    """Stored, waiting to be sealed into a batch."""
    SEALED = "sealed"
    """In a batch whose anchoring transaction is not confirmed yet."""
    ANCHORED = "anchored"
    """Its batch root is anchored on chain."""
    REVOKED = "revoked"
    """Shown, never stored: an anchored record whose leaf revocation is confirmed on chain
    (see ``record_revocations``)."""


class BatchStatus(enum.StrEnum):
    """Where a batch is."""

    SEALED = "sealed"
    """Built and queued in the outbox."""
    ANCHORED = "anchored"
    """Its root is anchored; block number and hash are known."""


class OutboxState(enum.StrEnum):
    """Progress of one anchoring transaction."""

    PENDING = "pending"
    """Not known to be sent; ``raw_tx`` (if set) is what to send."""
    SENT = "sent"
    """Accepted by the node (or already known to it); waiting for the receipt."""
    CONFIRMED = "confirmed"
    """Receipt with status 1 seen."""


class Client(Base):
    """A department system allowed to call the registry, identified by its SM2 key."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    public_key: Mapped[str] = mapped_column(String(130))
    """Uncompressed SM2 public key, lowercase hex."""
    roles: Mapped[list[str]] = mapped_column(JSON)
    issuer_codes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    """Issuer codes (USCCs, administrative division codes) it may issue licenses under,
    its own USCC included; NULL for clients registered before: their USCC only
    (:func:`registry.issuers.issuer_codes_of`)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Nonce(Base):
    """A request nonce already used by a client, kept until ``expires_at``."""

    __tablename__ = "nonces"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Record(Base):
    """A notarized record: its digest, metadata and salted field hashes."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key", name="uq_records_client_idempotency"),
        Index("ix_records_status", "status"),
        Index("ix_records_department_key", "department_key", "seq"),
    )

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    """Acceptance order; batches take records in this order."""
    id: Mapped[str] = mapped_column(String(36), unique=True)
    """The record id given to the client (a UUID)."""
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    metadata_hash: Mapped[str] = mapped_column(String(64))
    field_hashes: Mapped[dict[str, str]] = mapped_column(JSON)
    field_salts: Mapped[dict[str, str] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    """Never kept (NULL): the salts are the department's, handed back once in the answer
    to the request. Records notarized before kept them here; the migration that stopped
    keeping them erased them."""
    department_key: Mapped[str | None] = mapped_column(String(130), nullable=True)
    """Version 2 records: the notarizing client's SM2 public key (hex), named by the
    commitment; NULL for version 1 records (notarized before departments signed)."""
    department_signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Version 2 records: the department's DER SM2 signature (hex) over the commitment
    (sdk.bundle_links.department_sign_bytes), or, for a record of a bulk request signed
    once, over the Merkle root of the request's commitments."""
    department_proof: Mapped[str | None] = mapped_column(Text, nullable=True)
    """For a record of a bulk request signed once: its Merkle path (hex MerkleProof
    encoding) from the commitment to the signed root; NULL for a record signed alone."""
    commitment: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    """SM3 of the request body, to tell a retry from a different request under one key."""
    status: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    leaf_index: Mapped[int | None] = mapped_column(Integer)
    merkle_path: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The siblings of the record's inclusion proof in its batch, 32 bytes each, leaf level
    first (``MerkleProof.from_siblings``); written at sealing, empty for records sealed by
    an older version, whose tree is rebuilt instead."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Batch(Base):
    """A sealed Merkle tree of record commitments and its anchoring."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    root: Mapped[str] = mapped_column(String(64), unique=True)
    leaf_count: Mapped[int] = mapped_column(Integer)
    metadata_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[str | None] = mapped_column(String(64))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(64))
    evidence_json: Mapped[str | None] = mapped_column(Text)
    """The chain half of every proof bundle of the batch (anchoring tx, receipt, proofs,
    header, certificate, validators, issuer key), fetched once when it is anchored."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    anchored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Outbox(Base):
    """One anchoring transaction per batch. The signed transaction is stored before it is
    sent, so a retry sends the very same bytes."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    raw_tx: Mapped[str | None] = mapped_column(Text)
    """Hex of the signed transaction's canonical encoding."""
    tx_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChainValue(Base):
    """Facts about the chain the registry recorded: contract addresses (written by
    bootstrap), the chain id and the trusted validator set."""

    __tablename__ = "chain_values"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LicenseState(enum.StrEnum):
    """The status of a license as the registry last saw it confirmed on chain (the chain's
    ``statusOf`` is the authority; this copy serves lists and the owner's view)."""

    PENDING = "pending"
    """Stored; its issuing transaction is not confirmed yet."""
    ISSUED = "issued"
    """In force."""
    CHANGED = "changed"
    """Replaced by a newer version."""
    SUSPENDED = "suspended"
    """Suspended."""
    REVOKED = "revoked"
    """Revoked."""
    EXPIRED = "expired"
    """Recorded as expired."""
    FAILED = "failed"
    """The issuing transaction reverted; the license does not exist on chain."""


class LicenseAction(enum.StrEnum):
    """A LicenseRegistry call the registry makes for a department."""

    ISSUE = "issue"
    CHANGE = "change"
    SUSPEND = "suspend"
    RESUME = "resume"
    REVOKE = "revoke"
    EXPIRE = "expire"


class OperationState(enum.StrEnum):
    """Progress of one license transaction."""

    PENDING = "pending"
    """Signed and stored; not known to be sent."""
    SENT = "sent"
    """Accepted by the node (or known to it); waiting for the receipt."""
    CONFIRMED = "confirmed"
    """Receipt with status 1 seen."""
    REVERTED = "reverted"
    """Receipt with status 0: the call changed nothing on chain."""


class License(Base):
    """One e-license version: its GB/T 36903 metadata (holder identifier masked, and sealed
    beside it; never sent to the chain), the sealed salt of its holder commitment, and what
    the chain recorded for it."""

    __tablename__ = "licenses"

    identifier: Mapped[str] = mapped_column(String(128), primary_key=True)
    """The GB/T 36904 identifier (check character verified on input)."""
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SM3 of the identifier: the license's key in LicenseRegistry."""
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    """The department client that issued it."""
    department: Mapped[str] = mapped_column(String(18), index=True)
    """USCC of that client's department: only its clients may act on the license."""
    metadata_json: Mapped[str] = mapped_column(Text)
    """Canonical JSON of the metadata (LicenseMetadata.canonical_json)."""
    salt: Mapped[str] = mapped_column(Text)
    """Salt of the holder commitment and of the metadata hash, sealed with the registry's
    data key (registry.data_vault); hex for licenses stored before sealing."""
    holder_id_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The holder's identifier, sealed (``metadata_json`` holds it masked); NULL for
    licenses stored before sealing, whose metadata_json holds it in clear."""
    holder_commitment: Mapped[str] = mapped_column(String(64))
    metadata_hash: Mapped[str] = mapped_column(String(64))
    valid_until: Mapped[int] = mapped_column(BigInteger)
    """``validUntil`` on chain: seconds since the epoch from which it is expired; 0: none."""
    status: Mapped[str] = mapped_column(String(16))
    predecessor: Mapped[str | None] = mapped_column(String(128))
    successor: Mapped[str | None] = mapped_column(String(128))
    tx_hash: Mapped[str | None] = mapped_column(String(64))
    """The transaction that created it on chain (issue, or change of its predecessor)."""
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(64))
    anchored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Time of the block that created it on chain."""
    evidence_json: Mapped[str | None] = mapped_column(Text)
    """The chain half of its issuance proof bundle, fetched once the block is certified."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    department_key: Mapped[str | None] = mapped_column(String(130), nullable=True)
    """Hex public key of the client that signed the license's commitment (NULL for
    licenses issued before departments signed)."""
    department_signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Hex DER SM2 signature of that key over the commitment (sdk.license_signing)."""
    commitment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The license's commitment (sdk.license_signing.license_commitment), hex."""


class LicenseOperation(Base):
    """One LicenseRegistry transaction made for a department request — the outbox of the
    license lifecycle. The signed transaction is stored before it is sent, so a retry sends
    the very same bytes; the contract refuses a second issue or transition, so nothing
    happens twice on chain."""

    __tablename__ = "license_operations"
    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key", name="uq_license_ops_client_idempotency"),
        # One signed status change per history position of a license: two requests signed
        # for the same position cannot both be sent.
        UniqueConstraint("identifier", "sequence", name="uq_license_ops_identifier_sequence"),
    )

    id: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    identifier: Mapped[str] = mapped_column(ForeignKey("licenses.identifier"), index=True)
    """The license acted on (the old version for a change)."""
    new_identifier: Mapped[str | None] = mapped_column(ForeignKey("licenses.identifier"))
    """For a change: the new version."""
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    """SM3 of the request (method, path, body), to tell a retry from another request."""
    state: Mapped[str] = mapped_column(String(16), index=True)
    raw_tx: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str] = mapped_column(String(64))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    department_key: Mapped[str | None] = mapped_column(String(130), nullable=True)
    """For a status change: hex public key of the client that signed it (NULL for issue,
    change, and status changes made before departments signed them)."""
    department_signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Hex DER SM2 signature of that key over ``commitment`` (sdk.license_status_signing)."""
    commitment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The status change's commitment (license, action, reason, history position, chain)."""
    sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The position in the license's on-chain history the signed status change takes."""
    evidence_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The chain half of the status change's proof, fetched once its block is certified."""


class RecordRevocation(Base):
    """One leaf revocation of a notarized record on the Notary (``revokeLeaf``) — the
    outbox of record revocations. The signed transaction is stored before it is sent, so a
    retry sends the very same bytes; the Notary refuses to revoke a leaf twice."""

    __tablename__ = "record_revocations"

    id: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), unique=True)
    """The record revoked (one revocation per record)."""
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    """The client that asked for it."""
    reason: Mapped[int] = mapped_column(Integer)
    """Reason code (contracts.trust.Reason)."""
    state: Mapped[str] = mapped_column(String(16), index=True)
    """An OperationState: pending, sent, confirmed or reverted."""
    raw_tx: Mapped[str | None] = mapped_column(Text)
    """Hex of the signed ``revokeLeaf`` transaction (signed by the driver if NULL)."""
    tx_hash: Mapped[str | None] = mapped_column(String(64))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
