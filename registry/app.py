"""The registry's FastAPI application. ``create_app(settings)`` builds it; the database
engine, the chain gateway, the request writer (group commit, :mod:`registry.intake`) and the
background workers are created in the lifespan (at startup), never at import.

Exactly one process per database runs the batcher, the anchorer and the nonce purge: the
one holding the workers lease (:mod:`registry.lease`). Any number of API processes may
serve the same database (``registry start --workers N``); the others serve requests and
take the lease over when its holder dies. ``run_workers = false`` keeps a process out of
the race altogether."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import Scope

from registry.archives.scheduler import run_scheduled_audits
from registry.archives.upload import streams_its_body
from registry.auth import ClientDirectory
from registry.batcher import Workers
from registry.boundary import BoundedRequests
from registry.chain_gateway import ChainGateway
from registry.credit.credit_version import WaitlessVersionReader
from registry.credit.import_upload import streams_credit_import
from registry.db import CHECKPOINT_INTERVAL_S, Database
from registry.deps import RegistryState
from registry.errors import install_error_handlers
from registry.housekeeping import run_checkpoints, run_nonce_purge
from registry.intake import GroupCommitter
from registry.lease import WorkersLease, workers_lease
from registry.metrics import RegistryMetrics, install_metrics
from registry.notarization import VerifyCaches
from registry.openapi import install_api_docs
from registry.revocations import RevocationIndex, run_revocation_index
from registry.route_index import RouteIndex
from registry.routers import (
    archives,
    audit_trails,
    authorizations,
    credit,
    credit_checks,
    credit_pages,
    data_gateway,
    licenses,
    records,
    service,
    verify,
    verify_page,
)
from registry.settings import RegistrySettings
from registry.threads import start_threads

logger = logging.getLogger(__name__)

ROUTERS = (
    service.router,
    records.router,
    verify.router,
    licenses.router,
    verify_page.router,
    credit.router,
    credit_checks.router,
    credit_pages.router,
    authorizations.router,
    data_gateway.router,
    archives.router,
    audit_trails.router,
)
"""The API's routers; e-licenses and other resources add theirs here."""


LEASE_RETRY_S = 2.0
"""How often a process without the workers lease tries to take it."""


async def run_workers_when_leased(
    db: Database, gateway: ChainGateway, settings: RegistrySettings, lease: WorkersLease
) -> None:
    """Wait for the workers lease (see :mod:`registry.lease`), then run the batcher, the
    anchorer and the nonce purge until cancelled; the lease is given back at the end."""
    waiting_logged = False
    while True:
        try:
            if await asyncio.to_thread(lease.try_acquire):
                break
        except Exception:
            logger.exception("taking the workers lease failed; trying again")
        if not waiting_logged:
            logger.info("another process runs the batcher and anchorer; serving requests only")
            waiting_logged = True
        await asyncio.sleep(LEASE_RETRY_S)
    logger.info("process %d runs the batcher, the anchorer and the nonce purge", os.getpid())
    workers = Workers(
        db, gateway, batch_interval=settings.batch_interval, batch_size=settings.batch_size
    )
    try:
        await asyncio.gather(
            workers.run_batcher(),
            workers.run_anchorer(),
            run_nonce_purge(db, settings.nonce_purge_interval),
            run_scheduled_audits(db, gateway, settings),
        )
    finally:
        await asyncio.to_thread(lease.release)


def _streamed(scope: Scope) -> bool:
    """The requests whose routes stream their bodies to disk and bound them themselves: a
    bag upload, and a credit import that declares its SM3."""
    return streams_its_body(scope) or streams_credit_import(scope)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry application for ``settings`` (from the environment if omitted)."""
    settings = settings or RegistrySettings()
    metrics = RegistryMetrics(settings.metrics_allowed_networks or ())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.check_secret_files()
        await asyncio.to_thread(start_threads)
        db = await asyncio.to_thread(Database.open, settings)
        metrics.watch_database(db)
        # The public pages read the credit version from the event loop through it; its
        # connections live with their threads, and the loop's outlives the application.
        credit_versions = app.state.credit_version_reader = WaitlessVersionReader(db)
        gateway = ChainGateway(settings, db)
        intake = GroupCommitter(db)
        state = RegistryState(
            settings=settings,
            db=db,
            chain=gateway,
            intake=intake,
            clients=ClientDirectory(db),
            caches=VerifyCaches(),
        )
        app.state.registry = state
        intake.start()
        state.workers.append(
            asyncio.create_task(
                run_checkpoints(db, CHECKPOINT_INTERVAL_S), name="registry-checkpoints"
            )
        )
        state.caches.revocations = RevocationIndex(gateway)
        state.workers.append(
            asyncio.create_task(
                run_revocation_index(state.caches.revocations), name="registry-revocations"
            )
        )
        if settings.run_workers:
            lease = workers_lease(db.engine)
            state.workers.append(
                asyncio.create_task(
                    run_workers_when_leased(db, gateway, settings, lease), name="registry-lease"
                )
            )
        try:
            yield
        finally:
            for task in state.workers:
                task.cancel()
            for task in state.workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(intake.stop)
            gateway.close()
            credit_versions.close_all()
            db.close()

    app = FastAPI(
        title="lianxin registry",
        summary="Notarize and verify records on the lianxin chain",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # No OpenTelemetry here (the registry's metrics are its own, registry.metrics): off,
        # FastAPI would look up the global providers for every request to find that out.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_api_docs(app)
    install_error_handlers(app)
    # Added last, so it runs first: nothing parses a body it has not bounded. Without a
    # public base URL, links and QR codes name the address the server listens on, not the
    # Host header a caller sent: the boundary drops it.
    app.add_middleware(
        BoundedRequests,
        max_body_bytes=settings.max_upload_bytes,
        passes_unread=_streamed,
        server_address_as_host=settings.public_base_url is None,
    )
    for router in ROUTERS:
        app.include_router(router)
    # The fixed paths (a gated read, a verification) find their route directly, not after
    # trying the routes before it one by one.
    RouteIndex.install(app.router)
    # After every other middleware: requests are counted outside them all (refusals at the
    # boundary too).
    install_metrics(app, metrics)
    return app
