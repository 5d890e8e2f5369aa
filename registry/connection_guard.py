"""The registry's HTTP protocol: :mod:`serving.connection_guard`'s bounds with the limits
of :class:`registry.settings.RegistrySettings` (``LIANXIN_REGISTRY_HEADER_TIMEOUT_S``,
``…_BODY_IDLE_TIMEOUT_S``, ``…_BODY_MIN_RATE_BYTES_S``, ``…_MAX_CONNECTIONS_PER_CLIENT``,
``…_MAX_CONNECTIONS``), read from the environment at a process's first connection."""

from __future__ import annotations

from typing import ClassVar

from registry.settings import RegistrySettings
from serving.connection_guard import ConnectionCounts, ConnectionLimits, GuardedHttpToolsProtocol

__all__ = ["RegistryHttpProtocol"]


class RegistryHttpProtocol(GuardedHttpToolsProtocol):
    """The protocol uvicorn serves the registry with (``http=``), in each process."""

    counts: ClassVar[ConnectionCounts] = ConnectionCounts()

    @classmethod
    def load_limits(cls) -> ConnectionLimits:
        """The limits the registry's settings give."""
        settings = RegistrySettings()
        return ConnectionLimits(
            header_timeout_s=settings.header_timeout_s,
            body_idle_timeout_s=settings.body_idle_timeout_s,
            body_min_rate_bytes_s=settings.body_min_rate_bytes_s,
            max_connections_per_client=settings.max_connections_per_client,
            max_connections=settings.max_connections,
        )
