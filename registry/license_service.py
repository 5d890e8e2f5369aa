"""E-license use cases: issue, change, suspend, resume, revoke and expire licenses on
``LicenseRegistry`` for department clients; report a license with its live on-chain status;
hand out QR codes, dynamic tokens and issuance proof bundles; build the citizen's verify
page. Plain methods over the database and the chain gateway; the routers only translate
HTTP.

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
(SM3 of a per-license random salt and the identifier) and the salted metadata hash.
"""

from __future__ import annotations

import base64
import datetime
import enum
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chain.crypto import sm3
from chain.types import Transaction
from contracts.trust import (
    AbiCodecError,
    ContractCodec,
    HistoryEntry,
    LicenseStatus,
    Reason,
    holder_commitment,
    license_id_hash,
)
from registry.caches import TtlCache
from registry.chain_gateway import ChainGateway, ContractsNotDeployed, EvidenceNotReady
from registry.db import Database
from registry.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RegistryError,
    ServiceUnavailable,
)
from registry.issuers import check_issuer
from registry.licenses import (
    ContentField,
    HolderIdType,
    InvalidMetadata,
    LicenseMetadata,
    PageStatus,
    TokenError,
    TokenExpired,
    VerifyPageView,
    issue_token,
    metadata_hash,
    page_status,
    reason_text,
    static_qr,
    token_url,
    verify_token,
)
from registry.licenses.qr import QrImages
from registry.models import (
    Client,
    License,
    LicenseAction,
    LicenseOperation,
    LicenseState,
    OperationState,
)
from registry.schemas import (
    ChainStatusPublic,
    HistoryEntryPublic,
    LicenseCreate,
    LicensePublic,
    OperationPublic,
    TokenPublic,
)
from sdk.chain_reader import CallReverted, ChainUnavailable, RpcCallFailed
from sdk.errors import RefusalReason, TransactionRefused
from sdk.identifiers import (
    LICENSE_IDENTIFIER_PREFIX,
    IdentifierKind,
    InvalidIdentifier,
    parse_license_identifier,
)
from sdk.trust import Verdict

logger = logging.getLogger(__name__)

LICENSE_REGISTRY = ContractCodec.load("LicenseRegistry")
"""ABI codec of the LicenseRegistry contract."""

HOLDER_SALT_SIZE = 32
"""Bytes of each license's salt (holder commitment and metadata hash)."""

RECEIPT_WAIT_S = 10.0
"""How long a write waits for its receipt before answering 202 (pending)."""

STATUS_CACHE_TTL_S = 1.0
"""How long a status read from the chain is reused for the verify page and reads; the
registry's own writes drop it at once."""

VERIFY_PATH = "/v"
"""Path prefix of the citizen's verify page."""

DISPLAY_TIMEZONE = datetime.timezone(datetime.timedelta(hours=8))
"""Dates of validity are days in China Standard Time."""

_STATUS_AFTER: dict[LicenseAction, LicenseState] = {
    LicenseAction.ISSUE: LicenseState.ISSUED,
    LicenseAction.SUSPEND: LicenseState.SUSPENDED,
    LicenseAction.RESUME: LicenseState.ISSUED,
    LicenseAction.REVOKE: LicenseState.REVOKED,
    LicenseAction.EXPIRE: LicenseState.EXPIRED,
    LicenseAction.CHANGE: LicenseState.CHANGED,
}
"""The recorded status of the license acted on, once the operation is confirmed."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _aware(moment: datetime.datetime | None) -> datetime.datetime | None:
    """SQLite hands back stored UTC times without their zone; give it back."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=datetime.UTC)


def request_hash(method: str, path: str, body: bytes) -> str:
    """What tells a retry from a different request under one idempotency key."""
    return sm3(method.upper().encode() + b"\n" + path.encode() + b"\n" + body).hex()


def chain_valid_until(valid_until: datetime.date | None) -> int:
    """``validUntil`` on chain for an inclusive last day of validity: the first second of the
    next day in UTC+8; 0 for a license without end."""
    if valid_until is None:
        return 0
    next_day = valid_until + datetime.timedelta(days=1)
    start = datetime.datetime(next_day.year, next_day.month, next_day.day, tzinfo=DISPLAY_TIMEZONE)
    return int(start.timestamp())


