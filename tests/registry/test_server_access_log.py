"""uvicorn's access log is switched off where its log level would drop every line of it
(the default ``warning``), and kept where it prints (``info`` and below)."""

from __future__ import annotations

from typing import Any

import pytest

from registry import server

pytestmark = pytest.mark.no_database


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every ``uvicorn.run`` call ``serve`` makes (none runs)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda *_, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(server, "create_app", lambda _settings: object())
    monkeypatch.setattr(server, "RegistrySettings", lambda: object())
    monkeypatch.setattr(server, "tune_interpreter", lambda: None)
    return calls


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize(
    ("log_level", "access_log"),
    [
        ("warning", False),
        ("WARNING", False),
        ("error", False),
        ("critical", False),
        ("info", True),
        ("debug", True),
        ("trace", True),
    ],
)
def test_the_access_log_is_on_only_where_it_prints(
    runs: list[dict[str, Any]], workers: int, log_level: str, access_log: bool
) -> None:
    server.serve("127.0.0.1", 8600, workers=workers, log_level=log_level)
    assert len(runs) == 1
    assert runs[0]["access_log"] is access_log
    assert runs[0]["log_level"] == log_level
