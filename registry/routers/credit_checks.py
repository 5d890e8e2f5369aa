"""``/v1/credit``: the approving departments' ``check`` (allowed / restricted / favoured,
with every reason and its proof bundle; each call logged) and a credit record's proof.

Time comes from ``app.state.credit_clock`` as for :mod:`registry.routers.credit`."""

from __future__ import annotations

import datetime
from typing import Any

from fastapi import APIRouter, Request

from registry.credit.check_log import CheckLogWriter
from registry.credit.checks import CHECK_ROLES, CheckAnswer, check_subject
from registry.credit.keys import CreditKeys
from registry.credit.proofs import AnchoredEvent, record_bundles
from registry.credit.schemas import CheckIn
from registry.deps import ClientDep, StateDep
from registry.models import Client
from registry.routers.credit import _ACT, _AUTH, _keys, _now, _require_role
from registry.threads import run_blocking

router = APIRouter(prefix="/v1/credit", tags=["credit"])


def _check_log(request: Request, state: StateDep) -> CheckLogWriter:
    writer: CheckLogWriter | None = getattr(request.app.state, "credit_check_log", None)
    if writer is None:
        writer = CheckLogWriter(state.db)
        request.app.state.credit_check_log = writer
    return writer


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
    thread pool."""
    answer, log_row = check_subject(
        state.db, keys, client, subject=subject, activity=activity, on=on, now=now
    )
    ids = sorted(
        {reason.entry_record_id for reason in answer.reasons}
        | {record for reason in answer.reasons for record in reason.basis_record_ids}
    )
    return answer, log_row, record_bundles(state.db, state.chain, state.caches, ids)


@router.post("/check", responses=_AUTH)
async def check(payload: CheckIn, request: Request, client: ClientDep, state: StateDep) -> Any:
    """Allowed / restricted / favoured for ``activity`` on ``on``, with every reason: the
    measure, the list entry and the records behind it, each with its proof bundle (null
    while not anchored). The call is logged (committed before the answer, in groups with
    the calls beside it); the subject sees who checked it."""
    _require_role(client, CHECK_ROLES)
    keys = await _keys(request, state)
    answer, log_row, bundles = await run_blocking(
        _check_with_bundles,
        state,
        keys,
        client,
        subject=payload.subject,
        activity=payload.activity,
        on=payload.on,
        now=_now(request),
    )
    await _check_log(request, state).append(log_row)
    return {
        "decision": answer.decision,
        "activity": answer.activity,
        "on": answer.on.isoformat(),
        "catalogue": {
            "id": answer.catalogue_id,
            "version": answer.catalogue_version,
            "hash": answer.catalogue_hash,
        },
        "checked_at": answer.checked_at.isoformat(),
        "reasons": [vars(reason) for reason in answer.reasons],
        "proofs": bundles,
    }


@router.get("/records/{record_id}/proof", responses=_ACT)
async def record_proof(record_id: str, client: ClientDep, state: StateDep) -> Any:
    """The record's latest anchored event with its proof bundle (null while none is)."""
    found = await run_blocking(
        record_bundles, state.db, state.chain, state.caches, [record_id.lower()]
    )
    return {"record_id": record_id.lower(), "proof": found[record_id.lower()]}
