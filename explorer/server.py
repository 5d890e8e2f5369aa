"""Serving the explorer's pages with uvicorn."""

from __future__ import annotations

import uvicorn

from explorer.app import create_app
from explorer.settings import ExplorerSettings


def serve(settings: ExplorerSettings) -> int:
    """Serve until interrupted; returns the exit code."""
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    return 0
