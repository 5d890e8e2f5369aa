"""The registry's own ASGI layers, driven with raw ASGI calls: the boundary drops the Host
header where configured, and the request metrics count each request under the template of
the route the router chose for it, even when the boundary passed a copy of the scope on and
even when the route raised."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from registry.boundary import BoundedRequests
from registry.metrics import UNMATCHED_ROUTE, RegistryMetrics, RequestMetrics

pytestmark = pytest.mark.no_database

TEMPLATE = "/v1/things/{thing_id}"


class FakeRouter:
    """Notes the route in the scope it gets, as Starlette's router does, then answers 200,
    answers 404 without a route, or raises."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.headers: list[tuple[bytes, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.headers = list(scope["headers"])
        message = await receive()
        assert message["body"] == b'{"a": 1}'
        if self.outcome == "unmatched":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        scope["route"] = SimpleNamespace(path=TEMPLATE)
        if self.outcome == "raise":
            raise RuntimeError("the route failed")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def drive(app: Any) -> list[Message]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/things/7",
        "query_string": b"",
        "headers": [
            (b"host", b"evil.example"),
            (b"content-type", b"application/json"),
            (b"content-length", b"8"),
        ],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b'{"a": 1}', "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def count(metrics: RegistryMetrics, route: str, status: int) -> float:
    value = metrics.registry.get_sample_value(
        "lianxin_registry_requests_total",
        {"method": "POST", "route": route, "status": str(status)},
    )
    return value or 0.0


@pytest.mark.parametrize("drop_host", [True, False])
@pytest.mark.parametrize(
    ("outcome", "route", "status"),
    [("answer", TEMPLATE, 200), ("raise", TEMPLATE, 500), ("unmatched", UNMATCHED_ROUTE, 404)],
)
def test_requests_are_counted_under_the_route_the_router_chose(
    drop_host: bool, outcome: str, route: str, status: int
) -> None:
    router = FakeRouter(outcome)
    metrics = RegistryMetrics()
    app = RequestMetrics(
        BoundedRequests(router, max_body_bytes=1024, server_address_as_host=drop_host),
        metrics=metrics,
    )
    if outcome == "raise":
        with pytest.raises(RuntimeError):
            drive(app)
    else:
        assert drive(app)[0]["status"] == status
    assert count(metrics, route, status) == 1
    assert ((b"host", b"evil.example") in router.headers) is not drop_host
    assert (b"content-length", b"8") in router.headers


def test_a_refusal_at_the_boundary_is_counted_unmatched() -> None:
    router = FakeRouter("answer")
    metrics = RegistryMetrics()
    app = RequestMetrics(
        BoundedRequests(router, max_body_bytes=4, server_address_as_host=True), metrics=metrics
    )
    assert drive(app)[0]["status"] == 413
    assert router.headers == []
    assert count(metrics, UNMATCHED_ROUTE, 413) == 1
