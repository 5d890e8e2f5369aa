"""The request counters: each (method, route, status) series is looked up in the metric's
table once and kept, and what is counted is what was counted before."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import Counter, Histogram

from registry.metrics import MAX_KEPT_SERIES, RegistryMetrics

pytestmark = pytest.mark.no_database


def _sample(metrics: RegistryMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def _count_lookups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    for kind in (Counter, Histogram):
        original = kind.labels

        def counted(self: Any, *values: Any, _original: Any = original, **named: Any) -> Any:
            calls.append(values)
            return _original(self, *values, **named)

        monkeypatch.setattr(kind, "labels", counted)
    return calls


def test_a_request_series_is_looked_up_once_and_counts_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = RegistryMetrics()
    lookups = _count_lookups(monkeypatch)
    for _ in range(5):
        metrics.observe_request("POST", "/v1/data/read", 200, 0.003)
    metrics.observe_request("POST", "/v1/data/read", 401, 0.001)
    metrics.observe_request("BREW", "/v1/data/read", 200, 0.002)
    metrics.observe_request("WHATEVER", "/v1/data/read", 200, 0.002)
    # One lookup of each metric per series: (POST, 200), (POST, 401), (other, 200).
    assert len(lookups) == 6
    assert _sample(
        metrics,
        "lianxin_registry_requests_total",
        method="POST",
        route="/v1/data/read",
        status="200",
    ) == pytest.approx(5)
    assert _sample(
        metrics,
        "lianxin_registry_requests_total",
        method="other",
        route="/v1/data/read",
        status="200",
    ) == pytest.approx(2)
    assert _sample(
        metrics, "lianxin_registry_request_seconds_count", method="POST", route="/v1/data/read"
    ) == pytest.approx(6)
    assert _sample(
        metrics, "lianxin_registry_request_seconds_sum", method="POST", route="/v1/data/read"
    ) == pytest.approx(5 * 0.003 + 0.001)
    assert _sample(
        metrics,
        "lianxin_registry_request_seconds_bucket",
        method="POST",
        route="/v1/data/read",
        le="0.001",
    ) == pytest.approx(1)


def test_series_past_the_kept_number_are_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("registry.metrics.MAX_KEPT_SERIES", 2)
    metrics = RegistryMetrics()
    for status in (200, 201, 202, 202):
        metrics.observe_request("GET", "/x", status, 0.01)
    assert len(metrics._request_series) == 2
    for status, count in ((200, 1), (201, 1), (202, 2)):
        assert _sample(
            metrics, "lianxin_registry_requests_total", method="GET", route="/x", status=str(status)
        ) == pytest.approx(count)
    assert MAX_KEPT_SERIES >= 1_000
