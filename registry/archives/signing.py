"""The archive's own signature on what it records: each custody event, and the files of a
version the archive makes itself (a format migration), become version 2 records of the
archive's client, signed with the registry's key and anchored by the shared batcher like
any notarized record (their proof bundles are the ordinary ones). Records a department
signs at ingest arrive signed and are checked by :func:`registry.notarization.prepare_record`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.intake import NewRecord
from registry.models import Client
from registry.notarization import prepare_record
from registry.record_schemas import SignedRecordCreate
from sdk.record_signing import sign_record

ARCHIVE_CLIENT_ID = "registry-archives"
"""The client the archive's own records are stored under (no roles: it signs no
requests)."""


class ArchiveSigner:
    """Signs the archive's records with the registry's key. Thread-safe; reads nothing
    before first use."""

    def __init__(self, db: Database, gateway: ChainGateway) -> None:
        """Sign with ``gateway``'s signer key, store under ``db``'s archive client."""
        self.db = db
        self.gateway = gateway
        self._lock = threading.Lock()
        self._client: Client | None = None

    def client(self) -> Client:
        """The archive's client, registered on first use under the USCC IssuerRegistry
        gives the registry's key."""
        with self._lock:
            if self._client is not None:
                return self._client
            with self.db.session() as session:
                client = session.get(Client, ARCHIVE_CLIENT_ID)
                if client is None:
                    signer = self.gateway.signer()
                    uscc, _key_id, _record = self.gateway.issuer_key_at(
                        signer.address, self.gateway.reader.block_number()
                    )
                    client = Client(
                        id=ARCHIVE_CLIENT_ID,
                        name="registry: e-archives",
                        uscc=uscc,
                        public_key=bytes(signer.private_key.public_key.to_bytes()).hex(),
                        roles=[],
                        issuer_codes=None,
                        created_at=datetime.now(UTC),
                    )
                    session.add(client)
                    session.flush()
                session.expunge(client)
            self._client = client
            return client

    def record(
        self, digest: str, metadata: dict[str, Any], idempotency_key: str
    ) -> tuple[NewRecord, str]:
        """A record anchoring ``digest`` (hex) with ``metadata``, signed by the registry;
        and its metadata salt (hex)."""
        chain_id = int(self.gateway.chain_id())
        body = sign_record(
            self.gateway.signer().private_key,
            chain_id,
            idempotency_key=idempotency_key,
            digest=digest,
            metadata=metadata,
        ).body
        payload = SignedRecordCreate.model_validate(body)
        return prepare_record(self.client(), payload, idempotency_key, chain_id), str(
            body["metadata_salt"]
        )


__all__ = ["ARCHIVE_CLIENT_ID", "ArchiveSigner"]
