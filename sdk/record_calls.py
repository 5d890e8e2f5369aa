"""The registry calls of notarized records that carry the department's own signature:
what each sends and how its answer is read (the clients in :mod:`sdk.trust` do the I/O).

Notarizing needs the chain id the department signs for: :func:`chain_id_call` asks the
registry once (``GET /v1/records/signing``); a department that knows it passes it to the
client instead."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chain.crypto import PrivateKey
from sdk.json_shapes import json_uint
from sdk.record_signing import SignedRecord, commit_record, sign_record, sign_records
from sdk.trust_core import (
    MAX_BULK_RECORDS,
    RECORD_ARGUMENTS,
    Call,
    json_request,
    new_idempotency_key,
)
from sdk.trust_types import DepartmentRecords, NotarizeResult, RecordResult

SIGNING_PATH = "/v1/records/signing"
"""What a department signs for: the chain id and the commitment scheme."""


def chain_id_call() -> Call[int]:
    """``GET /v1/records/signing``: the chain id records are signed for."""
    return Call(json_request("GET", SIGNING_PATH), lambda value: json_uint(value["chainId"]))


def check_record_arguments(digest: bytes | str | None, document: bytes | None) -> None:
    """Raise ValueError unless exactly one of ``digest`` and ``document`` is given (before
    anything is asked of the registry)."""
    if (digest is None) == (document is None):
        raise ValueError("give exactly one of digest and document")


def _result(signed: SignedRecord) -> Any:
    def parse(value: Mapping[str, Any]) -> NotarizeResult:
        return _with_salts(NotarizeResult.from_json(value), signed)

    return parse


def _with_salts(result: NotarizeResult, signed: SignedRecord) -> NotarizeResult:
    salts = signed.salts
    return dataclasses.replace(
        result,
        salts={name: salt.hex() for name, salt in salts.fields.items()},
        metadata_salt=salts.metadata.hex(),
    )


def signed_notarize_call(
    key: PrivateKey,
    chain_id: int,
    *,
    digest: bytes | str | None,
    document: bytes | None,
    metadata: Mapping[str, Any] | None,
    fields: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Call[NotarizeResult]:
    """``POST /v1/records`` for one record, salted and signed by ``key``; the result carries
    the salts (kept here, never read back from the registry)."""
    request_key = new_idempotency_key(idempotency_key)
    signed = sign_record(
        key,
        chain_id,
        idempotency_key=request_key,
        digest=digest,
        document=document,
        metadata=metadata,
        fields=fields,
    )
    request = json_request("POST", "/v1/records", signed.body, idempotency_key=request_key)
    return Call(request, _result(signed))


def signed_notarize_many_call(
    key: PrivateKey,
    chain_id: int,
    records: Sequence[Mapping[str, Any]],
    *,
    idempotency_key: str | None,
) -> Call[list[NotarizeResult]]:
    """``POST /v1/records/bulk`` for 1 to :data:`MAX_BULK_RECORDS` records, each salted
    (record ``i`` under ``<key>#<i>``, as the registry keys it) and all signed at once, over
    the Merkle root of their commitments (:func:`sdk.record_signing.sign_records`); raises
    ValueError for another number of records or a malformed one."""
    if not 1 <= len(records) <= MAX_BULK_RECORDS:
        raise ValueError(f"give 1 to {MAX_BULK_RECORDS} records, not {len(records)}")
    request_key = new_idempotency_key(idempotency_key)
    signed: list[SignedRecord] = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"record {index} is a {type(record).__name__}, not a mapping")
        unknown = sorted(set(record) - RECORD_ARGUMENTS)
        if unknown:
            raise ValueError(
                f"record {index}: unknown record keys {unknown}: use {sorted(RECORD_ARGUMENTS)}"
            )
        try:
            signed.append(commit_record(key, idempotency_key=f"{request_key}#{index}", **record))
        except ValueError as exc:
            raise ValueError(f"record {index}: {exc}") from exc
    body = sign_records(key, chain_id, signed).body()
    request = json_request("POST", "/v1/records/bulk", body, idempotency_key=request_key)

    def parse(value: Mapping[str, Any]) -> list[NotarizeResult]:
        return [
            _with_salts(NotarizeResult.from_json(item), one)
            for item, one in zip(value["records"], signed, strict=True)
        ]

    return Call(request, parse)


def revoke_record_call(
    record_id: str, reason: int, idempotency_key: str | None
) -> Call[RecordResult]:
    """``POST /v1/records/{id}/revoke`` with a reason code."""
    request = json_request(
        "POST",
        f"/v1/records/{record_id}/revoke",
        {"reason": reason},
        idempotency_key=new_idempotency_key(idempotency_key),
    )
    return Call(request, RecordResult.from_json)


def revoke_signed_by_call(
    *,
    department_key: bytes | None,
    since: datetime | None,
    until: datetime | None,
    reason: int,
) -> Call[int]:
    """``POST /v1/records/revoke-by-key``: revoke what the department signed with a key (any
    of its keys if None) within [``since``, ``until``); the answer is how many revocations
    were queued."""
    payload: dict[str, Any] = {"reason": reason}
    if department_key is not None:
        payload["department_key"] = bytes(department_key).hex()
    if since is not None:
        payload["since"] = since.isoformat()
    if until is not None:
        payload["until"] = until.isoformat()
    request = json_request("POST", "/v1/records/revoke-by-key", payload)
    return Call(request, lambda value: json_uint(value["queued"]))


def department_records_call(uscc: str, *, after: int, limit: int) -> Call[DepartmentRecords]:
    """``GET /v1/records/by-department/{uscc}``: what the department vouched for."""
    path = f"/v1/records/by-department/{uscc}?after={after}&limit={limit}"
    return Call(json_request("GET", path), DepartmentRecords.from_json)


__all__ = [
    "SIGNING_PATH",
    "chain_id_call",
    "check_record_arguments",
    "department_records_call",
    "revoke_record_call",
    "revoke_signed_by_call",
    "signed_notarize_call",
    "signed_notarize_many_call",
]
