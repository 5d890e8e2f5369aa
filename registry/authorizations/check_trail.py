"""Credit checks in the subject's tracker. Every ``check`` call the credit log records
(:class:`registry.credit.check_log.CheckLogWriter`) also becomes, in the same transaction,
a check entry the registry signs and anchors exactly as it does access log entries (one
signature per group, each record carrying its path to the signed root): who checked, when,
for which activity and date, and the answer. The entry names the subject only by a
commitment salted with the entry's own salt, so the anchored hash confirms no guess; the
subject finds its entries through its blind index, and checks each one offline with
:func:`sdk.data_receipts.verify_receipt` (receipt kind ``credit-check``)."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, select

from authorizations.access_log import ENTRY_VERSION
from registry.authorizations.credit_provider import subject_of_identifier
from registry.authorizations.paging import (
    DEFAULT_LIMIT,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from registry.authorizations.service import Sharing
from registry.authorizations.signing import b64
from registry.authorizations.tracker import anchoring
from registry.authorizations.trail_models import CreditCheckEntryRow
from registry.models import Record
from sdk.commitments import canonical_json
from sdk.data_receipts import (
    CHECK_KIND,
    CHECK_METADATA,
    encoded_check_entry_hash,
    subject_commitment,
)

_INSERT_RECORDS = cast(Table, Record.__table__).insert()
_INSERT_ENTRIES = cast(Table, CreditCheckEntryRow.__table__).insert()

TrailRows = tuple[list[dict[str, Any]], list[dict[str, Any]]]
"""The rows of some signed check entries: their log records and their entries."""

SUBJECT_CHECKS = "subject-checks"
"""The listing of the checks made of one subject (its cursors name it)."""


def check_entry(row: dict[str, Any], kind: str, identifier: str, salt: bytes) -> dict[str, Any]:
    """The signed entry of one logged check (``row`` as ``credit_checks`` stores it) of
    the subject ``identifier`` of ``kind``."""
    on: datetime.date = row["on_date"]
    at: datetime.datetime = row["at"]
    return {
        "version": ENTRY_VERSION,
        "kind": CHECK_KIND,
        "subjectCommitment": subject_commitment(kind, identifier, salt).hex(),
        "checker": row["checker_uscc"],
        "checkerName": row["checker_name"],
        "activity": row["activity"],
        "onDate": on.isoformat(),
        "decision": row["decision"],
        "at": int(at.timestamp()),
        "salt": salt.hex(),
    }


class CheckTrailWriter:
    """The :class:`registry.credit.check_log.CheckTrail` of the data-sharing tracker."""

    def __init__(self, sharing: Sharing) -> None:
        """Sign with ``sharing``'s registry key."""
        self.sharing = sharing

    def prepare(self) -> None:
        """Register the log client and read the chain id before the transaction."""
        self.sharing.signer.ensure_log_client()
        self.sharing.signer.chain_id()

    def build(self, rows: Sequence[dict[str, Any]], subjects: Sequence[str]) -> TrailRows:
        """The signed entry of each check of a USCC or resident ID (a check of another
        identifier names no subject the tracker knows: it has none), ready to store: made
        before the transaction, so that the signing does not hold the write turn."""
        signer = self.sharing.signer
        entries: list[tuple[dict[str, Any], dict[str, Any], str, bytes]] = []
        for row, given in zip(rows, subjects, strict=True):
            subject = subject_of_identifier(given.strip().upper())
            if subject is None:
                continue
            kind = subject.kind.value
            entry = check_entry(row, kind, subject.identifier, os.urandom(16))
            index = signer.subject_index(kind, subject.identifier)
            # The canonical JSON stored is the one hashed, encoded once.
            entries.append((row, entry, index, canonical_json(entry)))
        if not entries:
            return [], []
        digests = [encoded_check_entry_hash(encoded) for *_, encoded in entries]
        signed_rows = signer.records(list(digests), dict(CHECK_METADATA), signer.chain_id())
        trail_rows = [
            {
                "record_id": signed.record_id,
                "subject_index": index,
                "checker_uscc": row["checker_uscc"],
                "checker_name": row["checker_name"],
                "activity": row["activity"],
                "on_date": row["on_date"],
                "decision": row["decision"],
                "at": entry["at"],
                "entry_json": encoded.decode(),
                "entry_hash": digest.hex(),
                "metadata_salt": signed.metadata_salt.hex(),
                "registry_signature": b64(signed.signature),
            }
            for (row, entry, index, encoded), digest, signed in zip(
                entries, digests, signed_rows, strict=True
            )
        ]
        return [s.values for s in signed_rows], trail_rows

    def store(self, connection: Connection, built: TrailRows) -> None:
        """Store what :meth:`build` made, in the transaction of ``connection``."""
        records, entries = built
        if records:
            connection.execute(_INSERT_RECORDS, records)
            connection.execute(_INSERT_ENTRIES, entries)


def check_json(sharing: Sharing, row: CreditCheckEntryRow, chain_id: int) -> dict[str, Any]:
    """One check as the tracker shows it, with its receipt (and proof bundle once
    anchored) in the form ``sdk.data_receipts.AccessReceipt`` reads."""
    proof, block_number, anchored_at, bundle = anchoring(sharing, row.record_id)
    return {
        "recordId": row.record_id,
        "checker": row.checker_uscc,
        "checkerName": row.checker_name,
        "activity": row.activity,
        "onDate": row.on_date.isoformat(),
        "decision": row.decision,
        "at": row.at,
        "blockNumber": block_number,
        "anchoredAt": anchored_at,
        "receipt": {
            "entryKind": CHECK_KIND,
            "entry": json.loads(row.entry_json),
            "recordId": row.record_id,
            "registryKey": sharing.signer.public_key.hex(),
            "metadataSalt": row.metadata_salt,
            "registrySignature": row.registry_signature,
            "registryProof": proof,
            "chainId": chain_id,
            "bundle": bundle,
        },
    }


def subject_checks(
    sharing: Sharing, subject_index: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> Page[dict[str, Any]]:
    """One page of the credit checks made of the subject, newest first, each with its
    receipt and proof."""
    check_limit(limit)
    key = decode_cursor(SUBJECT_CHECKS, after, (int,))
    query = select(CreditCheckEntryRow).where(CreditCheckEntryRow.subject_index == subject_index)
    if key is not None:
        query = query.where(CreditCheckEntryRow.seq < key[0])
    with sharing.db.read_session() as session:
        rows = session.scalars(
            query.order_by(CreditCheckEntryRow.seq.desc()).limit(limit + 1)
        ).all()
        for row in rows:
            session.expunge(row)
    chain_id = sharing.signer.chain_id()
    shown = rows[:limit]
    return Page(
        [check_json(sharing, row, chain_id) for row in shown],
        encode_cursor(SUBJECT_CHECKS, (shown[-1].seq,)) if len(rows) > limit else None,
    )


__all__ = [
    "SUBJECT_CHECKS",
    "CheckTrailWriter",
    "TrailRows",
    "check_entry",
    "check_json",
    "subject_checks",
]
