"""``/v1/credit``: public credit served. Departments import 双公示 files and publish list
entries and credit commitments, correct, withdraw and stop publishing, sign the events
this makes (each is then anchored through the shared pipeline with the department's own
signature), decide repair applications; profiles and the public search read
:mod:`registry.credit.public_reads` and :mod:`registry.credit.authority_profile`. Approving
departments' ``check`` and a record's proof are served by
:mod:`registry.routers.credit_checks`.

Time comes from ``app.state.credit_clock`` (a callable returning an aware datetime) when
set — tests set a fixed one — and from the system clock otherwise."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from authorizations.errors import InvalidTerms
from authorizations.terms import SubjectKind, canonical_subject
from credit.importing import ImportMode, TableFormat
from credit.records import CommitmentStatus, CreditRecord
from credit.rulesets import BUNDLED_RULE_SETS, RuleSet, bundled_rule_set
from registry.authorizations.gateway import get_gateway
from registry.authorizations.service import IDENTITY_ROLE, SUBJECT_ROLE
from registry.credit.authority_profile import AuthorityProfile, RepairView, authority_profile
from registry.credit.import_upload import (
    IMPORT_OPENAPI,
    import_runner,
    import_streamed,
    is_streamed,
)
from registry.credit.imports import ImportRefused, import_bytes
from registry.credit.lifecycle import exit_list, settle_commitment, stop_publishing, withdraw
from registry.credit.public_reads import PublicProfile, SearchHit, public_profile, search_public
from registry.credit.repair import (
    MAX_EVIDENCE,
    OwnFiler,
    RepairDecision,
    apply_for_repair,
    decide_repair,
    file_own_repair,
    overdue_repairs,
)
from registry.credit.schemas import (
    CommitmentCreate,
    EventsOut,
    ImportOut,
    ListEntryCreate,
    ListExitIn,
    PendingEventOut,
    ProfileIn,
    ReasonIn,
    RepairApply,
    RepairDecide,
    SettleIn,
    SignaturesIn,
    SignedOut,
)
from registry.credit.signing import (
    mark_signed,
    pending_events,
    root_signed_event_records,
    signed_event_records,
)
from registry.credit.store import (
    CREDIT_OFFICE_ROLE,
    CREDIT_ROLE,
    Publisher,
    require_authority,
    store_records,
)
from registry.deps import ClientDep, SignedDep, StateDep, current_client
from registry.errors import Conflict, Forbidden, InvalidInput, RegistryError, error_body
from registry.models import Client
from registry.routers.credit_common import (
    ACT_RESPONSES,
    AUTH_RESPONSES,
    credit_keys,
    credit_now,
    require_role,
)
from registry.streamed_requests import authenticate_streamed
from registry.threads import run_blocking

router = APIRouter(prefix="/v1/credit", tags=["credit"])

DEFAULT_RULE_SET = "cn.ndrc.order-58"
"""The rule set windows are computed under unless a request names another."""

PUBLISH_ROLES = (CREDIT_ROLE, CREDIT_OFFICE_ROLE)
"""Roles that publish and act on records."""

READ_ROLES = (CREDIT_ROLE, CREDIT_OFFICE_ROLE, "verify")
"""Roles that read authority profiles of any subject."""

MAX_PENDING = 1_000
"""Most pending events listed at once."""

T = TypeVar("T")


def _rules(rule_set: str) -> RuleSet:
    if rule_set not in BUNDLED_RULE_SETS:
        raise InvalidInput(
            f"unknown rule set {rule_set!r}; known: {sorted(BUNDLED_RULE_SETS)}",
            code="unknown_rule_set",
        )
    return bundled_rule_set(rule_set)


async def _publisher(
    request: Request, state: StateDep, client: Client, rule_set: str = DEFAULT_RULE_SET
) -> Publisher:
    require_role(client, PUBLISH_ROLES)
    return Publisher(
        client, await credit_keys(request, state), _rules(rule_set), credit_now(request)
    )


def _write(state: StateDep, action: Callable[..., T], *args: Any) -> Callable[[], T]:
    def run() -> T:
        with state.db.session() as session:
            return action(session, *args)

    return run


@router.post(
    "/imports",
    response_model=ImportOut,
    responses={
        **AUTH_RESPONSES,
        413: {
            "description": "file larger than max_import_bytes (its SM3 declared) or "
            "max_upload_bytes (not declared)"
        },
        422: {
            "description": "a row is invalid (details: the report), or not a table, or the "
            "body does not hash to the SM3 declared (body_digest_mismatch)"
        },
    },
    openapi_extra=IMPORT_OPENAPI,
)
async def import_table(
    request: Request,
    state: StateDep,
    table_format: Annotated[TableFormat, Query(alias="format")] = TableFormat.CSV,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    rule_set: str = DEFAULT_RULE_SET,
) -> Any:
    """Import a 双公示 file in the national column layout (the body is the file itself).
    Declare the file's hex SM3 in ``X-Lianxin-Content-SM3`` (the signature is the same: it
    covers the body's SM3 either way) and the file is streamed to disk, bounded by
    ``max_import_bytes``, and checked against that SM3; without it the body is read whole,
    bounded by ``max_upload_bytes``. All or nothing by default: any invalid row imports
    nothing and answers 422 with the report (row, column, value, reason) in
    ``error.details``; ``mode=valid_rows`` imports the valid rows and anchors the report of
    the rejected ones. The same file again changes nothing; a changed row is a correction
    with history. Each new event waits for the department's signature
    (``GET /v1/credit/events/pending``)."""
    streamed = is_streamed(request)
    if streamed:
        client = await authenticate_streamed(request, state)
    else:
        client = await current_client(request, state)
    publisher = await _publisher(request, state, client, rule_set)
    try:
        if streamed:
            run = import_runner(state, publisher, table_format, mode)
            outcome = await import_streamed(request, state, run)
        else:
            data = await request.body()
            outcome = await run_blocking(
                import_bytes, state.db, publisher, data, table_format=table_format, mode=mode
            )
    except ImportRefused as refused:
        return JSONResponse(
            error_body(refused.code, refused.message, refused.report), status_code=422
        )
    waiting = await run_blocking(pending_events, state.db, client, limit=MAX_PENDING)
    return ImportOut(
        published=outcome.published,
        corrected=outcome.corrected,
        unchanged=outcome.unchanged,
        report=outcome.report,
        report_hash=outcome.report_hash,
        report_event_id=outcome.report_event_id,
        awaiting_signature=len(waiting),
    )


def _publish(state: StateDep, publisher: Publisher, records: list[CreditRecord]) -> EventsOut:
    for record in records:
        require_authority(publisher.client, record.authority_uscc, None)
    try:
        with state.db.session() as session:
            store_records(session, publisher, records)
    except IntegrityError:
        raise Conflict("a concurrent request stored this record", code="concurrent") from None
    waiting = pending_events(state.db, publisher.client, limit=MAX_PENDING)
    return EventsOut(events=[event.id for event in waiting])


@router.post("/list-entries", response_model=EventsOut, responses=AUTH_RESPONSES)
async def enter_list(
    payload: ListEntryCreate, request: Request, client: ClientDep, state: StateDep
) -> EventsOut:
    """Enter a subject into a red or black list (an entry is a record: the same entry
    again changes nothing, a changed one is a correction). Answers the client's events
    waiting for its signature."""
    publisher = await _publisher(request, state, client)
    try:
        entry = payload.to_entry()
    except ValueError as error:
        raise InvalidInput(str(error), code="invalid_list_entry") from None
    return await run_blocking(_publish, state, publisher, [entry])


@router.post("/commitments", response_model=EventsOut, responses=AUTH_RESPONSES)
async def publish_commitment(
    payload: CommitmentCreate, request: Request, client: ClientDep, state: StateDep
) -> EventsOut:
    """Publish a subject's signed credit commitment (信用承诺), pending until settled."""
    publisher = await _publisher(request, state, client)
    try:
        commitment = payload.to_commitment()
    except ValueError as error:
        raise InvalidInput(str(error), code="invalid_commitment") from None
    return await run_blocking(_publish, state, publisher, [commitment])


