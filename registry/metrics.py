"""The registry's Prometheus metrics, served at ``GET /metrics`` (prometheus-client's text
format) to loopback clients only, unless ``metrics_allowed_networks`` names the networks of
other scrapers; every other client gets 403.

What happens to requests is observed as it happens, by ASGI middleware around the whole
application: requests by method, route template (never the raw path, so ids do not make new
series) and status, and their latency; the reason of each 401 and the verdicts of each
verification, read from the head of the answer's own body (the error code; the four verdicts,
which come before the facts and the bundle). Errors the database driver raises are counted by a
listener on the engine. The anchoring pipeline is read from the database when scraped, so
every process serving one database reports the same pipeline, whichever holds the workers
lease:

==============================================  =========  ======================================
name                                            type       what
==============================================  =========  ======================================
lianxin_registry_requests_total                 counter    requests by method, route, status
lianxin_registry_request_seconds                histogram  request latency by method and route
lianxin_registry_authentication_failures_total  counter    401 answers by reason (the error code)
lianxin_registry_verdicts_total                 counter    ``POST /v1/verify`` verdicts by check
                                                           and verdict
lianxin_registry_records_accepted_total         counter    records accepted (highest sequence)
lianxin_registry_records_waiting                gauge      not anchored yet, by stage: sealing
                                                           (accepted, not in a batch) or
                                                           anchoring (sealed, tx unconfirmed)
lianxin_registry_oldest_waiting_seconds         gauge      age of the oldest waiting record
lianxin_registry_outbox_depth                   gauge      anchoring txs not confirmed, by state
lianxin_registry_batches_anchored_total         counter    batches whose root is anchored
lianxin_registry_anchoring_latency_seconds      histogram  record accepted → its batch anchored
lianxin_registry_database_errors_total          counter    driver errors by exception class
lianxin_registry_database_up                    gauge      1 if the scrape's queries answered
==============================================  =========  ======================================

The anchoring latency histogram counts the records of the batches anchored since this
process first scraped (a process does not replay the database's history), at most
``MAX_RECORDS_PER_SCRAPE`` records a scrape (whole batches; the rest at the next one).
Batches are followed by id, never by a clock, and a scrape reads only the ids from the
oldest batch unconfirmed at the last scrape up (the batches table has no other index), so it
costs the same on a database of a day or of years.
Request counters are per process: with ``workers > 1`` each scrape reaches one of them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.db import Database
from registry.errors import Forbidden
from registry.models import Batch, BatchStatus, Outbox, OutboxState, Record, RecordStatus
from registry.routers.verify import router as verify_router

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Request latency buckets, seconds."""
ANCHORING_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
"""Anchoring latency buckets, seconds: a batch is sealed every ``batch_interval`` (1 s by
default) and its transaction confirmed a block later; minutes mean the pipeline is stuck."""
MAX_RECORDS_PER_SCRAPE = 200_000
"""Most records whose anchoring latency one scrape reads (a batch is never split)."""
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""HTTP methods counted by name; any other is counted as ``other``."""
MAX_KEPT_SERIES = 4_096
"""Most (method, route, status) request series whose counter and histogram are kept at hand
(routes are templates and methods a fixed few, so the application's series are far fewer);
past that, a series is looked up in the metric's own table each time, as before."""
UNMATCHED_ROUTE = "unmatched"
"""Route label of a request no route matched (or refused before routing)."""

VERIFY_PATH = verify_router.prefix
"""The path whose answers carry verdicts."""
BODY_HEAD_BYTES = 4096
"""Most bytes of an answer read for its error code or verdicts (both sit near its start)."""
_REASON = re.compile(r"[a-z_]{1,40}")
"""An error code used as a label value as it is; any other is counted as ``other``."""
_VERDICT = re.compile(
    rb'[{,]"(integrity|issuance|status|issuer)":\{"verdict":"(VALID|INVALID|UNAVAILABLE)"'
)
"""One top-level verdict of a verification answer (a quote inside a string is escaped, so a
detail text cannot look like one)."""

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def scraper_allowed(host: str | None, networks: Iterable[IpNetwork] = ()) -> bool:
    """Whether a client at ``host`` may read the metrics: a loopback address, or one inside
    ``networks``. A host that is not an IP address (or none) may not."""
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or any(address in network for network in networks)


@dataclass(frozen=True)
class _Cursor:
    """Where the last scrape left the anchored batches, by id alone (no clock): a batch
    anchored since has an id of at least ``lowest_id`` and is not in ``seen``."""

    lowest_id: int
    """Every batch unconfirmed at the last scrape, created since, or left for this scrape
    has this id or a higher one."""
    seen: frozenset[int]
    """The anchored batches from ``lowest_id`` up already counted."""


class RegistryMetrics(Collector):
    """The metrics of one registry process, in a registry of its own."""

    def __init__(
        self,
        allowed_networks: Iterable[IpNetwork] = (),
        *,
        max_records_per_scrape: int = MAX_RECORDS_PER_SCRAPE,
    ) -> None:
        """Metrics served to loopback clients and to ``allowed_networks``; a scrape reads
        the anchoring latency of at most ``max_records_per_scrape`` records (whole
        batches, at least one)."""
        self.allowed_networks = tuple(allowed_networks)
        self.max_records_per_scrape = max_records_per_scrape
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "lianxin_registry_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "lianxin_registry_request_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.authentication_failures = Counter(
            "lianxin_registry_authentication_failures",
            "Requests answered 401, by reason (the error code)",
            ["reason"],
            registry=self.registry,
        )
        self.verdicts = Counter(
            "lianxin_registry_verdicts",
            "Verification verdicts by check and verdict",
            ["check", "verdict"],
            registry=self.registry,
        )
        self.database_errors = Counter(
            "lianxin_registry_database_errors",
            "Errors raised by the database driver, by exception class",
            ["kind"],
            registry=self.registry,
        )
        # Not in the registry: observed inside collect(), then yielded by it, so that a
        # scrape carries the batches it has just read.
        self.anchoring_latency = Histogram(
            "lianxin_registry_anchoring_latency_seconds",
            "From a record's acceptance to the anchoring of its batch",
            buckets=ANCHORING_BUCKETS,
            registry=None,
        )
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.database: Database | None = None
        self._cursor: _Cursor | None = None
        self._anchored_batches = 0
        self.registry.register(self)

    def watch_database(self, database: Database) -> None:
        """Read the pipeline from ``database`` when scraped and count its driver errors."""
        self.database = database
        self._cursor = None
        event.listen(database.engine, "handle_error", self._on_database_error)

    def _on_database_error(self, context: ExceptionContext) -> None:
        error = context.sqlalchemy_exception or context.original_exception
        self.database_errors.labels(type(error).__name__).inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request. The series of a (method, route, status) is looked
        up once (prometheus-client's ``labels()`` takes a lock and builds its key on every
        call) and kept."""
        method = method if method in KNOWN_METHODS else "other"
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.request_latency.labels(method, route),
            )
            if len(self._request_series) < MAX_KEPT_SERIES:
                self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_answer(self, path: str, status: int, head: bytes) -> None:
        """Count what the start of an answer's body says: a 401's reason, or the verdicts
        of a verification."""
        if status == 401:
            try:
                code = str(json.loads(head)["error"]["code"])
            except (ValueError, KeyError, TypeError):
                code = "other"
            self.authentication_failures.labels(code if _REASON.fullmatch(code) else "other").inc()
        elif status == 200 and path == VERIFY_PATH:
            verdicts = head.split(b',"facts":', 1)[0]
            for check, verdict in _VERDICT.findall(verdicts):
                self.verdicts.labels(check.decode(), verdict.decode()).inc()

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (reads the database: call off the loop)."""
        return generate_latest(self.registry)

    # -- read at scrape time -------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The pipeline read from the database, then the anchoring latency histogram."""
        database = self.database
        if database is None:
            return
        try:
            with database.read_session() as session:
                families = list(self._pipeline(session))
                self._observe_anchorings(session)
            families.append(
                _counter(
                    "lianxin_registry_batches_anchored",
                    "Batches whose root is anchored",
                    self._anchored_batches,
                )
            )
        except Exception:  # counted by the engine listener; the scrape still answers
            yield _gauge("lianxin_registry_database_up", "Scrape queries answered", 0)
        else:
            yield from families
            yield _gauge("lianxin_registry_database_up", "Scrape queries answered", 1)
        yield from self.anchoring_latency.collect()

    def _pipeline(self, session: Session) -> Iterator[Metric]:
        highest = session.scalar(select(func.max(Record.seq))) or 0
        yield _counter(
            "lianxin_registry_records_accepted", "Records accepted (highest sequence)", highest
        )
        stages = {RecordStatus.ACCEPTED.value: "sealing", RecordStatus.SEALED.value: "anchoring"}
        counts = dict.fromkeys(stages.values(), 0)
        oldest: datetime | None = None
        for status, count, first in session.execute(
            select(Record.status, func.count(), func.min(Record.created_at))
            .where(Record.status.in_(stages))
            .group_by(Record.status)
        ):
            counts[stages[status]] = int(count)
            oldest = first if oldest is None or first < oldest else oldest
        waiting = GaugeMetricFamily(
            "lianxin_registry_records_waiting", "Records not anchored yet", labels=["stage"]
        )
        for stage, count in counts.items():
            waiting.add_metric([stage], count)
        yield waiting
        yield _gauge(
            "lianxin_registry_oldest_waiting_seconds",
            "Age of the oldest record not anchored yet (0 when none waits)",
            0.0 if oldest is None else _age(oldest),
        )
        depth = GaugeMetricFamily(
            "lianxin_registry_outbox_depth",
            "Anchoring transactions not confirmed",
            labels=["state"],
        )
        unconfirmed = dict(
            session.execute(
                select(Outbox.state, func.count())
                .where(Outbox.state != OutboxState.CONFIRMED.value)
                .group_by(Outbox.state)
            ).all()
        )
        for state in (OutboxState.PENDING.value, OutboxState.SENT.value):
            depth.add_metric([state], int(unconfirmed.get(state, 0)))
        yield depth

    def _observe_anchorings(self, session: Session) -> None:
        """Observe the anchoring latency of the records of batches anchored since the last
        scrape, and count them; the first call counts the batches anchored so far (its one
        full count) and places the cursor. The batches table has no index but its id: each
        later scrape reads the ids from the cursor's ``lowest_id`` up only, normally the
        batches sealed since the last scrape."""
        anchored = Batch.status == BatchStatus.ANCHORED.value
        # Read before the batches, so that one confirmed or created meanwhile is either seen
        # by this scrape or at or above the next scrape's lowest id.
        highest = session.scalar(select(func.max(Batch.id))) or 0
        unconfirmed = session.scalar(
            select(func.min(Outbox.batch_id)).where(Outbox.state != OutboxState.CONFIRMED.value)
        )
        lowest = [highest + 1] + ([] if unconfirmed is None else [unconfirmed])
        if self._cursor is None:
            self._anchored_batches = session.scalar(select(func.count()).where(anchored)) or 0
            floor = min(lowest)
            already = session.scalars(select(Batch.id).where(Batch.id >= floor, anchored))
            self._cursor = _Cursor(floor, frozenset(already))
            return
        cursor = self._cursor
        seen, taken, full = set(cursor.seen), 0, False
        for batch_id, anchored_at, leaf_count in session.execute(
            select(Batch.id, Batch.anchored_at, Batch.leaf_count)
            .where(Batch.id >= cursor.lowest_id, anchored)
            .order_by(Batch.id)
        ).all():
            if batch_id in seen or anchored_at is None:
                continue
            # Whole batches, in order: once one is left for the next scrape, so are the rest.
            full = full or (taken > 0 and taken + leaf_count > self.max_records_per_scrape)
            if full:
                lowest.append(batch_id)
                continue
            for (accepted_at,) in session.execute(
                select(Record.created_at).where(Record.batch_id == batch_id)
            ):
                seconds = (anchored_at - accepted_at).total_seconds()
                self.anchoring_latency.observe(max(0.0, seconds))
            taken += leaf_count
            self._anchored_batches += 1
            seen.add(batch_id)
        floor = min(lowest)
        self._cursor = _Cursor(floor, frozenset(i for i in seen if i >= floor))


def _age(moment: datetime) -> float:
    """Seconds since ``moment`` (SQLite gives naive UTC datetimes back)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - aware).total_seconds())


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


# -- HTTP ----------------------------------------------------------------------------------


class RequestMetrics:
    """Outermost middleware: counts and times every HTTP request, refusals at the boundary
    included, under the template of the route that served it (``/v1/records/{record_id}``):
    the router notes the route in the request's scope, and the layers between copy it back
    where they pass a copy of the scope on (:class:`registry.boundary.BoundedRequests`)."""

    def __init__(self, app: ASGIApp, *, metrics: RegistryMetrics) -> None:
        """Wrap ``app``."""
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, then count it (status 500 if no answer started)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        head: bytearray | None = None
        path = str(scope.get("path", ""))
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status, head
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status == 401 or (status == 200 and path == VERIFY_PATH):
                    head = bytearray()
            elif head is not None and message["type"] == "http.response.body":
                head += message.get("body", b"")[: BODY_HEAD_BYTES - len(head)]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            self.metrics.observe_request(
                scope["method"],
                UNMATCHED_ROUTE if route is None else str(getattr(route, "path", UNMATCHED_ROUTE)),
                status,
                time.perf_counter() - started,
            )
            if head is not None:
                self.metrics.observe_answer(path, status, bytes(head))


router = APIRouter(tags=["service"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format, version 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        403: {"description": "the client is not loopback nor an allowed scraper"},
    },
)
async def metrics_exposition(request: Request) -> Response:
    """Prometheus metrics of this registry process and of its anchoring pipeline (see
    :mod:`registry.metrics`), for loopback clients and allowed scrapers only."""
    metrics: RegistryMetrics = request.app.state.metrics
    host = request.client.host if request.client else None
    if not scraper_allowed(host, metrics.allowed_networks):
        raise Forbidden("metrics are served to loopback clients and allowed scrapers only")
    body = await asyncio.to_thread(metrics.exposition)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def install_metrics(app: FastAPI, metrics: RegistryMetrics) -> None:
    """Serve ``GET /metrics`` on ``app`` and observe its requests. Call after every other
    middleware is added: the counting middleware goes outside them all."""
    app.state.metrics = metrics
    app.include_router(router)
    app.add_middleware(RequestMetrics, metrics=metrics)
