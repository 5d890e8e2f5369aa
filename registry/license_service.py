"""E-license use cases: issue, change, suspend, resume, revoke and expire licenses on
``LicenseRegistry`` for department clients; report a license with its live on-chain status;
hand out QR codes, dynamic tokens and issuance proof bundles; build the citizen's verify
page. Plain methods over the database and the chain gateway; the routers only translate
HTTP. Its parts: the outbox (:mod:`registry.license_outbox`), QR codes, tokens, the page and
bundles (:mod:`registry.license_pages`), status changes signed by the department
(:mod:`registry.license_status`), who signed each license (:mod:`registry.license_signer`)
and reads (:mod:`registry.license_reads`).

Every write follows one path: validate (422, nothing stored) → check the department (403)
→ sign the LicenseRegistry call, which the node first dry-runs (``eth_estimateGas``), so a
refused transition or a used identifier is answered 409 with nothing stored → store the
license row and the signed transaction in ONE database transaction → send it and wait a
little for the receipt. An operation whose receipt is not in yet answers 202 and is driven
on by any later read or retry of it (the same stored bytes are sent again; the contract
refuses a second issue or transition, so nothing happens twice on chain). A license whose
issuing transaction reverted is ``failed``: it never reached the chain, so its identifier
may be issued again, and the new license takes the failed one's row.

The holder's identifier never leaves the database: the chain gets ``holder_commitment``
(SM3 of a per-license random salt and the identifier) and the salted metadata hash. The
issuing department draws the salt and signs the license's commitment with its own key
(:mod:`sdk.license_signing`); the registry recomputes the commitment from the request,
checks the signature (422 otherwise, nothing stored), keeps it with the license and puts
it into the issuance bundle.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chain.types import Transaction
from contracts.trust import (
    Reason,
    license_id_hash,
)
from registry.caches import TtlCache
from registry.chain_gateway import ChainGateway, ContractsNotDeployed
from registry.data_vault import DataVault, is_sealed
from registry.db import Database
from registry.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)
from registry.license_outbox import LicenseOutbox
from registry.license_pages import LicensePages
from registry.license_reads import LicenseReads
from registry.license_rules import (
    LICENSE_REGISTRY,
    RECEIPT_WAIT_S,
    STATUS_CACHE_TTL_S,
    ChainLicense,
    PageLookup,
    WriteOutcome,
    _now,
    _revert_error,
    _store_new_license,
    build_metadata,
    chain_valid_until,
    license_links,
    request_hash,
)
from registry.license_schemas import (
    SignedLicenseCreate,
    SignedLicensePublic,
    SignedLicenseStatusChange,
)
from registry.license_signatures import SignedTerms, signed_terms
from registry.license_signer import LicenseSigners
from registry.license_status import LicenseStatusChanges, StatusSignature
from registry.licenses import (
    LicenseMetadata,
    VerifyPageView,
)
from registry.licenses.qr import QrImages
from registry.licenses.stored import stored_metadata_json
from registry.models import (
    Client,
    License,
    LicenseAction,
    LicenseOperation,
    LicenseState,
    OperationState,
)
from registry.schemas import (
    TokenPublic,
)
from sdk.chain_reader import CallReverted, ChainUnavailable, RpcCallFailed

logger = logging.getLogger(__name__)


class LicenseService:
    """Licenses of one registry: its database, its chain gateway and a short-lived cache of
    on-chain statuses. Safe to use from several threads."""

    def __init__(
        self, db: Database, gateway: ChainGateway, public_base_url: str | None = None
    ) -> None:
        """Nothing is contacted until a method needs it. ``public_base_url`` (scheme, host
        and optional path prefix) is where citizens reach the service: links and QR codes
        use it instead of the URL a request came to."""
        self.db = db
        self.gateway = gateway
        self.public_base_url = None if public_base_url is None else public_base_url.rstrip("/")
        self._status_cache: TtlCache[str, ChainLicense] = TtlCache(STATUS_CACHE_TTL_S)
        self._vault: DataVault | None = None
        self.outbox = LicenseOutbox(self)
        """The LicenseRegistry transactions made for departments, driven to settlement."""
        self.pages = LicensePages(self)
        """QR codes, tokens, the verify page and issuance bundles."""
        self.status = LicenseStatusChanges(self)
        """Status changes signed by the department."""
        self.signers = LicenseSigners(self)
        """Who signed each license, checked on chain."""
        self.reads = LicenseReads(self)
        """Licenses as departments read them, with their chain status and signatures."""

    def site_url(self, request_base_url: str) -> str:
        """The base of links and QR codes: ``public_base_url`` if configured, else the base
        URL of the request that asks for them."""
        if self.public_base_url is not None:
            return self.public_base_url
        return request_base_url.rstrip("/")

    # -- writes --------------------------------------------------------------------------------

    def issue(
        self,
        client: Client,
        payload: SignedLicenseCreate,
        idempotency_key: str,
        req_hash: str,
        base_url: str = "",
    ) -> WriteOutcome:
        """Issue a new license for the client's department, its commitment signed by the
        department (422 ``department_signature_required`` / ``bad_department_signature``
        otherwise)."""
        replay = self._replay(client, idempotency_key, req_hash, base_url)
        if replay is not None:
            return replay
        metadata = build_metadata(payload, client)
        new_license = self._new_license_row(client, metadata, payload, predecessor=None)
        data = LICENSE_REGISTRY.encode_call(
            "issue",
            bytes.fromhex(new_license.id_hash),
            bytes.fromhex(new_license.holder_commitment),
            bytes.fromhex(new_license.metadata_hash),
            new_license.valid_until,
        )
        return self._write(
            client,
            LicenseAction.ISSUE,
            new_license.identifier,
            data,
            Reason.UNSPECIFIED,
            idempotency_key,
            req_hash,
            base_url,
            new_rows=[new_license],
        )

    def change(
        self,
        client: Client,
        identifier: str,
        payload: SignedLicenseCreate,
        reason: int,
        idempotency_key: str,
        req_hash: str,
        base_url: str = "",
    ) -> WriteOutcome:
        """Replace the license ``identifier`` by a new version (same type and issuer),
        signed by the department as a successor of ``identifier``."""
        replay = self._replay(client, idempotency_key, req_hash, base_url)
        if replay is not None:
            return replay
        old = self._owned(client, identifier)
        metadata = build_metadata(payload, client)
        old_metadata = json.loads(old.metadata_json)
        if metadata.identifier == old.identifier:
            raise InvalidInput("the new version needs a new identifier", code="same_identifier")
        if (metadata.type_code, metadata.issuer_code) != (
            old_metadata["type_code"],
            old_metadata["issuer_code"],
        ):
            raise InvalidInput(
                "a new version keeps the type code and issuer code", code="invalid_new_version"
            )
        new_license = self._new_license_row(client, metadata, payload, predecessor=old.identifier)
        data = LICENSE_REGISTRY.encode_call(
            "change",
            bytes.fromhex(old.id_hash),
            bytes.fromhex(new_license.id_hash),
            bytes.fromhex(new_license.holder_commitment),
            bytes.fromhex(new_license.metadata_hash),
            new_license.valid_until,
            reason,
        )
        return self._write(
            client,
            LicenseAction.CHANGE,
            old.identifier,
            data,
            reason,
            idempotency_key,
            req_hash,
            base_url,
            new_rows=[new_license],
        )

    def transition(
        self,
        client: Client,
        identifier: str,
        action: LicenseAction,
        payload: SignedLicenseStatusChange,
        idempotency_key: str,
        req_hash: str,
        base_url: str = "",
    ) -> WriteOutcome:
        """Suspend, resume, revoke or expire the license ``identifier``, signed by the
        department (see :meth:`LicenseStatusChanges.transition`)."""
        return self.status.transition(
            client, identifier, action, payload, idempotency_key, req_hash, base_url
        )

    def _new_license_row(
        self,
        client: Client,
        metadata: LicenseMetadata,
        payload: SignedLicenseCreate,
        predecessor: str | None,
    ) -> License:
        valid_until = chain_valid_until(metadata.valid_until)
        if valid_until and valid_until <= time.time():
            raise InvalidInput("valid_until is in the past", code="already_expired")
        with self.db.session() as session:
            existing = session.get(License, metadata.identifier)
            # An attempt whose transaction reverted never reached the chain: its identifier
            # is free again (see _store_new_license).
            if existing is not None and existing.status != LicenseState.FAILED.value:
                raise Conflict(
                    f"license {metadata.identifier} exists already", code="license_exists"
                )
        signed = self._signed_terms(client, metadata, payload, predecessor)
        terms = signed.terms
        vault = self.vault()
        return License(
            identifier=metadata.identifier,
            id_hash=license_id_hash(metadata.identifier).hex(),
            client_id=client.id,
            department=client.uscc,
            # The holder's identifier and the salt of its commitment are sealed: with both in
            # clear, a copy of the database would confirm a guessed identifier.
            metadata_json=stored_metadata_json(metadata),
            salt=vault.seal(signed.salt),
            holder_id_sealed=vault.seal(metadata.holder_id.encode()),
            holder_commitment=terms.holder_commitment.hex(),
            metadata_hash=terms.metadata_hash.hex(),
            valid_until=terms.valid_until,
            status=LicenseState.PENDING.value,
            predecessor=predecessor,
            created_at=_now(),
            department_key=signed.department_key.hex(),
            department_signature=signed.signature.hex(),
            commitment=signed.commitment.hex(),
        )

    def _signed_terms(
        self,
        client: Client,
        metadata: LicenseMetadata,
        payload: SignedLicenseCreate,
        predecessor: str | None,
    ) -> SignedTerms:
        """The license's terms with the department's signature checked for this chain."""
        try:
            chain_id = self.gateway.chain_id()
        except (ChainUnavailable, RpcCallFailed) as exc:
            raise ServiceUnavailable(
                f"the chain id is not known yet: {exc}", code="chain_id_unknown"
            ) from None
        return signed_terms(client, metadata, payload, chain_id, predecessor)

    def vault(self) -> DataVault:
        """The sealer of holder identifiers and salts (its key derives from the signing
        key in the registry's keystore)."""
        if self._vault is None:
            self._vault = DataVault.for_signing_key(self.gateway.signer().private_key)
        return self._vault

    def holder_secrets(self, row: License) -> tuple[str, bytes]:
        """The holder identifier and commitment salt of a stored license (opened with the
        registry's key; licenses stored before sealing keep them in clear)."""
        if row.holder_id_sealed is None:
            holder_id = str(json.loads(row.metadata_json)["holder_id"])
        else:
            holder_id = self.vault().open(row.holder_id_sealed).decode()
        salt = self.vault().open(row.salt) if is_sealed(row.salt) else bytes.fromhex(row.salt)
        return holder_id, salt

    def _owned(self, client: Client, identifier: str) -> License:
        """The stored license ``identifier``; NotFound (404) if unknown, Forbidden (403) if
        another department issued it."""
        with self.db.session() as session:
            row = session.get(License, identifier)
            if row is None:
                raise NotFound(f"no license {identifier}", code="license_not_found")
            session.expunge(row)
        if row.department != client.uscc:
            raise Forbidden(
                f"license {identifier} belongs to another department", code="wrong_department"
            )
        return row

    def _license_registry(self) -> bytes:
        address = self.gateway.contracts().license_registry
        if address is None:
            raise ContractsNotDeployed("LicenseRegistry is not deployed; run the bootstrap")
        return bytes(address)

    def _sign(self, data: bytes) -> Transaction:
        """The signed LicenseRegistry call, dry-run by the node first: a revert becomes a
        typed 409 / 422 and nothing is stored."""
        try:
            return self.gateway.reader.sign_call(
                self.gateway.signer(), to=self._license_registry(), data=data
            )
        except CallReverted as exc:
            raise _revert_error(exc.revert_data) from None
        except (ChainUnavailable, RpcCallFailed) as exc:
            raise ServiceUnavailable(f"the chain cannot be reached: {exc}") from None

    def _write(
        self,
        client: Client,
        action: LicenseAction,
        identifier: str,
        data: bytes,
        reason: int,
        idempotency_key: str,
        req_hash: str,
        base_url: str,
        *,
        new_rows: list[License],
        signature: StatusSignature | None = None,
    ) -> WriteOutcome:
        tx = self._sign(data)
        now = _now()
        operation = LicenseOperation(
            identifier=identifier,
            new_identifier=new_rows[0].identifier if action is LicenseAction.CHANGE else None,
            client_id=client.id,
            action=action.value,
            reason=reason,
            idempotency_key=idempotency_key,
            request_hash=req_hash,
            state=OperationState.PENDING.value,
            raw_tx=tx.encode().hex(),
            tx_hash=tx.hash.hex(),
            created_at=now,
            updated_at=now,
        )
        if signature is not None:
            operation.department_key = signature.department_key.hex()
            operation.department_signature = signature.signature.hex()
            operation.commitment = signature.commitment.hex()
            operation.sequence = signature.sequence
        try:
            with self.db.session() as session:
                for row in new_rows:
                    _store_new_license(session, row)
                session.flush()
                session.add(operation)
                session.flush()
                operation_id = operation.id
        except IntegrityError:
            # A concurrent request won: the same idempotency key, the same identifier, or
            # (a status change) the same history position.
            replay = self._replay(client, idempotency_key, req_hash, base_url)
            if replay is not None:
                return replay
            if signature is not None:
                raise Conflict(
                    f"another status change took history position {signature.sequence}; "
                    "read the license and sign again",
                    code="stale_status_sequence",
                ) from None
            raise Conflict("the license exists already", code="license_exists") from None
        self.drive(operation_id, wait=RECEIPT_WAIT_S)
        return WriteOutcome(self.reads.operation_view(client, operation_id, base_url), created=True)

    def _replay(
        self, client: Client, idempotency_key: str, req_hash: str, base_url: str
    ) -> WriteOutcome | None:
        with self.db.session() as session:
            operation = session.scalars(
                select(LicenseOperation).where(
                    LicenseOperation.client_id == client.id,
                    LicenseOperation.idempotency_key == idempotency_key,
                )
            ).one_or_none()
            if operation is None:
                return None
            operation_id, stored_hash = operation.id, operation.request_hash
        if stored_hash != req_hash:
            raise Conflict(
                "this Idempotency-Key was used with a different request",
                code="idempotency_conflict",
            )
        self.drive(operation_id, wait=RECEIPT_WAIT_S)
        return WriteOutcome(
            self.reads.operation_view(client, operation_id, base_url), created=False
        )

    # -- the outbox (registry.license_outbox) --------------------------------------------------

    def drive(self, operation_id: int, *, wait: float = 0.0) -> bool:
        """See :meth:`LicenseOutbox.drive`."""
        return self.outbox.drive(operation_id, wait=wait)

    def drive_pending(self, identifier: str) -> None:
        """See :meth:`LicenseOutbox.drive_pending`."""
        self.outbox.drive_pending(identifier)

    # -- reads (registry.license_reads) --------------------------------------------------------

    def chain_license(self, id_hash: str) -> ChainLicense:
        """See :meth:`LicenseReads.chain_license`."""
        return self.reads.chain_license(id_hash)

    def view(self, client: Client, identifier: str, base_url: str) -> SignedLicensePublic:
        """See :meth:`LicenseReads.view`."""
        return self.reads.view(client, identifier, base_url)

    def stored(self, identifier: str) -> License:
        """See :meth:`LicenseReads.stored`."""
        return self.reads.stored(identifier)

    # -- QR codes, tokens, the verify page, the issuance bundle (registry.license_pages) ------

    def qr(self, identifier: str, base_url: str) -> QrImages:
        """See :meth:`LicensePages.qr`."""
        return self.pages.qr(identifier, base_url)

    def token(
        self, client: Client, identifier: str, lifetime_seconds: int, base_url: str
    ) -> TokenPublic:
        """See :meth:`LicensePages.token`."""
        return self.pages.token(client, identifier, lifetime_seconds, base_url)

    def page_view(self, key: str) -> tuple[VerifyPageView, PageLookup]:
        """See :meth:`LicensePages.page_view`."""
        return self.pages.page_view(key)

    def issuance_bundle(self, identifier: str) -> dict[str, Any]:
        """See :meth:`LicensePages.issuance_bundle`."""
        return self.pages.issuance_bundle(identifier)


__all__ = [
    "LICENSE_REGISTRY",
    "ChainLicense",
    "LicenseService",
    "PageLookup",
    "WriteOutcome",
    "build_metadata",
    "chain_valid_until",
    "license_links",
    "request_hash",
]
