"""Serving the explorer's pages with uvicorn, each connection bounded as the registry's are
(:mod:`serving.connection_guard`: a request head deadline, a request body's least pace,
connections per client address and in all)."""

from __future__ import annotations

from typing import ClassVar

import uvicorn

from explorer.app import create_app
from explorer.settings import ExplorerSettings
from serving.connection_guard import ConnectionCounts, ConnectionLimits, GuardedHttpToolsProtocol


class ExplorerHttpProtocol(GuardedHttpToolsProtocol):
    """The protocol uvicorn serves the explorer with; :func:`serve` sets its limits."""

    counts: ClassVar[ConnectionCounts] = ConnectionCounts()

    @classmethod
    def load_limits(cls) -> ConnectionLimits:
        """The defaults of :class:`ExplorerSettings` (:func:`serve` sets the limits of the
        settings it is given before the first connection)."""
        return limits_of(ExplorerSettings())


def limits_of(settings: ExplorerSettings) -> ConnectionLimits:
    """The connection limits ``settings`` give."""
    return ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_idle_timeout_s=settings.body_idle_timeout_s,
        body_min_rate_bytes_s=settings.body_min_rate_bytes_s,
        max_connections_per_client=settings.max_connections_per_client,
        max_connections=settings.max_connections,
    )


def serve(settings: ExplorerSettings) -> int:
    """Serve until interrupted; returns the exit code."""
    ExplorerHttpProtocol.limits = limits_of(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=ExplorerHttpProtocol,
    )
    return 0
