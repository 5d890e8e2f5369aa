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

from registry.credit.check_answers import AnswerKey, KeptAnswer, KeptAnswers, proof_bundles
from registry.credit.check_bundles import kept_record_bundles
from registry.credit.check_log import CheckLogWriter
from registry.credit.check_proofs import EncodedProofs, json_text
from registry.credit.checks import (
    CHECK_ROLES,
    CheckAnswer,
    CheckAsked,
    CheckReason,
    activity_name,
    check_kept_subject,
    check_log_row,
    check_subject,
)
from registry.credit.credit_version import WaitlessVersionReader
from registry.credit.keys import CreditKeys
from registry.credit.proofs import AnchoredEvent, record_bundles
from registry.credit.schemas import CheckIn
from registry.deps import ClientDep, StateDep, get_state, signed_payload
from registry.errors import RegistryError
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


def _kept_answers(request: Request) -> KeptAnswers:
    kept: KeptAnswers | None = getattr(request.app.state, "credit_check_answers", None)
    if kept is None:
        kept = request.app.state.credit_check_answers = KeptAnswers()
    return kept


def _check_with_bundles(
    state: StateDep, keys: CreditKeys, asked: CheckAsked
) -> tuple[CheckAnswer, dict[str, Any], dict[str, AnchoredEvent | None]]:
    """:func:`check_subject` and the bundles of its reasons' records, in one trip to the
    thread pool (the records' latest anchored events kept under the credit version the
    check read, where they are)."""
    answer, log_row = check_subject(state.db, keys, asked)
    bundles = record_bundles(
        state.db, state.chain, state.caches, _proved_ids(answer), answer.credit_version
    )
    return answer, log_row, bundles


def _kept_check(
    state: StateDep, keys: CreditKeys, asked: CheckAsked, version: int
) -> tuple[CheckAnswer, dict[str, Any], dict[str, AnchoredEvent | None]] | None:
    """:func:`_check_with_bundles` answered on the event loop, when the subject's entries
    and its reasons' proofs are all kept under the credit version ``version``, read there
    without waiting (:class:`WaitlessVersionReader`); None if anything is not kept. A kept
    check then costs no hop to a thread and back."""
    checked = check_kept_subject(state.db, keys, asked, version)
    if checked is None:
        return None
    answer, log_row = checked
    bundles = kept_record_bundles(state.db, state.caches, _proved_ids(answer), version)
    if bundles is None:
        return None
    return answer, log_row, bundles


def _waitless_version(request: Request, state: StateDep) -> int | None:
    """The credit version read on the event loop without waiting; None on PostgreSQL or if
    it cannot be read at once."""
    if not state.db.is_sqlite:
        return None
    # Made at the application's startup, its connections closed at its shutdown.
    reader: WaitlessVersionReader | None = getattr(request.app.state, "credit_version_reader", None)
    return None if reader is None else reader.read()


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


def _head_json(answer: CheckAnswer) -> dict[str, Any]:
    """The answer's members before its time, as JSON values."""
    return {
        "decision": answer.decision,
        "activity": answer.activity,
        "on": answer.on.isoformat(),
        "catalogue": {
            "id": answer.catalogue_id,
            "version": answer.catalogue_version,
            "hash": answer.catalogue_hash,
        },
    }


def check_answer_parts(
    answer: CheckAnswer, bundles: dict[str, AnchoredEvent | None], proofs: EncodedProofs
) -> tuple[str, str]:
    """The text of :func:`check_answer_json` around the value of its time (``checked_at``):
    what comes before it and what comes after, the proofs' texts kept in ``proofs`` joined
    in."""
    # An object's text without its closing brace, then its next members.
    return (
        json_text(_head_json(answer))[:-1] + ',"checked_at":',
        ',"reasons":'
        + json_text([_reason_json(reason) for reason in answer.reasons])
        + ',"proofs":'
        + proofs.proofs_text(bundles)
        + "}",
    )


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
    if proofs is None:
        body = {
            **_head_json(answer),
            "checked_at": answer.checked_at.isoformat(),
            "reasons": [_reason_json(reason) for reason in answer.reasons],
            "proofs": bundles,
        }
        return json_text(body).encode("utf-8")
    head, tail = check_answer_parts(answer, bundles, proofs)
    return _answer_body(head, answer, tail)


