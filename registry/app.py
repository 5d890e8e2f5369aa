"""The registry's FastAPI application. ``create_app(settings)`` builds it; the database
engine, the chain gateway, the request writer (group commit, :mod:`registry.intake`) and the
background workers are created in the lifespan (at startup), never at import.

One process per database runs the batcher and anchorer (``run_workers``): sealing takes the
oldest accepted records and the outbox is driven by one anchorer, so the server runs as ONE
uvicorn worker process. A second process on the same database must set ``run_workers`` to
false."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from registry.auth import ClientDirectory
from registry.batcher import Workers
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.deps import RegistryState
from registry.errors import install_error_handlers
from registry.intake import GroupCommitter
from registry.limits import BodySizeLimit
from registry.notarization import VerifyCaches
from registry.routers import licenses, records, verify, verify_page
from registry.settings import RegistrySettings

logger = logging.getLogger(__name__)

ROUTERS = (records.router, verify.router, licenses.router, verify_page.router)
"""The API's routers; e-licenses and other resources add theirs here."""


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry application for ``settings`` (from the environment if omitted)."""
    settings = settings or RegistrySettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await asyncio.to_thread(Database.open, settings)
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
        if settings.run_workers:
            workers = Workers(
                db,
                gateway,
                batch_interval=settings.batch_interval,
                batch_size=settings.batch_size,
            )
            state.workers = [
                asyncio.create_task(workers.run_batcher(), name="registry-batcher"),
                asyncio.create_task(workers.run_anchorer(), name="registry-anchorer"),
            ]
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
            db.close()

    app = FastAPI(
        title="lianxin registry",
        summary="Notarize and verify records on the lianxin chain",
        version="1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    for router in ROUTERS:
        app.include_router(router)
    return app
