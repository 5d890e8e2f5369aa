"""The route index answers every request as the router's full search does (same route,
same status, same path parameters, 405 and 404 alike), tries no route before the one found
once it has learnt a fixed path, forgets what it learnt when the table changes, and is in
front of the registry application's router."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.routing import Match

from registry.app import create_app
from registry.route_index import RouteIndex
from registry.settings import RegistrySettings

pytestmark = pytest.mark.no_database

TRIED: Counter[str] = Counter()
"""How often each counting router was asked whether it matches."""


class _CountingRouter(APIRouter):
    def matches(self, scope: Any) -> tuple[Match, Any]:
        TRIED[str(self.prefix or self.tags[0])] += 1
        return super().matches(scope)


def _app(indexed: bool) -> tuple[FastAPI, RouteIndex | None]:
    app = FastAPI()
    first = APIRouter(tags=["first"])
    second = APIRouter(tags=["second"])
    third = APIRouter(tags=["third"])

    @first.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"route": "item", "id": item_id}

    @first.post("/same")
    async def same_first() -> dict[str, Any]:
        return {"route": "same-first"}

    @second.get("/same")
    async def same_second() -> dict[str, Any]:
        # GET /same: the first router's route only partly matches (method), this one fully.
        return {"route": "same-second"}

    @second.post("/items/fixed")
    async def fixed_post() -> dict[str, Any]:
        return {"route": "fixed-post"}

    @third.post("/read")
    async def read(request: Request) -> dict[str, Any]:
        return {"route": "read", "router": request.scope["router"] is app.router}

    @third.get("/items/fixed")
    async def fixed_get() -> dict[str, Any]:
        # Never reached: GET /items/fixed is /items/{item_id} of the first router (422).
        return {"route": "fixed-get"}

    for router in (first, second, third):
        app.include_router(router)
    return app, (RouteIndex.install(app.router) if indexed else None)


REQUESTS = [
    ("POST", "/read"),
    ("GET", "/same"),
    ("POST", "/same"),
    ("PUT", "/same"),
    ("GET", "/items/7"),
    ("GET", "/items/fixed"),
    ("POST", "/items/fixed"),
    ("DELETE", "/read"),
    ("GET", "/nowhere"),
    ("GET", "/read/"),
]


def _answers(app: FastAPI) -> list[tuple[int, Any]]:
    with TestClient(app) as http:
        return [
            (response.status_code, response.json() if response.content else None)
            for response in (
                http.request(method, path, follow_redirects=False)
                for _ in range(3)
                for method, path in REQUESTS
            )
        ]


def test_every_request_is_answered_as_the_full_search_answers_it() -> None:
    plain, _ = _app(indexed=False)
    indexed, index = _app(indexed=True)
    assert index is not None
    expected = _answers(plain)
    assert _answers(indexed) == expected
    assert (200, {"route": "read", "router": True}) in expected
    # Learnt: the fixed paths that a route serves, and only those.
    learnt = set(index._index)
    assert ("POST", "/read") in learnt and ("GET", "/same") in learnt
    assert ("GET", "/items/7") not in learnt and ("GET", "/nowhere") not in learnt
    assert ("PUT", "/same") not in learnt and ("DELETE", "/read") not in learnt


def test_a_learnt_path_tries_no_route_before_its_own() -> None:
    app = FastAPI()
    early = _CountingRouter(prefix="/early")
    late = APIRouter()

    @early.get("/x")
    async def early_x() -> str:
        return "early"

    @late.post("/read")
    async def read() -> str:
        return "late"

    app.include_router(early)
    app.include_router(late)
    index = RouteIndex.install(app.router)
    assert index is not None
    with TestClient(app) as http:
        TRIED.clear()
        assert http.post("/read").json() == "late"
        assert TRIED["/early"] > 0  # the full search, the first time
        TRIED.clear()
        for _ in range(5):
            assert http.post("/read").json() == "late"
        assert TRIED["/early"] == 0
        assert http.get("/early/x").json() == "early"
        # A changed table is learnt again from the full search.
        extra = APIRouter()

        @extra.post("/read")
        async def shadowing() -> str:
            return "inserted first"

        app.router.routes.insert(0, extra.routes[0])
        assert http.post("/read").json() == "inserted first"
        assert http.post("/read").json() == "inserted first"


def test_the_registry_router_dispatches_through_the_index(tmp_path: Any) -> None:
    app = create_app(RegistrySettings(data_dir=tmp_path))
    assert isinstance(app.router.middleware_stack, RouteIndex)


def test_a_router_with_middleware_of_its_own_is_left_alone() -> None:
    app = FastAPI()
    app.router.middleware_stack = lambda scope, receive, send: None  # type: ignore[assignment]
    assert RouteIndex.install(app.router) is None