async def _step(
    request: Request, state: StateDep, client: Client, action: Callable[..., str], *args: Any
) -> EventsOut:
    publisher = await _publisher(request, state, client)
    event = await run_blocking(_write(state, action, publisher, *args))
    return EventsOut(events=[event], record_ids=[str(args[0]).lower()])


@router.post("/records/{record_id}/withdraw", response_model=EventsOut, responses=ACT_RESPONSES)
async def withdraw_record(
    record_id: str, payload: ReasonIn, request: Request, client: ClientDep, state: StateDep
) -> EventsOut:
    """The decision was overturned (撤销): display stops now; history and proof stay."""
    return await _step(request, state, client, withdraw, record_id, payload.reason)


@router.post("/records/{record_id}/stop", response_model=EventsOut, responses=ACT_RESPONSES)
async def stop_record(
    record_id: str, payload: ReasonIn, request: Request, client: ClientDep, state: StateDep
) -> EventsOut:
    """Stop publishing the record now (the authority's decision)."""
    return await _step(request, state, client, stop_publishing, record_id, payload.reason)


@router.post("/records/{record_id}/list-exit", response_model=EventsOut, responses=ACT_RESPONSES)
async def leave_list(
    record_id: str, payload: ListExitIn, request: Request, client: ClientDep, state: StateDep
) -> EventsOut:
    """The subject leaves the list of this entry on ``exit_date``."""
    return await _step(
        request, state, client, exit_list, record_id, payload.exit_date, payload.reason
    )


@router.post("/records/{record_id}/settle", response_model=EventsOut, responses=ACT_RESPONSES)
async def settle(
    record_id: str, payload: SettleIn, request: Request, client: ClientDep, state: StateDep
) -> EventsOut:
    """A pending credit commitment is fulfilled or broken (a new version of it)."""
    status = CommitmentStatus(payload.status)
    return await _step(request, state, client, settle_commitment, record_id, status, payload.reason)


@router.get(
    "/events/pending",
    response_model=list[PendingEventOut],
    responses={**AUTH_RESPONSES, 404: {"description": "after names no event of this client"}},
)
async def events_pending(
    client: ClientDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PENDING)] = MAX_PENDING,
    after: Annotated[str | None, Query(max_length=36, description="the next page")] = None,
) -> list[PendingEventOut]:
    """The client's events waiting for its signature, oldest first (after the event
    ``after``, when given): sign each commitment as a notarized record's (see
    ``GET /v1/records/signing``), or all of them at once over their Merkle root."""
    events = await run_blocking(pending_events, state.db, client, limit=limit, after=after)
    return [PendingEventOut(**vars(event)) for event in events]


@router.post(
    "/events/signatures",
    response_model=SignedOut,
    responses={**ACT_RESPONSES, 422: {"description": "a signature does not verify"}},
)
async def sign_events(payload: SignaturesIn, signed: SignedDep, state: StateDep) -> SignedOut:
    """The department's signatures of its events, one per event or one over the Merkle
    root of a list of them: each signed event becomes a notarized record (stored with this
    request's nonce, all or none), sealed and anchored by the shared batcher; its bundle
    then verifies offline with the department's signature (and, signed at once, the
    event's path to the signed root)."""
    try:
        require_role(signed.client, PUBLISH_ROLES)
        chain_id = await run_blocking(state.chain.chain_id)
        if payload.signatures is not None:
            prepared = await run_blocking(
                signed_event_records, state.db, signed.client, payload.signatures, chain_id
            )
        else:
            assert payload.events is not None and payload.department_signature is not None
            prepared = await run_blocking(
                root_signed_event_records,
                state.db,
                signed.client,
                payload.events,
                payload.department_signature,
                chain_id,
            )
    except RegistryError:
        await state.intake.spend_nonce(signed.nonce)
        raise
    answers = await state.intake.accept_records(signed.nonce, [record for _, record in prepared])
    notarized = {
        event_id: accepted.id
        for (event_id, _), (accepted, _) in zip(prepared, answers, strict=True)
    }
    await run_blocking(mark_signed, state.db, notarized)
    return SignedOut(notarized=notarized)


@router.post("/repairs", response_model=RepairView, responses=ACT_RESPONSES)
async def apply_repair(
    payload: RepairApply, request: Request, client: ClientDep, state: StateDep
) -> RepairView:
    """File a subject's repair application (信用修复) for one of its records, with its
    evidence, once the minimum period has passed and its obligations are met (422 with
    ``repair_before_minimum``, ``repair_obligations_unmet``… otherwise)."""
    require_role(client, PUBLISH_ROLES)
    keys = await credit_keys(request, state)

    def run() -> RepairView:
        with state.db.session() as session:
            return apply_for_repair(
                session,
                keys,
                record_id=payload.record_id.lower(),
                subject=payload.subject,
                evidence=payload.evidence,
                obligations_fulfilled=payload.obligations_fulfilled,
                now=credit_now(request),
            )

    return await run_blocking(run)


class OwnRepairApply(BaseModel):
    """``POST /v1/credit/repairs/own``: a subject's own application, signed over its
    terms (:mod:`sdk.credit_subject`)."""

    model_config = ConfigDict(extra="forbid")

    terms: dict[str, Any] = Field(description="the terms signed (sdk.credit_subject)")
    evidence: str = Field(min_length=1, max_length=MAX_EVIDENCE)
    signature: str = Field(min_length=1, max_length=200, description="base64 SM2 signature")
    subject_id: str | None = Field(
        default=None,
        min_length=18,
        max_length=18,
        description="the citizen's resident ID, when their identity provider files",
    )


