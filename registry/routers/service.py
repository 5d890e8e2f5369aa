"""The service itself: ``GET /v1`` (the API's links), ``GET /healthz`` (the process
answers) and ``GET /readyz`` (the database, the node and the anchoring backlog). Public:
they say nothing about any record."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text

from registry.deps import RegistryState, StateDep
from registry.models import Outbox, OutboxState, Record, RecordStatus

router = APIRouter(tags=["service"])
logger = logging.getLogger(__name__)

READINESS_TIMEOUT_S = 3.0
"""Longest a readiness check waits for the database or the node."""

DOCUMENT_LINKS = {
    "openapi": "/openapi.json",
    "docs": "/docs",
    "redoc": "/redoc",
    "signing_example": "/static/signing-example.json",
    "healthz": "/healthz",
    "readyz": "/readyz",
    "verify_page": "/v/{identifier or token}",
}
"""Links that are not API operations."""


class OperationLink(BaseModel):
    """One operation of the API."""

    method: str
    path: str
    summary: str
    signed: bool = Field(description="whether it needs the X-Lianxin-* headers")


class ServiceIndex(BaseModel):
    """Answer to ``GET /v1``."""

    name: str
    version: str
    links: dict[str, str]
    operations: list[OperationLink]


class Liveness(BaseModel):
    """Answer to ``GET /healthz``."""

    status: str = Field(description='always "ok": the process answers')


class CheckPublic(BaseModel):
    """One readiness check."""

    ok: bool
    detail: str


class BacklogPublic(BaseModel):
    """Records and transactions on their way to the chain."""

    records_waiting: int = Field(description="accepted or sealed, not anchored yet")
    oldest_waiting_seconds: float | None = Field(description="age of the oldest of them")
    transactions_unconfirmed: int = Field(description="anchoring transactions not confirmed")


class Readiness(BaseModel):
    """Answer to ``GET /readyz``: 200 when the database and the node answer, 503 otherwise."""

    ready: bool
    database: CheckPublic
    node: CheckPublic
    backlog: BacklogPublic | None


@router.get("/v1", response_model=ServiceIndex)
async def service_index(request: Request) -> ServiceIndex:
    """The API's links: its documents and every operation, from the OpenAPI document."""
    app = request.app
    document = app.openapi()
    operations = [
        OperationLink(
            method=method.upper(),
            path=path,
            summary=str(operation.get("summary", "")),
            signed=bool(operation.get("security")),
        )
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    return ServiceIndex(
        name=app.title, version=app.version, links=DOCUMENT_LINKS, operations=operations
    )


@router.get("/healthz", response_model=Liveness)
async def healthz() -> Liveness:
    """Liveness: the process and its event loop answer."""
    return Liveness(status="ok")


def _check_database(state: RegistryState) -> tuple[CheckPublic, BacklogPublic]:
    waiting = (RecordStatus.ACCEPTED.value, RecordStatus.SEALED.value)
    with state.db.read_session() as session:
        session.execute(text("SELECT 1"))
        count, oldest = session.execute(
            select(func.count(), func.min(Record.created_at)).where(Record.status.in_(waiting))
        ).one()
        unconfirmed = session.scalar(
            select(func.count())
            .select_from(Outbox)
            .where(Outbox.state != OutboxState.CONFIRMED.value)
        )
    age = None
    if oldest is not None:
        moment = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        age = max(0.0, (datetime.now(UTC) - moment).total_seconds())
    backlog = BacklogPublic(
        records_waiting=int(count or 0),
        oldest_waiting_seconds=age,
        transactions_unconfirmed=int(unconfirmed or 0),
    )
    return CheckPublic(ok=True, detail=state.db.engine.url.get_backend_name()), backlog


def _check_node(state: RegistryState) -> CheckPublic:
    height = state.chain.reader.block_number()
    return CheckPublic(ok=True, detail=f"block {height}")


async def _run_check(function: Any, state: RegistryState) -> Any:
    try:
        return await asyncio.wait_for(asyncio.to_thread(function, state), READINESS_TIMEOUT_S)
    except TimeoutError:
        return CheckPublic(ok=False, detail=f"no answer within {READINESS_TIMEOUT_S} s")
    except Exception as exc:  # the check reports any failure; it never fails itself
        # The answer is public: the error's type only; its text (hosts, ports) goes to the log.
        logger.warning("readiness check %s failed: %s", function.__name__, exc)
        return CheckPublic(ok=False, detail=f"{type(exc).__name__}")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "the database or the node is away"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """Readiness: the database answers (with the anchoring backlog), and the node answers
    (with its height). 200 when both do, 503 otherwise."""
    database, node = await asyncio.gather(
        _run_check(_check_database, state), _run_check(_check_node, state)
    )
    backlog = None
    if isinstance(database, tuple):
        database, backlog = database
    ready = database.ok and node.ok
    answer = Readiness(ready=ready, database=database, node=node, backlog=backlog)
    return JSONResponse(
        answer.model_dump(mode="json"),
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )
