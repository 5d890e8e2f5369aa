"""Run the registry as a process: ``python -m registry`` (settings from the environment,
host and port from ``LIANXIN_REGISTRY_HOST`` / ``LIANXIN_REGISTRY_PORT``)."""

from __future__ import annotations

import gc
import logging
import os
import sys

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOG_LEVELS

from chain.crypto.backend import log_backend_choice
from chain.limits import cap_recursion_limit
from registry.app import create_app
from registry.connection_guard import RegistryHttpProtocol
from registry.settings import RegistrySettings

GC_THRESHOLDS = (20_000, 20, 20)
"""Collect the youngest generation every 20,000 net allocations instead of 700: a request
allocates a few thousand objects, and the default made the collector run several times
per request and, now and then, a full collection over every cached bundle mid-request."""


THREAD_SWITCH_INTERVAL_S = 0.0005
"""How long one thread may hold the GIL while another waits for it (CPython's default is
5 ms). A gated read's group is committed by the access writer thread, which lets go of the
GIL at every SQLite statement, its WAL sync and the registry's SM2 signature, about ten
times per group, and must take it back from the event loop each time: with the default,
each take waits up to 5 ms while the loop answers other requests, and a group of a few
reads took several times its own work (the same convoy the node's block producer had, see
``node.producer.THREAD_SWITCH_INTERVAL_S``). At 0.5 ms each wait is a tenth as long, for a
few more thread switches."""


WORKER_HEALTHCHECK_TIMEOUT_S = 60
"""How long uvicorn's supervisor waits for a worker process to answer its health check
(uvicorn's default is 5 s) before it kills and restarts it. A worker still importing on a
busy machine takes longer than 5 s, and was then killed over and over, never serving."""


def logs_access(log_level: str) -> bool:
    """Whether uvicorn at ``log_level`` would print its access log (lines at INFO). When it
    would not, the access log is switched off, not only silenced: silenced, uvicorn still
    formats each request's client address and path for a line that is then dropped."""
    return LOG_LEVELS.get(log_level.lower(), logging.INFO) <= logging.INFO


def tune_interpreter() -> None:
    """Set this server process's interpreter up for request traffic: objects alive at start
    (modules, the application) are moved out of the collector's sight and collections are
    rarer; threads waiting for the GIL get it within :data:`THREAD_SWITCH_INTERVAL_S`. The
    recursion limit is brought back to what py-evm needs, whatever an import set."""
    cap_recursion_limit()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(THREAD_SWITCH_INTERVAL_S)


def app_from_environment() -> FastAPI:
    """The application with settings from the environment: what each of several uvicorn
    worker processes builds for itself (``registry start --workers N``)."""
    app = create_app(RegistrySettings())
    tune_interpreter()
    return app


def serve(host: str, port: int, *, workers: int, log_level: str) -> None:
    """Serve the registry with uvicorn until interrupted: in this process, or in
    ``workers`` processes sharing the port (settings from the environment). Connections are
    bounded by :class:`registry.connection_guard.RegistryHttpProtocol`, in each process
    on its own connections."""
    log_backend_choice(logging.getLogger("lianxin.registry"))
    if workers == 1:
        app = create_app(RegistrySettings())
        tune_interpreter()
        uvicorn.run(
            app,
            host=host,
            port=port,
            http=RegistryHttpProtocol,
            log_level=log_level,
            access_log=logs_access(log_level),
        )
    else:
        uvicorn.run(
            "registry.server:app_from_environment",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
            host=host,
            port=port,
            http=RegistryHttpProtocol,
            log_level=log_level,
            access_log=logs_access(log_level),
        )


def main() -> None:
    """Serve the registry with uvicorn until interrupted."""
    logging.basicConfig(level=os.environ.get("LIANXIN_REGISTRY_LOG_LEVEL", "INFO"))
    host = os.environ.get("LIANXIN_REGISTRY_HOST", "127.0.0.1")
    port = int(os.environ.get("LIANXIN_REGISTRY_PORT", "8600"))
    serve(host, port, workers=RegistrySettings().workers, log_level="warning")


if __name__ == "__main__":
    main()
