"""The explorer is served with the same connection bounds as the registry
(:mod:`serving.connection_guard`, exercised against a real server in
``tests/registry/test_connection_guard.py``), with the limits of its own settings."""

from __future__ import annotations

from typing import Any

import pytest

from explorer import server
from explorer.settings import ExplorerSettings
from serving.connection_guard import ConnectionLimits


def test_serve_gives_uvicorn_the_guarded_protocol_with_the_settings_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: dict[str, Any] = {}
    monkeypatch.setattr(server, "create_app", lambda settings: "app")
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: ran.update(options))
    monkeypatch.setattr(server.ExplorerHttpProtocol, "limits", None)
    settings = ExplorerSettings(
        header_timeout_s=2.5,
        body_idle_timeout_s=4.5,
        body_min_rate_bytes_s=300,
        max_connections_per_client=7,
        max_connections=99,
    )
    assert server.serve(settings) == 0
    assert ran["http"] is server.ExplorerHttpProtocol
    assert server.ExplorerHttpProtocol.process_limits() == ConnectionLimits(
        header_timeout_s=2.5,
        body_idle_timeout_s=4.5,
        body_min_rate_bytes_s=300,
        max_connections_per_client=7,
        max_connections=99,
    )


def test_the_explorer_counts_its_connections_apart_from_the_registry() -> None:
    from registry.connection_guard import RegistryHttpProtocol

    assert server.ExplorerHttpProtocol.counts is not RegistryHttpProtocol.counts


def test_limits_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        ExplorerSettings(header_timeout_s=0)
    with pytest.raises(ValueError):
        ExplorerSettings(max_connections_per_client=0)
    with pytest.raises(ValueError):
        ExplorerSettings(body_idle_timeout_s=0)
    with pytest.raises(ValueError):
        ExplorerSettings(body_min_rate_bytes_s=-1)


def test_a_body_s_pace_defaults_to_the_registry_s() -> None:
    from registry.settings import RegistrySettings

    limits = server.limits_of(ExplorerSettings())
    registry = RegistrySettings()
    assert limits.body_idle_timeout_s == registry.body_idle_timeout_s == 30.0
    assert limits.body_min_rate_bytes_s == registry.body_min_rate_bytes_s == 1_024
