"""The registry's own signature on what data sharing records: each access log entry and
each authorization event becomes a version 2 record of the registry's log client, its
digest the entry's (or event's) hash and its commitment signed with the registry's key.
The shared batcher seals it and the anchorer anchors it like any notarized record, so its
proof bundle is the ordinary one (:func:`sdk.bundle.verify_bundle`).

Also here: the registry's data vault for subjects' identifiers and salts, and the keyed
blind index that finds a subject's authorizations without its identifier in clear."""

from __future__ import annotations

import base64
import hmac
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chain.crypto import PrivateKey
from chain.merkle import MerkleTree
from registry.chain_gateway import ChainGateway
from registry.data_vault import DataVault
from registry.db import Database
from registry.models import Client, RecordStatus
from sdk.bundle_links import department_root_sign_bytes, department_sign_bytes
from sdk.commitments import COMMITMENT_SALT_SIZE, salted_metadata_hashes
from sdk.data_receipts import commitment_over_metadata_hash

LOG_CLIENT_ID = "registry-access-log"
"""The client the registry's own log records are stored under (no roles: it signs no
requests)."""

SUBJECT_INDEX_LABEL = b"lianxin/authorization-subject-index/v1"
"""Domain separation of the blind-index key derived from the signing key."""


@dataclass(frozen=True)
class SignedLogRecord:
    """A ``records`` row for one entry or event, and what its receipt needs."""

    values: dict[str, Any]
    """The row, column by column."""
    metadata_salt: bytes
    """The salt of its metadata hash."""
    signature: bytes
    """The registry's DER signature over its commitment, or over the Merkle root of the
    commitments signed with it (then ``proof`` leads there)."""
    proof: bytes | None = None
    """For a record signed in a group: the encoded Merkle path from its commitment to the
    signed root (``department_root_sign_bytes``); None when signed alone."""

    @property
    def record_id(self) -> str:
        """The record id."""
        return str(self.values["id"])


