"""Routes whose handlers take the request as it is and answer with a response of their own
are called directly, without FastAPI's dependency solving; every other route is served as
before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from registry_harness import free_port

from registry.app import create_app
from registry.deps import DirectRoute, answers_itself
from registry.settings import RegistrySettings


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose dependencies FastAPI solved."""
    import fastapi.routing

    calls: list[str] = []
    real = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["request"].url.path)
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


def _app() -> FastAPI:
    router = APIRouter(route_class=DirectRoute)

    @router.post("/direct")
    @answers_itself
    async def direct(request: Request) -> Response:
        return JSONResponse({"body": (await request.body()).decode()}, status_code=201)

    @router.post("/wrong")
    @answers_itself
    async def wrong(request: Request) -> Any:
        return {"not": "a response"}

    @router.get("/with-query")
    @answers_itself
    async def with_query(request: Request, q: int) -> Response:
        return JSONResponse({"q": q})

    @router.get("/unmarked")
    async def unmarked(request: Request) -> dict[str, str]:
        return {"path": request.url.path}

    app = FastAPI()
    app.include_router(router)
    return app


def test_a_marked_request_only_handler_is_called_directly(solved: list[str]) -> None:
    with TestClient(_app()) as http:
        answer = http.post("/direct", content=b"hello")
        assert (answer.status_code, answer.json()) == (201, {"body": "hello"})
        assert solved == []
        assert http.get("/with-query", params={"q": "7"}).json() == {"q": 7}
        assert http.get("/with-query", params={"q": "x"}).status_code == 422
        assert http.get("/unmarked").json() == {"path": "/unmarked"}
        assert solved == ["/with-query", "/with-query", "/unmarked"]


def test_a_direct_handler_that_does_not_answer_a_response_fails() -> None:
    with TestClient(_app()) as http, pytest.raises(TypeError, match="answered dict"):
        http.post("/wrong")


def test_gated_reads_are_called_directly_and_still_refuse_unsigned_requests(
    tmp_path: Path, solved: list[str]
) -> None:
    settings = RegistrySettings(
        data_dir=tmp_path / "registry",
        node_url=f"http://127.0.0.1:{free_port()}",
        run_workers=False,
    )
    with TestClient(create_app(settings)) as http:
        for path in ("/v1/data/read", "/v1/data/file"):
            answer = http.post(path, json={"authorization_id": "x"})
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "missing_credentials"
        assert solved == []
        assert http.get("/v1/credit/search", params={"q": ""}).status_code == 422
        assert solved == ["/v1/credit/search"]
