"""The outbox of license operations: each signed LicenseRegistry transaction is stored
before it is sent, sent again until its receipt is in, replaced only when it expired
unseen, and its receipt applied to the stored licenses (a part of
:class:`registry.license_service.LicenseService`, held by it as ``outbox``)."""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from chain.types import Transaction
from registry.license_rules import _STATUS_AFTER, _describe_revert, _now
from registry.models import (
    License,
    LicenseAction,
    LicenseOperation,
    LicenseState,
    OperationState,
)
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.errors import RefusalReason, TransactionRefused

if TYPE_CHECKING:
    from registry.license_service import LicenseService

logger = logging.getLogger(__name__)


class LicenseOutbox:
    """Drives the license operations of one license service."""

    def __init__(self, service: LicenseService) -> None:
        """Drive the operations of ``service``."""
        self.service = service
        self.db = service.db
        self.gateway = service.gateway

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
        fresh = self.service._sign(old.data)
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
            # A reverted status change took no history position: free it for the next one
            # (its signed commitment, kept, still names the position it was signed for).
            operation.sequence = None
            created = operation.new_identifier or (
                operation.identifier if operation.action == LicenseAction.ISSUE.value else None
            )
            if created is not None:
                session.get_one(License, created).status = LicenseState.FAILED.value
        logger.warning("license operation %s reverted: %s", operation_id, error)

    def _apply_receipt(self, operation_id: int, block_number: int, block_hash: bytes) -> None:
        anchored_at = self.block_time(block_number)
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
            self.service._status_cache.drop(id_hash)

    def block_time(self, block_number: int) -> datetime.datetime | None:
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