def _identifier_error(field: str, exc: InvalidMetadata, holder_type: str) -> InvalidInput:
    """The typed 422 for metadata that breaks a rule."""
    cause = exc.__cause__
    if isinstance(cause, InvalidIdentifier):
        code = {
            IdentifierKind.LICENSE_IDENTIFIER: "invalid_license_identifier",
            IdentifierKind.LICENSE_TYPE_CODE: "invalid_license_identifier",
            IdentifierKind.LICENSE_ISSUER_CODE: "invalid_license_identifier",
            IdentifierKind.USCC: "invalid_uscc",
            IdentifierKind.RESIDENT_ID: "invalid_resident_id",
        }[cause.kind]
        if field == "holder_id":
            code = "invalid_uscc" if holder_type == HolderIdType.USCC else "invalid_resident_id"
        return InvalidInput(f"{field}: {cause.detail} ({cause.reason.value})", code=code)
    return InvalidInput(f"{exc.field}: {exc.detail}", code="invalid_metadata")


def build_metadata(payload: LicenseCreate, client: Client) -> LicenseMetadata:
    """The GB/T 36903 metadata of a request by ``client``: type and issuer codes taken from
    the identifier, the issuer's name from the client's registration. Raises InvalidInput
    (422) with code ``invalid_license_identifier``, ``invalid_uscc``,
    ``invalid_resident_id`` or ``invalid_metadata``; Forbidden (403) when the identifier's
    issuer code is not one the client is bound to, or the request names another issuer
    (:func:`registry.issuers.check_issuer`)."""
    try:
        parsed = parse_license_identifier(payload.identifier)
    except InvalidIdentifier as exc:
        raise InvalidInput(
            f"identifier: {exc.detail} ({exc.reason.value})", code="invalid_license_identifier"
        ) from None
    issuer_name = check_issuer(client, parsed.issuer_code, payload.issuer_name)
    try:
        return LicenseMetadata(
            license_name=payload.license_name,
            identifier=payload.identifier,
            type_code=parsed.type_code,
            holder_name=payload.holder_name,
            holder_id_type=HolderIdType(payload.holder_id_type),
            holder_id=payload.holder_id,
            issuer_name=issuer_name,
            issuer_code=parsed.issuer_code,
            issue_date=payload.issue_date,
            valid_from=payload.valid_from,
            valid_until=payload.valid_until,
            license_number=payload.license_number,
            content=tuple(ContentField(item.name, item.value) for item in payload.content),
        )
    except InvalidMetadata as exc:
        raise _identifier_error(exc.field, exc, payload.holder_id_type) from None


@dataclass(frozen=True)
class ChainLicense:
    """A license as the chain reports it at one block."""

    status: LicenseStatus
    """``statusOf`` (validUntil applied)."""
    history: tuple[HistoryEntry, ...]
    """Every recorded state, oldest first."""
    height: int
    """The block read."""
    changed_at: datetime.datetime | None
    """Time of the block of the last history entry."""


