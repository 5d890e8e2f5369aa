"""Licenses as departments read them (a part of
:class:`registry.license_service.LicenseService`, held by it as ``reads``): the stored row,
its live status and history read from LicenseRegistry (briefly cached), the department
signature's verdict, its signed status changes and its links."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from contracts.trust import AbiCodecError, HistoryEntry, LicenseStatus
from registry.chain_gateway import ContractsNotDeployed
from registry.data_vault import mask_identifier
from registry.errors import NotFound
from registry.license_rules import (
    LICENSE_REGISTRY,
    ChainLicense,
    _aware,
    _operation_public,
    license_links,
)
from registry.license_schemas import SignedLicensePublic
from registry.licenses import reason_text
from registry.models import Client, License, LicenseOperation
from registry.schemas import ChainStatusPublic, HistoryEntryPublic
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.trust import Verdict

if TYPE_CHECKING:
    from registry.license_service import LicenseService


class LicenseReads:
    """The license reads of one license service."""

    def __init__(self, service: LicenseService) -> None:
        """Read the licenses of ``service``."""
        self.service = service
        self.db = service.db
        self.gateway = service.gateway

    def chain_license(self, id_hash: str) -> ChainLicense:
        """The license's status and history on chain (reused for STATUS_CACHE_TTL_S).
        Raises ChainUnavailable / RpcCallFailed / ContractsNotDeployed."""
        return self.service._status_cache.get_or_load(id_hash, lambda: self._read_chain(id_hash))

    def _read_chain(self, id_hash: str) -> ChainLicense:
        reader = self.gateway.reader
        address = self.service._license_registry()
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
        changed_at = (
            None if not history else self.service.outbox.block_time(history[-1].block_number)
        )
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

    def view(self, client: Client, identifier: str, base_url: str) -> SignedLicensePublic:
        """The license with its live chain status and history; the metadata's holder data
        only for the issuing department. Raises NotFound."""
        self.service.drive_pending(identifier)
        with self.db.session() as session:
            row = session.get(License, identifier)
            if row is None:
                raise NotFound(f"no license {identifier}", code="license_not_found")
            session.expunge(row)
        return self.public(row, client, base_url, chain=True)

    def public(
        self,
        row: License,
        client: Client,
        base_url: str,
        *,
        chain: bool,
        operation: LicenseOperation | None = None,
    ) -> SignedLicensePublic:
        metadata: dict[str, Any] = json.loads(row.metadata_json)
        if isinstance(metadata.get("holder_id"), str):
            # Licenses stored before sealing keep it in clear: shown masked all the same.
            metadata["holder_id"] = mask_identifier(metadata["holder_id"])
        if row.department != client.uscc:
            for private in ("holder_id", "holder_name", "holder_id_type", "content"):
                metadata.pop(private, None)
        links = license_links(base_url, row.identifier)
        return SignedLicensePublic(
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
            commitment=row.commitment,
            signed_by=self.service.signers.verdict(row).public() if chain else None,
            status_changes=self.service.status.public(row.identifier),
        )

    def operation_view(
        self, client: Client, operation_id: int, base_url: str
    ) -> SignedLicensePublic:
        with self.db.session() as session:
            operation = session.get_one(LicenseOperation, operation_id)
            shown = operation.new_identifier or operation.identifier
            row = session.get_one(License, shown)
            session.expunge_all()
        return self.public(row, client, base_url, chain=False, operation=operation)

    def stored(self, identifier: str) -> License:
        """The stored license (any department); raises NotFound."""
        with self.db.session() as session:
            row = session.get(License, identifier)
            if row is None:
                raise NotFound(f"no license {identifier}", code="license_not_found")
            session.expunge(row)
            return row


__all__ = ["LicenseReads"]
