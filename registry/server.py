"""Run the registry as a process: ``python -m registry`` (settings from the environment,
host and port from ``LIANXIN_REGISTRY_HOST`` / ``LIANXIN_REGISTRY_PORT``)."""

from __future__ import annotations

import logging
import os

import uvicorn
from fastapi import FastAPI

from registry.app import create_app
from registry.settings import RegistrySettings


def app_from_environment() -> FastAPI:
    """The application with settings from the environment: what each of several uvicorn
    worker processes builds for itself (``registry start --workers N``)."""
    return create_app(RegistrySettings())


def serve(host: str, port: int, *, workers: int, log_level: str) -> None:
    """Serve the registry with uvicorn until interrupted: in this process, or in
    ``workers`` processes sharing the port (settings from the environment)."""
    if workers == 1:
        uvicorn.run(create_app(RegistrySettings()), host=host, port=port, log_level=log_level)
    else:
        uvicorn.run(
            "registry.server:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=log_level,
        )


def main() -> None:
    """Serve the registry with uvicorn until interrupted."""
    logging.basicConfig(level=os.environ.get("LIANXIN_REGISTRY_LOG_LEVEL", "INFO"))
    host = os.environ.get("LIANXIN_REGISTRY_HOST", "127.0.0.1")
    port = int(os.environ.get("LIANXIN_REGISTRY_PORT", "8600"))
    serve(host, port, workers=RegistrySettings().workers, log_level="warning")


if __name__ == "__main__":
    main()