def _own_filer(request: Request, client: Client, subject_id: str | None) -> OwnFiler:
    """The filing subject: the enterprise itself (role ``subject``, no ``subject_id``) or
    the citizen its identity provider names (role ``identity``)."""
    if subject_id is None and SUBJECT_ROLE in client.roles:
        kind, identifier = SubjectKind.ENTERPRISE, client.uscc
    elif subject_id is not None and IDENTITY_ROLE in client.roles:
        kind = SubjectKind.CITIZEN
        try:
            identifier = canonical_subject(kind, subject_id)
        except InvalidTerms as exc:
            raise InvalidInput(str(exc), code="invalid_subject") from None
    else:
        raise Forbidden(f"client {client.id} files no repair as or for a subject")
    signer = get_gateway(request).sharing.signer
    return OwnFiler(
        client_id=client.id,
        public_key=bytes.fromhex(client.public_key),
        subject_kind=kind.value,
        subject_id=identifier,
        subject_index=signer.subject_index(kind.value, identifier),
    )


@router.post(
    "/repairs/own",
    response_model=RepairView,
    responses={**ACT_RESPONSES, 409: {"description": "these terms were filed already, or pending"}},
)
async def apply_own_repair(
    payload: OwnRepairApply, request: Request, client: ClientDep, state: StateDep
) -> RepairView:
    """A subject files the repair application for its OWN record: an enterprise (role
    ``subject``) signing the terms with its own key, or a citizen through the identity
    provider that authenticated them (role ``identity``, attesting their approval). 422
    for terms not of this subject, chain, evidence or moment, or a signature that does not
    verify; 409 for terms filed before; 403 for another subject's record. The authority
    decides as for any application; the subject follows it in its tracker."""
    filer = _own_filer(request, client, payload.subject_id)
    try:
        signature = base64.b64decode(payload.signature, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("signature must be base64", code="bad_signature") from None
    keys = await credit_keys(request, state)
    chain_id = await run_blocking(get_gateway(request).sharing.signer.chain_id)

    def run() -> RepairView:
        with state.db.session() as session:
            return file_own_repair(
                session,
                keys,
                filer,
                terms=payload.terms,
                evidence=payload.evidence,
                signature=signature,
                chain_id=chain_id,
                now=credit_now(request),
                signed_now=time.time(),
            )

    return await run_blocking(run)


@router.post(
    "/repairs/{application_id}/decision", response_model=RepairView, responses=ACT_RESPONSES
)
async def decide(
    application_id: str,
    payload: RepairDecide,
    request: Request,
    client: ClientDep,
    state: StateDep,
) -> RepairView:
    """The authority approves (display stops at once; ``repair`` and ``stop_publishing``
    events are made) or rejects an application, with its reason."""
    publisher = await _publisher(request, state, client)
    decision = RepairDecision(payload.approve, payload.reason)
    view, _events = await run_blocking(
        _write(state, decide_repair, publisher, application_id, decision)
    )
    return view


@router.get("/repairs/overdue", response_model=list[RepairView], responses=AUTH_RESPONSES)
async def repairs_overdue(request: Request, client: ClientDep, state: StateDep) -> Any:
    """Applications past their deadline without a decision (the client's authority's, or
    every one for the credit office)."""
    require_role(client, PUBLISH_ROLES)
    authority = None if CREDIT_OFFICE_ROLE in client.roles else client.uscc
    return await run_blocking(
        overdue_repairs, state.db, credit_now(request), authority_uscc=authority
    )


@router.post("/profiles/public", response_model=PublicProfile, responses=AUTH_RESPONSES)
async def profile_public(
    payload: ProfileIn, request: Request, client: ClientDep, state: StateDep
) -> PublicProfile:
    """What the public sees of a subject at ``at`` (default now): records inside their
    window, masked."""
    keys = await credit_keys(request, state)
    at = payload.at or credit_now(request)
    return await run_blocking(public_profile, state.db, payload.subject, at, keys=keys)


@router.post("/profiles/authority", response_model=AuthorityProfile, responses=AUTH_RESPONSES)
async def profile_authority(
    payload: ProfileIn, request: Request, client: ClientDep, state: StateDep
) -> AuthorityProfile:
    """Everything on file about a subject, with history, events, repairs and the log of
    checks: for credit roles and verifiers, and for an enterprise client (role
    ``subject``) about itself."""
    if not set(READ_ROLES) & set(client.roles) and payload.subject.upper() != client.uscc:
        raise Forbidden("only credit roles read other subjects' profiles", code="forbidden_role")
    keys = await credit_keys(request, state)
    at = payload.at or credit_now(request)
    return await run_blocking(authority_profile, state.db, payload.subject, at=at, keys=keys)


@router.get("/search", response_model=list[SearchHit])
async def search(
    request: Request,
    state: StateDep,
    q: Annotated[str, Query(min_length=1, max_length=100)],
) -> list[SearchHit]:
    """Subjects with records on public display, by name or USCC (no signature needed:
    this is public information; natural persons are not searchable)."""
    return await run_blocking(search_public, state.db, q, credit_now(request))
