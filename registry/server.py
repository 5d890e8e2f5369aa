"""Run the registry as a process: ``python -m registry`` (settings from the environment,
host and port from ``LIANXIN_REGISTRY_HOST`` / ``LIANXIN_REGISTRY_PORT``)."""

from __future__ import annotations

import logging
import os

import uvicorn

from registry.app import create_app
from registry.settings import RegistrySettings


def main() -> None:
    """Serve the registry with uvicorn until interrupted."""
    logging.basicConfig(level=os.environ.get("LIANXIN_REGISTRY_LOG_LEVEL", "INFO"))
    host = os.environ.get("LIANXIN_REGISTRY_HOST", "127.0.0.1")
    port = int(os.environ.get("LIANXIN_REGISTRY_PORT", "8600"))
    uvicorn.run(create_app(RegistrySettings()), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