async def _answered(
    request: Request, state: StateDep, client: Client, payload: CheckIn
) -> tuple[bytes, dict[str, Any]]:
    """The answer's bytes of the check ``payload`` by ``client`` and its log row: from a
    kept answer, else made on the event loop from what is kept, else on a thread."""
    require_role(client, CHECK_ROLES)
    keys = await credit_keys(request, state)
    asked = CheckAsked(client, payload.subject, payload.activity, payload.on, credit_now(request))
    name = activity_name(asked.activity)
    version = _waitless_version(request, state)
    if version is not None:
        subject_key = keys.subject_key(asked.subject)
        key: AnswerKey = (subject_key, version, name, asked.on)
        kept = _kept_answers(request)
        found = kept.get(key, state.caches)
        if found is not None:
            return found.body(asked.now), check_log_row(asked, subject_key, name, found.decision)
        checked = _kept_check(state, keys, asked, version)
        if checked is not None:
            answer, log_row, bundles = checked
            head, tail = check_answer_parts(answer, bundles, _check_proofs(request))
            carried = proof_bundles(bundles)
            if carried is not None:
                # Answered from what is kept under the version alone: kept whole.
                kept.put(key, KeptAnswer(answer.decision, head.encode(), tail.encode(), carried))
            return _answer_body(head, answer, tail), log_row
    answer, log_row, bundles = await run_blocking(_check_with_bundles, state, keys, asked)
    head, tail = check_answer_parts(answer, bundles, _check_proofs(request))
    return _answer_body(head, answer, tail), log_row


def _answer_body(head: str, answer: CheckAnswer, tail: str) -> bytes:
    """An answer's bytes: its text around the time, the time of ``answer`` between."""
    return (head + json_text(answer.checked_at.isoformat()) + tail).encode("utf-8")


_CHECK_BODY = {
    "required": True,
    "content": {"application/json": {"schema": CheckIn.model_json_schema()}},
}


@router.post(
    "/check",
    responses={**AUTH_RESPONSES, 422: {"description": "invalid body"}},
    openapi_extra={"requestBody": _CHECK_BODY},
)
async def check(request: Request) -> Response:
    """Allowed / restricted / favoured for ``activity`` on ``on``, with every reason: the
    measure, the list entry and the records behind it, each with its proof bundle (null
    while not anchored). The call is logged (committed before the answer, in groups with
    the calls beside it, the request's nonce spent in the same transaction); the subject
    sees who checked it. Body: a ``CheckIn``.

    Taken as the request is rather than through FastAPI's parameter and dependency
    machinery (as ``/v1/verify`` is): the signature is checked, then the body parsed with
    the same pydantic model (same 422; nothing stored, the nonce included)."""
    state = await get_state(request)
    signed, payload = await signed_payload(request, state, CheckIn)
    try:
        body, log_row = await _answered(request, state, signed.client, payload)
    except RegistryError:
        # A refused request spends its nonce all the same: replaying it gets 401.
        await state.intake.spend_nonce(signed.nonce)
        raise
    await _check_log(request, state).append(log_row, signed.nonce)
    return Response(body, media_type="application/json")


@router.get("/records/{record_id}/proof", responses=ACT_RESPONSES)
async def record_proof(record_id: str, client: ClientDep, state: StateDep) -> Any:
    """The record's latest anchored event with its proof bundle (null while none is)."""
    found = await run_blocking(
        record_bundles, state.db, state.chain, state.caches, [record_id.lower()]
    )
    return {"record_id": record_id.lower(), "proof": found[record_id.lower()]}