class RegistrySigner:
    """Signs log records with the registry's key; seals and indexes subjects. Safe to use
    from several threads; nothing is read before it is first needed."""

    def __init__(self, db: Database, gateway: ChainGateway) -> None:
        """Sign with ``gateway``'s signer key, store under ``db``'s log client."""
        self.db = db
        self.gateway = gateway
        self._lock = threading.Lock()
        self._client_ready = False
        self._vault: DataVault | None = None
        self._index_key: bytes | None = None

    @property
    def key(self) -> PrivateKey:
        """The registry's signing key."""
        return self.gateway.signer().private_key

    @property
    def public_key(self) -> bytes:
        """Its public key, uncompressed (65 bytes)."""
        return bytes(self.key.public_key.to_bytes())

    def chain_id(self) -> int:
        """The chain records are signed for."""
        return int(self.gateway.chain_id())

    def vault(self) -> DataVault:
        """The sealer of identifiers and salts."""
        if self._vault is None:
            self._vault = DataVault.for_signing_key(self.key)
        return self._vault

    def subject_index(self, kind: str, identifier: str) -> str:
        """Keyed SM3 of a subject: equal for equal subjects, meaningless without the key."""
        if self._index_key is None:
            self._index_key = hmac.new(self.key.to_bytes(), SUBJECT_INDEX_LABEL, "sm3").digest()
        message = kind.encode() + b"\x00" + identifier.encode()
        return hmac.new(self._index_key, message, "sm3").hexdigest()

    def ensure_log_client(self) -> str:
        """The id of the log client, registered on first use (under the USCC IssuerRegistry
        gives the registry's key). The first call also loads the signing key and the chain
        id: callers make it before opening the transaction that signs, which must not wait
        on them (reading the chain id the first time opens a write transaction of its own,
        which on SQLite would wait for the one already open in the same thread)."""
        with self._lock:
            if self._client_ready:
                return LOG_CLIENT_ID
            self.chain_id()
            self.gateway.signer()
            with self.db.session() as session:
                if session.get(Client, LOG_CLIENT_ID) is None:
                    reader = self.gateway.reader
                    uscc, _key_id, _record = self.gateway.issuer_key_at(
                        self.gateway.signer().address, reader.block_number()
                    )
                    session.add(
                        Client(
                            id=LOG_CLIENT_ID,
                            name="registry: data-sharing log",
                            uscc=uscc,
                            public_key=self.public_key.hex(),
                            roles=[],
                            issuer_codes=None,
                            created_at=datetime.now(UTC),
                        )
                    )
            self._client_ready = True
            return LOG_CLIENT_ID

    def record(self, digest: bytes, metadata: dict[str, Any], chain_id: int) -> SignedLogRecord:
        """A ``records`` row anchoring ``digest`` (an entry's or event's hash), signed by
        the registry for ``chain_id``. Call :meth:`ensure_log_client` once before."""
        (signed,) = self.records([digest], metadata, chain_id)
        return signed

    def records(
        self, digests: list[bytes], metadata: dict[str, Any], chain_id: int
    ) -> list[SignedLogRecord]:
        """:meth:`record` for several digests with ONE signature: over the commitment when
        there is one, else over the SM3 Merkle root of their commitments (the scheme of a
        bulk request signed once), each record carrying its path to that root."""
        key_bytes = self.public_key
        key_hex = key_bytes.hex()
        # One draw of the randomness for every salt; each salt's metadata hash made once,
        # for its commitment and for its row.
        drawn = os.urandom(COMMITMENT_SALT_SIZE * len(digests))
        salts = [
            drawn[offset : offset + COMMITMENT_SALT_SIZE]
            for offset in range(0, len(drawn), COMMITMENT_SALT_SIZE)
        ]
        metadata_hashes = salted_metadata_hashes(metadata, salts)
        commitments = [
            commitment_over_metadata_hash(key_bytes, digest, metadata_hash)
            for digest, metadata_hash in zip(digests, metadata_hashes, strict=True)
        ]
        if len(commitments) == 1:
            signature = self.key.sign(department_sign_bytes(chain_id, commitments[0]))
            proofs: list[bytes | None] = [None]
        else:
            tree = MerkleTree.build(commitments)
            signature = self.key.sign(
                department_root_sign_bytes(chain_id, tree.leaf_count, tree.root)
            )
            # Every path in one pass over the tree (neighbours share their upper steps).
            proofs = list(tree.encoded_proofs())
        signature_hex = signature.hex()
        return [
            SignedLogRecord(
                _row_values(
                    digest, metadata, metadata_hash, key_hex, signature_hex, commitment, proof
                ),
                salt,
                signature,
                proof,
            )
            for digest, salt, metadata_hash, commitment, proof in zip(
                digests, salts, metadata_hashes, commitments, proofs, strict=True
            )
        ]


def _row_values(
    digest: bytes,
    metadata: dict[str, Any],
    metadata_hash: bytes,
    key_hex: str,
    signature_hex: str,
    commitment: bytes,
    proof: bytes | None,
) -> dict[str, Any]:
    """The ``records`` row of one signed log record."""
    record_id = _record_id()
    return {
        "id": record_id,
        "client_id": LOG_CLIENT_ID,
        "digest": bytes(digest).hex(),
        "metadata_json": metadata,
        "metadata_hash": bytes(metadata_hash).hex(),
        "field_hashes": {},
        "field_salts": None,
        "department_key": key_hex,
        "department_signature": signature_hex,
        "department_proof": None if proof is None else proof.hex(),
        "commitment": bytes(commitment).hex(),
        "idempotency_key": record_id,
        "request_hash": bytes(digest).hex(),
        "status": RecordStatus.ACCEPTED.value,
        "batch_id": None,
        "leaf_index": None,
        "created_at": datetime.now(UTC),
    }


def _record_id() -> str:
    return str(uuid.uuid4())


def b64(data: bytes) -> str:
    """Base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


__all__ = ["LOG_CLIENT_ID", "RegistrySigner", "SignedLogRecord", "b64"]
