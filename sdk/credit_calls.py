"""The requests of :mod:`sdk.credit_client` built without sending them, shared by the sync
and async clients (and by :mod:`sdk.credit_subject`): the credit API's paths, the parsing
of its answers, and the signatures a department makes over its pending events."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from chain.commit import ValidatorSet
from chain.crypto import PrivateKey
from chain.merkle import MerkleTree
from sdk.bundle import BundleVerdict, ProofBundle, verify_bundle
from sdk.bundle_links import department_root_sign_bytes, department_sign_bytes
from sdk.json_shapes import json_array, json_object, json_text
from sdk.streamed_upload import StreamedBody, streamed_request
from sdk.trust_core import Answer, Call, RegistryRequest, json_request
from sdk.trust_types import RegistryError

_T = TypeVar("_T")

CREDIT_PATH = "/v1/credit"
"""Prefix of the credit API."""

PENDING_PAGE = 1_000
"""Pending events asked for per request (the registry's page size)."""

MAX_EVENTS_PER_SIGNATURE = 100_000
"""Most events one signature over their Merkle root covers (the registry's bound)."""

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CreditImportRejected(RegistryError):
    """An all-or-nothing import refused: nothing was imported; ``report`` lists every
    problem (row, column, value, reason)."""

    def __init__(self, status_code: int, message: str, report: Mapping[str, Any]) -> None:
        super().__init__(status_code, "import_rejected", message)
        self.report = dict(report)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did."""

    published: int
    corrected: int
    unchanged: int
    report: dict[str, Any]
    """The validation report (rejected rows, warnings)."""
    report_hash: str | None
    """SM3 of the anchored report of rejected rows (valid-rows mode)."""
    awaiting_signature: int
    """The client's events waiting for its signature (:meth:`CreditClient.sign_pending`)."""


@dataclass(frozen=True)
class CheckAnswer:
    """The answer of ``check``."""

    decision: str
    """allowed, restricted or favoured."""
    reasons: list[dict[str, Any]]
    """Every measure that applies, its list entry and the records behind it."""
    proofs: dict[str, Any]
    """Record id → its latest anchored event with its proof bundle (None: not yet)."""
    raw: dict[str, Any]
    """The whole answer."""


def import_call(
    data: bytes | StreamedBody, table_format: str, mode: str, rule_set: str | None
) -> Call[ImportSummary]:
    """``POST /v1/credit/imports`` of a table: ``data`` in memory, or a file streamed from
    disk (its SM3 declared, so the registry writes it to disk as it arrives)."""
    query = {"format": table_format, "mode": mode}
    if rule_set is not None:
        query["rule_set"] = rule_set
    content_type = XLSX_TYPE if table_format == "xlsx" else CSV_TYPE
    path = f"{CREDIT_PATH}/imports?{urlencode(query)}"
    if isinstance(data, StreamedBody):
        request = streamed_request("POST", path, data, content_type)
    else:
        request = RegistryRequest("POST", path, data, {"Content-Type": content_type})

    def parse(value: Any) -> ImportSummary:
        value = json_object(value)
        report_hash = value.get("report_hash")
        return ImportSummary(
            published=int(value["published"]),
            corrected=int(value["corrected"]),
            unchanged=int(value["unchanged"]),
            report=json_object(value["report"]),
            report_hash=None if report_hash is None else json_text(report_hash),
            awaiting_signature=int(value["awaiting_signature"]),
        )

    return Call(request, parse)


def events_of(value: Any) -> list[str]:
    """The ids of the events an answer says were made (its ``events``)."""
    return [json_text(event) for event in json_array(json_object(value)["events"])]


def notarized_of(value: Any) -> dict[str, str]:
    """Event id → notarized record id, of an answer to the department's signatures."""
    notarized = json_object(json_object(value)["notarized"])
    return {json_text(event): json_text(record) for event, record in notarized.items()}


def objects_of(value: Any) -> list[dict[str, Any]]:
    """An answer that is a list of JSON objects (a search, the overdue repairs)."""
    return [json_object(item) for item in json_array(value)]


def pending_page(value: Any) -> list[dict[str, Any]]:
    """A page of pending events: objects each with its ``id`` and the hex SM3
    ``commitment`` the department is asked to sign."""
    events = objects_of(value)
    for event in events:
        json_text(event["id"])
        if len(bytes.fromhex(json_text(event["commitment"]))) != 32:
            raise ValueError("a pending event's commitment is not 32 bytes")
    return events


def record_step(record_id: str, step: str, payload: dict[str, Any]) -> Call[list[str]]:
    path = f"{CREDIT_PATH}/records/{quote(record_id)}/{step}"
    return Call(json_request("POST", path, payload), events_of)


def _any(value: Any) -> Any:
    return value


def json_call(
    method: str, path: str, payload: Any = None, parse: Callable[[Any], _T] = _any
) -> Call[_T]:
    """``method path`` under the credit API; its answer read by ``parse`` (as it comes by
    default; :func:`sdk.trust_core.json_object`, ``json_array`` or :func:`events_of` where
    the answer has a shape)."""
    return Call(json_request(method, f"{CREDIT_PATH}{path}", payload), parse)


def check_call(subject: str, activity: str, on: datetime.date) -> Call[CheckAnswer]:
    payload = {"subject": subject, "activity": activity, "on": on.isoformat()}

    def parse(value: Any) -> CheckAnswer:
        value = json_object(value)
        return CheckAnswer(
            decision=json_text(value["decision"]),
            reasons=json_array(value["reasons"]),
            proofs=json_object(value["proofs"]),
            raw=value,
        )

    return Call(json_request("POST", f"{CREDIT_PATH}/check", payload), parse)


def profile_payload(subject: str, at: datetime.datetime | None) -> dict[str, Any]:
    return {"subject": subject, "at": None if at is None else at.isoformat()}


def sign_events(
    key: PrivateKey, chain_id: int, events: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """The department's signature (base64 DER) of each pending event's commitment, by
    event id: the same sign bytes as a notarized record's
    (:func:`sdk.bundle_links.department_sign_bytes`)."""
    return {
        str(event["id"]): base64.b64encode(
            key.sign(department_sign_bytes(chain_id, bytes.fromhex(event["commitment"])))
        ).decode("ascii")
        for event in events
    }


def sign_events_once(
    key: PrivateKey, chain_id: int, events: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The body of ``POST /v1/credit/events/signatures`` signing ``events`` (1 to
    :data:`MAX_EVENTS_PER_SIGNATURE` pending events) with ONE signature: over the SM3 Merkle
    root of their commitments in the given order, as a bulk notarization signed once
    (:func:`sdk.bundle_links.department_root_sign_bytes`). Each event's bundle then carries
    the signature and its path to the root."""
    if not 1 <= len(events) <= MAX_EVENTS_PER_SIGNATURE:
        raise ValueError(f"sign 1 to {MAX_EVENTS_PER_SIGNATURE} events at once")
    tree = MerkleTree.build([bytes.fromhex(event["commitment"]) for event in events])
    signature = key.sign(department_root_sign_bytes(chain_id, tree.leaf_count, tree.root))
    return {
        "events": [str(event["id"]) for event in events],
        "department_signature": base64.b64encode(signature).decode("ascii"),
    }


def pending_path(limit: int, after: str | None) -> str:
    query: dict[str, Any] = {"limit": limit}
    if after is not None:
        query["after"] = after
    return f"/events/pending?{urlencode(query)}"


def verify_proofs(
    answer: CheckAnswer, validator_set: ValidatorSet, *, chain_id: int
) -> dict[str, BundleVerdict]:
    """Verify offline every proof bundle of a ``check`` answer against a trusted validator
    set; record id → verdict (records without an anchored event yet are left out)."""
    verdicts: dict[str, BundleVerdict] = {}
    for record_id, proof in answer.proofs.items():
        if proof is None:
            continue
        bundle = ProofBundle.from_json(proof["bundle"])
        verdicts[record_id] = verify_bundle(bundle, validator_set, chain_id=chain_id)
    return verdicts


def read_table(file: Path | bytes) -> bytes | StreamedBody:
    """The body of an import: bytes as they are, a file to stream (hashed here, once)."""
    return file if isinstance(file, bytes) else StreamedBody.of(Path(file))


def format_of(file: Path | bytes, table_format: str | None) -> str:
    if table_format is not None:
        return table_format
    if isinstance(file, Path) and file.suffix.lower() in (".xlsx", ".xlsm"):
        return "xlsx"
    return "csv"


def rejection(error: RegistryError, last: Answer | None) -> RegistryError:
    if error.code != "import_rejected" or last is None:
        return error
    try:
        report = json.loads(last.body)["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return error
    return CreditImportRejected(error.status_code, error.message, report or {})


__all__ = [
    "CREDIT_PATH",
    "CSV_TYPE",
    "MAX_EVENTS_PER_SIGNATURE",
    "PENDING_PAGE",
    "XLSX_TYPE",
    "CheckAnswer",
    "CreditImportRejected",
    "ImportSummary",
    "check_call",
    "events_of",
    "format_of",
    "import_call",
    "json_call",
    "notarized_of",
    "objects_of",
    "pending_page",
    "pending_path",
    "profile_payload",
    "read_table",
    "record_step",
    "rejection",
    "sign_events",
    "sign_events_once",
    "verify_proofs",
]