@dataclass(frozen=True)
class WriteOutcome:
    """What a write request did: the license view and whether the operation is new."""

    license: LicensePublic
    """The license acted on (for a change: the new version)."""
    created: bool
    """False for an idempotent replay."""

    @property
    def confirmed(self) -> bool:
        """Whether the operation's receipt is in."""
        operation = self.license.operation
        return operation is not None and operation.state == OperationState.CONFIRMED.value


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
        payload: LicenseCreate,
        idempotency_key: str,
        req_hash: str,
        base_url: str = "",
    ) -> WriteOutcome:
        """Issue a new license for the client's department."""
        replay = self._replay(client, idempotency_key, req_hash, base_url)
        if replay is not None:
            return replay
        metadata = build_metadata(payload, client)
        new_license = self._new_license_row(client, metadata, predecessor=None)
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
        payload: LicenseCreate,
        reason: int,
        idempotency_key: str,
        req_hash: str,
        base_url: str = "",
    ) -> WriteOutcome:
        """Replace the license ``identifier`` by a new version (same type and issuer)."""
        replay = self._replay(client, idempotency_key, req_hash, base_url)
        if replay is not None:
            return replay
        old = self._owned(client, identifier)
        metadata = build_metadata(payload, client)
        old_metadata = LicenseMetadata.from_canonical_json(old.metadata_json.encode())
        if metadata.identifier == old.identifier:
            raise InvalidInput("the new version needs a new identifier", code="same_identifier")
        if (metadata.type_code, metadata.issuer_code) != (
            old_metadata.type_code,
            old_metadata.issuer_code,
        ):
            raise InvalidInput(
                "a new version keeps the type code and issuer code", code="invalid_new_version"
            )
        new_license = self._new_license_row(client, metadata, predecessor=old.identifier)
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
        reason: int,
        idempotency_key: str,
        req_hash: str,
        base_url: str = "",
    ) -> WriteOutcome:
        """Suspend, resume, revoke or expire the license ``identifier``."""
        if action in (LicenseAction.ISSUE, LicenseAction.CHANGE):
            raise ValueError(f"{action} is not a status change")
        replay = self._replay(client, idempotency_key, req_hash, base_url)
        if replay is not None:
            return replay
        row = self._owned(client, identifier)
        data = LICENSE_REGISTRY.encode_call(action.value, bytes.fromhex(row.id_hash), reason)
        return self._write(
            client,
            action,
            row.identifier,
            data,
            reason,
            idempotency_key,
            req_hash,
            base_url,
            new_rows=[],
        )

    def _new_license_row(
        self, client: Client, metadata: LicenseMetadata, predecessor: str | None
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
        salt = os.urandom(HOLDER_SALT_SIZE)
        return License(
            identifier=metadata.identifier,
            id_hash=license_id_hash(metadata.identifier).hex(),
            client_id=client.id,
            department=client.uscc,
            metadata_json=metadata.canonical_json().decode("utf-8"),
            salt=salt.hex(),
            holder_commitment=holder_commitment(salt, metadata.holder_id).hex(),
            metadata_hash=metadata_hash(metadata, salt).hex(),
            valid_until=valid_until,
            status=LicenseState.PENDING.value,
            predecessor=predecessor,
            created_at=_now(),
        )

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
        try:
            with self.db.session() as session:
                for row in new_rows:
                    _store_new_license(session, row)
                session.flush()
                session.add(operation)
                session.flush()
                operation_id = operation.id
        except IntegrityError:
            # A concurrent request won: the same idempotency key, or the same identifier.
            replay = self._replay(client, idempotency_key, req_hash, base_url)
            if replay is not None:
                return replay
            raise Conflict("the license exists already", code="license_exists") from None
        self.drive(operation_id, wait=RECEIPT_WAIT_S)
        return WriteOutcome(self._operation_view(client, operation_id, base_url), created=True)

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
        return WriteOutcome(self._operation_view(client, operation_id, base_url), created=False)

    # -- the outbox ----------------------------------------------------------------------------

    def drive(self, operation_id: int, *, wait: float = 0.0) -> bool:
        """Drive one operation as far as it goes now (send, wait up to ``wait`` seconds for
        its receipt, apply it); True once it is settled (confirmed or reverted). A node
        that cannot be reached leaves it for later."""
        try:
            return self._drive(operation_id, wait)
        except (ChainUnavailable, RpcCallFailed, TransactionRefused) as exc:
            logger.info("license operation %s paused: %s", operation_id, exc)
            return False

    def _drive(self, operation_id: int, wait: float) -> bool:
        with self.db.session() as session:
            operation = session.get_one(LicenseOperation, operation_id)
            state, raw_hex = operation.state, operation.raw_tx
        if state in (OperationState.CONFIRMED.value, OperationState.REVERTED.value):
            return True
        raw = bytes.fromhex(raw_hex)
        tx = Transaction.decode(raw)
        receipt = self.gateway.receipt(tx.hash)
        if receipt is None:
            try:
                self.gateway.reader.send_raw_transaction(raw)
            except TransactionRefused as exc:
                if exc.reason is RefusalReason.EXPIRED:
                    # Never included and never will be: sign the same call afresh.
                    self._replace_expired(operation_id, tx)
                    return False
                if exc.reason is not RefusalReason.DUPLICATE_NONCE:
                    raise
            if state == OperationState.PENDING.value:
                self._set_state(operation_id, OperationState.SENT)
            if wait > 0:
                receipt = self.gateway.reader.wait_for_receipt(
                    tx.hash, timeout=wait, poll_interval=0.05
                )
            if receipt is None:
                return False
        if receipt.status != 1:
            self._apply_revert(operation_id, receipt.output)
            return True
        self._apply_receipt(operation_id, receipt.block_number, receipt.block_hash)
        return True

    def _set_state(self, operation_id: int, state: OperationState) -> None:
        with self.db.session() as session:
            operation = session.get_one(LicenseOperation, operation_id)
            operation.state, operation.updated_at = state.value, _now()

    def _replace_expired(self, operation_id: int, old: Transaction) -> None:
        fresh = self._sign(old.data)
        with self.db.session() as session:
            operation = session.get_one(LicenseOperation, operation_id)
            if operation.tx_hash == old.hash.hex():
                operation.raw_tx, operation.tx_hash = fresh.encode().hex(), fresh.hash.hex()
                operation.state, operation.updated_at = OperationState.PENDING.value, _now()

    def _apply_revert(self, operation_id: int, output: bytes) -> None:
        error = _describe_revert(output)
        with self.db.session() as session:
            operation = session.get_one(LicenseOperation, operation_id)
            operation.state, operation.error = OperationState.REVERTED.value, error
            operation.updated_at = _now()
            created = operation.new_identifier or (
                operation.identifier if operation.action == LicenseAction.ISSUE.value else None
            )
            if created is not None:
                session.get_one(License, created).status = LicenseState.FAILED.value
        logger.warning("license operation %s reverted: %s", operation_id, error)

    def _apply_receipt(self, operation_id: int, block_number: int, block_hash: bytes) -> None:
        anchored_at = self._block_time(block_number)
        with self.db.session() as session:
            operation = session.get_one(LicenseOperation, operation_id)
            action = LicenseAction(operation.action)
            operation.state, operation.block_number = OperationState.CONFIRMED.value, block_number
            operation.updated_at = _now()
            target = session.get_one(License, operation.identifier)
            target.status = _STATUS_AFTER[action].value
            created = target if action is LicenseAction.ISSUE else None
            if action is LicenseAction.CHANGE:
                assert operation.new_identifier is not None
                created = session.get_one(License, operation.new_identifier)
                created.status = LicenseState.ISSUED.value
                target.successor = created.identifier
            if created is not None:
                created.tx_hash = operation.tx_hash
                created.block_number, created.block_hash = block_number, bytes(block_hash).hex()
                created.anchored_at = anchored_at
            touched = [target.id_hash] + ([] if created is None else [created.id_hash])
        for id_hash in touched:
            self._status_cache.drop(id_hash)

    def _block_time(self, block_number: int) -> datetime.datetime | None:
        try:
            certified = self.gateway.reader.block_header(block_number)
        except (ChainUnavailable, RpcCallFailed):
            return None
        if certified is None:
            return None
        return datetime.datetime.fromtimestamp(certified.header.timestamp_ms / 1000, datetime.UTC)

    def drive_pending(self, identifier: str) -> None:
        """Drive every unsettled operation on ``identifier`` (as the old or new version)."""
        with self.db.session() as session:
            pending = session.scalars(
                select(LicenseOperation.id)
                .where(
                    or_(
                        LicenseOperation.identifier == identifier,
                        LicenseOperation.new_identifier == identifier,
                    ),
                    LicenseOperation.state.in_(
                        [OperationState.PENDING.value, OperationState.SENT.value]
                    ),
                )
                .order_by(LicenseOperation.id)
            ).all()
        for operation_id in pending:
            self.drive(operation_id)

    # -- reads ---------------------------------------------------------------------------------

    def chain_license(self, id_hash: str) -> ChainLicense:
        """The license's status and history on chain (reused for STATUS_CACHE_TTL_S).
        Raises ChainUnavailable / RpcCallFailed / ContractsNotDeployed."""
        return self._status_cache.get_or_load(id_hash, lambda: self._read_chain(id_hash))

    def _read_chain(self, id_hash: str) -> ChainLicense:
        reader = self.gateway.reader
        address = self._license_registry()
        key = bytes.fromhex(id_hash)
        height = reader.block_number()

        def call(name: str, *args: Any) -> tuple[Any, ...]:
            output = reader.call(address, LICENSE_REGISTRY.encode_call(name, *args), height)
            return LICENSE_REGISTRY.decode_result(name, output)

        (status,) = call("statusOf", key)
        (length,) = call("historyLength", key)
        history = tuple(
            HistoryEntry.from_abi(call("historyAt", key, index)[0]) for index in range(length)
        )
        changed_at = None if not history else self._block_time(history[-1].block_number)
        return ChainLicense(LicenseStatus(status), history, height, changed_at)

    def _chain_public(self, row: License) -> ChainStatusPublic:
        try:
            state = self.chain_license(row.id_hash)
        except (ChainUnavailable, RpcCallFailed, ContractsNotDeployed, AbiCodecError) as exc:
            return ChainStatusPublic(
                verdict=Verdict.UNAVAILABLE,
                status=None,
                detail=f"chain unreachable, status unknown: {exc}",
                read_at_block=None,
                history=[],
            )
        in_force = state.status is LicenseStatus.ISSUED
        verdict = Verdict.VALID if in_force else Verdict.INVALID
        name = state.status.name.lower()
        return ChainStatusPublic(
            verdict=verdict,
            status=name,
            detail=f"{name} at block {state.height}",
            read_at_block=state.height,
            history=[
                HistoryEntryPublic(
                    status=entry.status.name.lower(),
                    reason=entry.reason,
                    reason_text=reason_text(entry.reason, "en"),
                    block_number=entry.block_number,
                    by="0x" + bytes(entry.by).hex(),
                )
                for entry in state.history
            ],
        )

    def view(self, client: Client, identifier: str, base_url: str) -> LicensePublic:
        """The license with its live chain status and history; the metadata's holder data
        only for the issuing department. Raises NotFound."""
        self.drive_pending(identifier)
        with self.db.session() as session:
            row = session.get(License, identifier)
            if row is None:
                raise NotFound(f"no license {identifier}", code="license_not_found")
            session.expunge(row)
        return self._public(row, client, base_url, chain=True)

    def _public(
        self,
        row: License,
        client: Client,
        base_url: str,
        *,
        chain: bool,
        operation: LicenseOperation | None = None,
    ) -> LicensePublic:
        metadata: dict[str, Any] = json.loads(row.metadata_json)
        if row.department != client.uscc:
            for private in ("holder_id", "holder_name", "holder_id_type", "content"):
                metadata.pop(private, None)
        links = license_links(base_url, row.identifier)
        return LicensePublic(
            identifier=row.identifier,
            id_hash=row.id_hash,
            department=row.department,
            recorded_status=row.status,
            metadata=metadata,
            holder_commitment=row.holder_commitment,
            metadata_hash=row.metadata_hash,
            valid_until=row.valid_until,
            predecessor=row.predecessor,
            successor=row.successor,
            tx_hash=row.tx_hash,
            block_number=row.block_number,
            anchored_at=_aware(row.anchored_at),
            chain=self._chain_public(row) if chain else None,
            verify_url=links["verify"],
            qr_png_url=links["png"],
            qr_svg_url=links["svg"],
            operation=None if operation is None else _operation_public(operation),
        )

    def _operation_view(self, client: Client, operation_id: int, base_url: str) -> LicensePublic:
        with self.db.session() as session:
            operation = session.get_one(LicenseOperation, operation_id)
            shown = operation.new_identifier or operation.identifier
            row = session.get_one(License, shown)
            session.expunge_all()
        return self._public(row, client, base_url, chain=False, operation=operation)

    def stored(self, identifier: str) -> License:
        """The stored license (any department); raises NotFound."""
        with self.db.session() as session:
            row = session.get(License, identifier)
            if row is None:
                raise NotFound(f"no license {identifier}", code="license_not_found")
            session.expunge(row)
            return row

    # -- QR codes and tokens -------------------------------------------------------------------

    def qr(self, identifier: str, base_url: str) -> QrImages:
        """The static QR code of a stored license: a link to its verify page."""
        row = self.stored(identifier)
        return static_qr(license_links(base_url, row.identifier)["verify"])

    def token(
        self, client: Client, identifier: str, lifetime_seconds: int, base_url: str
    ) -> TokenPublic:
        """A dynamic QR token for a license of the client's department, signed with the
        registry's issuer key, valid ``lifetime_seconds``."""
        row = self._owned(client, identifier)
        now = _now()
        expires_at = now + datetime.timedelta(seconds=lifetime_seconds)
        key = self.gateway.signer().private_key
        text = issue_token(
            bytes.fromhex(row.id_hash),
            expires_at,
            key,
            now=now,
            nonce=secrets.token_bytes(8),
        )
        url = token_url(base_url + VERIFY_PATH, text)
        images = static_qr(url)
        return TokenPublic(
            token=text,
            url=url,
            expires_at=expires_at.replace(microsecond=0),
            qr_svg=images.svg,
            qr_png_base64=base64.b64encode(images.png).decode("ascii"),
        )

    # -- the citizen's page --------------------------------------------------------------------

    def page_view(self, key: str) -> tuple[VerifyPageView, PageLookup]:
        """What the verify page shows for ``key`` (an identifier or a dynamic token), and
        how it was looked up."""
        now = _now()
        if key.startswith(LICENSE_IDENTIFIER_PREFIX + "."):
            lookup = PageLookup.IDENTIFIER
            with self.db.read_session() as session:
                row = session.get(License, key)
                if row is not None:
                    session.expunge(row)
            shown: str | None = key if len(key) <= 128 else None
        else:
            lookup = PageLookup.TOKEN
            try:
                claims = verify_token(key, self.gateway.signer().private_key.public_key, now=now)
            except TokenExpired:
                return VerifyPageView(PageStatus.NOT_FOUND, now), PageLookup.EXPIRED_TOKEN
            except (TokenError, ValueError):
                return VerifyPageView(PageStatus.NOT_FOUND, now), PageLookup.BAD_TOKEN
            with self.db.read_session() as session:
                row = session.scalars(
                    select(License).where(License.id_hash == claims.license_id_hash.hex())
                ).one_or_none()
                if row is not None:
                    session.expunge(row)
            shown = None if row is None else row.identifier
        if row is None:
            return VerifyPageView(PageStatus.NOT_FOUND, now, identifier=shown), lookup
        return self._page_for(row, now), lookup

    def _page_for(self, row: License, now: datetime.datetime) -> VerifyPageView:
        try:
            state = self.chain_license(row.id_hash)
        except (ChainUnavailable, RpcCallFailed, ContractsNotDeployed, AbiCodecError):
            return VerifyPageView(PageStatus.UNAVAILABLE, now, identifier=row.identifier)
        status = page_status(state.status)
        if status is PageStatus.NOT_FOUND:
            return VerifyPageView(status, now, identifier=row.identifier)
        metadata = LicenseMetadata.from_canonical_json(row.metadata_json.encode())
        last = state.history[-1] if state.history else None
        recorded_change = (
            last is not None and len(state.history) > 1 and status is not PageStatus.VALID
        )
        first = state.history[0] if state.history else None
        return VerifyPageView(
            status=status,
            checked_at=now,
            license_name=metadata.license_name,
            identifier=row.identifier,
            issuer_name=metadata.issuer_name,
            issuer_code=metadata.issuer_code,
            issue_date=metadata.issue_date,
            valid_from=metadata.valid_from,
            valid_until=metadata.valid_until,
            reason=last.reason if recorded_change and last is not None else None,
            status_changed_at=state.changed_at if recorded_change else None,
            anchored_block=None if first is None else first.block_number,
            anchored_at=_aware(row.anchored_at),
            successor_url=(
                f"{self._site_path()}{VERIFY_PATH}/{row.successor}"
                if status is PageStatus.CHANGED and row.successor
                else None
            ),
        )

    def _site_path(self) -> str:
        """The path prefix of ``public_base_url`` (empty if none): a link on the verify
        page is a path on this site that keeps it."""
        if self.public_base_url is None:
            return ""
        return urlsplit(self.public_base_url).path.rstrip("/")

    # -- issuance proof bundle -----------------------------------------------------------------

    def issuance_bundle(self, identifier: str) -> dict[str, Any]:
        """The license's issuance proof bundle (sdk.bundle.LicenseBundle JSON): the
        LicenseRegistry transaction that created it, its receipt, inclusion proofs, the
        certified header and the issuer key record. Raises NotFound, or ServiceUnavailable
        (503) while the transaction is not confirmed and certified."""
        self.drive_pending(identifier)
        with self.db.session() as session:
            row = session.get(License, identifier)
            if row is None:
                raise NotFound(f"no license {identifier}", code="license_not_found")
            operation = session.scalars(
                select(LicenseOperation).where(
                    LicenseOperation.state == OperationState.CONFIRMED.value,
                    or_(
                        LicenseOperation.new_identifier == identifier,
                        (LicenseOperation.identifier == identifier)
                        & (LicenseOperation.action == LicenseAction.ISSUE.value),
                    ),
                )
            ).one_or_none()
            evidence_json = row.evidence_json
            raw_hex = None if operation is None else operation.raw_tx
            license_claim = {
                "identifier": row.identifier,
                "idHash": "0x" + row.id_hash,
                "holderCommitment": "0x" + row.holder_commitment,
                "metadataHash": "0x" + row.metadata_hash,
                "validUntil": row.valid_until,
                "predecessor": None if row.predecessor is None else row.predecessor,
            }
        if raw_hex is None:
            raise ServiceUnavailable(
                f"license {identifier} is not confirmed on chain yet", code="not_anchored"
            )
        if evidence_json is None:
            try:
                evidence = self.gateway.batch_evidence(bytes.fromhex(raw_hex))
            except (EvidenceNotReady, ChainUnavailable, RpcCallFailed) as exc:
                raise ServiceUnavailable(
                    f"issuance evidence not available yet: {exc}", code="evidence_not_ready"
                ) from None
            anchor = evidence.pop("anchor")
            anchor.pop("notary")
            anchor["licenseRegistry"] = "0x" + self._license_registry().hex()
            evidence["anchor"] = anchor
            evidence_json = json.dumps(evidence, sort_keys=True)
            with self.db.session() as session:
                session.get_one(License, identifier).evidence_json = evidence_json
        value: dict[str, Any] = json.loads(evidence_json)
        value.update(version=1, kind="license-issuance", license=license_claim)
        return value


class PageLookup(enum.StrEnum):
    """How a verify-page key was resolved (picks the HTTP status and cache headers)."""

    IDENTIFIER = "identifier"
    """By the license identifier (the static QR code)."""
    TOKEN = "token"
    """By an authentic, unexpired dynamic token."""
    EXPIRED_TOKEN = "expired_token"
    """By an authentic token past its expiry."""
    BAD_TOKEN = "bad_token"
    """By text that is no token of this registry."""


def license_links(base_url: str, identifier: str) -> dict[str, str]:
    """Verify page and QR image URLs of a license under ``base_url`` (may be empty)."""
    base = base_url.rstrip("/")
    return {
        "verify": f"{base}{VERIFY_PATH}/{identifier}",
        "png": f"{base}/v1/licenses/{identifier}/qr.png",
        "svg": f"{base}/v1/licenses/{identifier}/qr.svg",
    }


def _store_new_license(session: Session, row: License) -> None:
    """Store the new license ``row``. A stored license of its identifier whose issuing
    transaction reverted (FAILED: it never reached the chain) gives way: that row takes all
    of the new values, and the reverted operations keep pointing at it. Any other license of
    the identifier, or a concurrent one, makes the flush raise IntegrityError."""
    failed = session.get(License, row.identifier, with_for_update=True)
    if failed is None or failed.status != LicenseState.FAILED.value:
        if failed is not None:
            session.expunge(failed)
        session.add(row)
        return
    for column in inspect(License).column_attrs:
        setattr(failed, column.key, getattr(row, column.key))


def _operation_public(operation: LicenseOperation) -> OperationPublic:
    return OperationPublic(
        id=operation.id,
        action=operation.action,
        reason=operation.reason,
        state=operation.state,
        tx_hash=operation.tx_hash,
        block_number=operation.block_number,
        error=operation.error,
    )


def _describe_revert(output: bytes) -> str:
    try:
        decoded = LICENSE_REGISTRY.decode_error(output)
    except (AbiCodecError, Exception):  # eth_abi raises unrelated classes on bad data
        return f"reverted: 0x{output.hex()}"
    return f"{decoded.name}{decoded.args!r}"


def _revert_error(output: bytes) -> RegistryError:
    """The typed answer to a LicenseRegistry call the node's dry run refused."""
    try:
        name = LICENSE_REGISTRY.decode_error(output).name
    except Exception:  # not a LicenseRegistry error: unexpected
        return ServiceUnavailable(
            f"the chain refused the call: 0x{output.hex()}", code="chain_refused"
        )
    if name == "LicenseExists":
        return Conflict("a license with this identifier exists on chain", code="license_exists")
    if name == "InvalidTransition":
        return Conflict(
            "the license's current status does not allow this change", code="invalid_transition"
        )
    if name == "InvalidValidity":
        return InvalidInput("valid_until is not in the future", code="already_expired")
    if name == "UnknownLicense":
        return Conflict("the license is not on chain (yet)", code="license_not_on_chain")
    # NotAuthorised / WrongDepartment: the registry's own key lacks a role — an operator's job.
    return ServiceUnavailable(f"the registry may not make this call: {name}", code="not_authorised")


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
