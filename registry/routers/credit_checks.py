"""``/v1/credit``: the approving departments' ``check`` (allowed / restricted / favoured,
with every reason and its proof bundle; each call logged) and a credit record's proof.

Time comes from ``app.state.credit_clock`` as for every credit route
(:func:`registry.routers.credit_common.credit_now`)."""

from __future__ import annotations

import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from registry.credit.check_bundles import kept_record_bundles
from registry.credit.check_log import CheckLogWriter
from registry.credit.check_proofs import EncodedProofs, json_text
from registry.credit.checks import (
    CHECK_ROLES,
    CheckAnswer,
    CheckReason,
    check_kept_subject,
    check_subject,
)
from registry.credit.credit_version import WaitlessVersionReader
from registry.credit.keys import CreditKeys
from registry.credit.proofs import AnchoredEvent, record_bundles
from registry.credit.schemas import CheckIn
from registry.deps import ClientDep, StateDep
from registry.models import Client
from registry.routers.credit_common import (
    ACT_RESPONSES,
    AUTH_RESPONSES,
    credit_keys,
    credit_now,
    require_role,
)
from registry.threads import run_blocking

router = APIRouter(prefix="/v1/credit", tags=["credit"])


def _check_log(request: Request, state: StateDep) -> CheckLogWriter:
    writer: CheckLogWriter | None = getattr(request.app.state, "credit_check_log", None)
    if writer is None:
        writer = CheckLogWriter(state.db)
        request.app.state.credit_check_log = writer
    return writer


def _check_proofs(request: Request) -> EncodedProofs:
    proofs: EncodedProofs | None = getattr(request.app.state, "credit_check_proofs", None)
    if proofs is None:
        proofs = request.app.state.credit_check_proofs = EncodedProofs()
    return proofs


def _check_with_bundles(
    state: StateDep,
    keys: CreditKeys,
    client: Client,
    *,
    subject: str,
    activity: str,
    on: datetime.date,
    now: datetime.datetime,
) -> tuple[CheckAnswer, dict[str, Any], dict[str, AnchoredEvent | None]]:
    """:func:`check_subject` and the bundles of its reasons' records, in one trip to the
    thread pool (the records' latest anchored events kept under the credit version the
    check read, where they are)."""
    answer, log_row = check_subject(
        state.db, keys, client, subject=subject, activity=activity, on=on, now=now
    )
    bundles = record_bundles(
        state.db, state.chain, state.caches, _proved_ids(answer), answer.credit_version
    )
    return answer, log_row, bundles


def _kept_check(
    request: Request,
    state: StateDep,
    keys: CreditKeys,
    client: Client,
    *,
    subject: str,
    activity: str,
    on: datetime.date,
    now: datetime.datetime,
) -> tuple[CheckAnswer, dict[str, Any], dict[str, AnchoredEvent | None]] | None:
    """:func:`_check_with_bundles` answered on the event loop, when the subject's entries
    and its reasons' proofs are all kept under the credit version read there without
    waiting (:class:`WaitlessVersionReader`); None otherwise (PostgreSQL, the version not
    read at once, anything not kept). A kept check then costs no hop to a thread and back."""
    if not state.db.is_sqlite:
        return None
    # Made at the application's startup, its connections closed at its shutdown.
    reader: WaitlessVersionReader | None = getattr(request.app.state, "credit_version_reader", None)
    version = None if reader is None else reader.read()
    if version is None:
        return None
    checked = check_kept_subject(
        state.db,
        keys,
        client,
        subject=subject,
        activity=activity,
        on=on,
        now=now,
        version=version,
    )
    if checked is None:
        return None
    answer, log_row = checked
    bundles = kept_record_bundles(state.db, state.caches, _proved_ids(answer), version)
    if bundles is None:
        return None
    return answer, log_row, bundles


def _proved_ids(answer: CheckAnswer) -> list[str]:
    """The records whose proofs the answer carries, in order: its reasons' list entries and
    the records they rest on."""
    return sorted(
        {reason.entry_record_id for reason in answer.reasons}
        | {record for reason in answer.reasons for record in reason.basis_record_ids}
    )


def _reason_json(reason: CheckReason) -> dict[str, Any]:
    """A reason as ``jsonable_encoder`` makes it: its fields in their order, the entry date
    in ISO form, the basis records as a list (any other kind of value through the encoder
    itself)."""
    return {
        name: value
        if type(value) is str
        else value.isoformat()
        if type(value) is datetime.date
        else list(value)
        if type(value) is tuple and all(type(item) is str for item in value)
        else jsonable_encoder(value)
        for name, value in vars(reason).items()
    }


def check_answer_json(
    answer: CheckAnswer,
    bundles: dict[str, AnchoredEvent | None],
    proofs: EncodedProofs | None = None,
) -> bytes:
    """The body of a check's answer: the bytes FastAPI's ``JSONResponse`` makes of the
    answer run through ``jsonable_encoder``, made directly. Every value here is already a
    JSON value (the bundles are bundle JSON), so the encoder's walk over the proofs (the
    bulk of the answer) would only copy them; with ``proofs``, the proofs' texts kept there
    are joined in instead of writing them again."""
    body = {
        "decision": answer.decision,
        "activity": answer.activity,
        "on": answer.on.isoformat(),
        "catalogue": {
            "id": answer.catalogue_id,
            "version": answer.catalogue_version,
            "hash": answer.catalogue_hash,
        },
        "checked_at": answer.checked_at.isoformat(),
        "reasons": [_reason_json(reason) for reason in answer.reasons],
    }
    if proofs is None:
        return json_text({**body, "proofs": bundles}).encode("utf-8")
    # The body's last member written apart: an object's text without its closing brace,
    # then that member.
    return (json_text(body)[:-1] + ',"proofs":' + proofs.proofs_text(bundles) + "}").encode("utf-8")


@router.post("/check", responses=AUTH_RESPONSES)
async def check(payload: CheckIn, request: Request, client: ClientDep, state: StateDep) -> Any:
    """Allowed / restricted / favoured for ``activity`` on ``on``, with every reason: the
    measure, the list entry and the records behind it, each with its proof bundle (null
    while not anchored). The call is logged (committed before the answer, in groups with
    the calls beside it); the subject sees who checked it."""
    require_role(client, CHECK_ROLES)
    keys = await credit_keys(request, state)
    now = credit_now(request)
    checked = _kept_check(
        request,
        state,
        keys,
        client,
        subject=payload.subject,
        activity=payload.activity,
        on=payload.on,
        now=now,
    )
    if checked is None:
        checked = await run_blocking(
            _check_with_bundles,
            state,
            keys,
            client,
            subject=payload.subject,
            activity=payload.activity,
            on=payload.on,
            now=now,
        )
    answer, log_row, bundles = checked
    await _check_log(request, state).append(log_row)
    return Response(
        check_answer_json(answer, bundles, _check_proofs(request)), media_type="application/json"
    )


@router.get("/records/{record_id}/proof", responses=ACT_RESPONSES)
async def record_proof(record_id: str, client: ClientDep, state: StateDep) -> Any:
    """The record's latest anchored event with its proof bundle (null while none is)."""
    found = await run_blocking(
        record_bundles, state.db, state.chain, state.caches, [record_id.lower()]
    )
    return {"record_id": record_id.lower(), "proof": found[record_id.lower()]}
