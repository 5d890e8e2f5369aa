"""E-license rules and helpers shared by the license service and its pages: request
hashes, validity on chain, the metadata of a request (issuer bound to the client), the
outcome types, links, and the typed answers to refusals by LicenseRegistry."""

from __future__ import annotations

import datetime
import enum
import logging
from dataclasses import dataclass

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from chain.crypto import sm3
from contracts.trust import (
    AbiCodecError,
    ContractCodec,
    HistoryEntry,
    LicenseStatus,
)
from registry.errors import (
    Conflict,
    InvalidInput,
    RegistryError,
    ServiceUnavailable,
)
from registry.issuers import check_issuer
from registry.licenses import (
    ContentField,
    HolderIdType,
    InvalidMetadata,
    LicenseMetadata,
)
from registry.models import (
    Client,
    License,
    LicenseAction,
    LicenseOperation,
    LicenseState,
    OperationState,
)
from registry.schemas import (
    LicenseCreate,
    LicensePublic,
    OperationPublic,
)
from sdk.identifiers import (
    IdentifierKind,
    InvalidIdentifier,
    parse_license_identifier,
)
from sdk.license_metadata import chain_valid_until as chain_valid_until
from sdk.license_signing import LICENSE_SALT_SIZE

logger = logging.getLogger(__name__)

LICENSE_REGISTRY = ContractCodec.load("LicenseRegistry")
"""ABI codec of the LicenseRegistry contract."""

HOLDER_SALT_SIZE = LICENSE_SALT_SIZE
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
