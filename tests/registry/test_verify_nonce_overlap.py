"""``POST /v1/verify`` writes its answer while the request's nonce is being committed, and
sends it only once the nonce is stored: a replayed nonce, a nonce the registry could not
store and a client without the verify role get their refusal, never the answer."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import new_client

from chain.crypto import sm3
from registry.app import create_app
from registry.errors import ServiceUnavailable
from registry.intake import NonceClaim
from registry.routers import verify as verify_router
from registry.settings import RegistrySettings
from sdk.trust import signed_headers

WAIT_S = 10.0
"""Longest a test waits for the other half of a request."""


class Scene:
    """The registry app, a client of each kind, and what the route did."""

    def __init__(self, http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.http = http
        self.state = http.app.state.registry  # type: ignore[attr-defined]
        self.verifier, self.verifier_key = new_client(self.state.db, ("verify",))
        self.notary, self.notary_key = new_client(self.state.db, ("notarize",))
        self.verifying = threading.Event()
        """Set once the verification has begun."""
        self.verifications = 0
        real = verify_router.verify_text

        def observed(*args: Any) -> bytes:
            self.verifications += 1
            self.verifying.set()
            return real(*args)

        monkeypatch.setattr(verify_router, "verify_text", observed)

    def headers(self, body: bytes, *, verifier: bool = True) -> dict[str, str]:
        """Signed headers of a ``POST /v1/verify`` with ``body``."""
        client, key = (
            (self.verifier, self.verifier_key) if verifier else (self.notary, self.notary_key)
        )
        headers = signed_headers(
            key, client_id=client.id, method="POST", path="/v1/verify", body=body
        )
        headers["Content-Type"] = "application/json"
        return headers


@pytest.fixture
def scene(settings: RegistrySettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    with TestClient(create_app(settings)) as http:
        yield Scene(http, monkeypatch)


def _body() -> bytes:
    return json.dumps({"digest": sm3(b"never notarized").hex()}).encode()


def test_the_answer_is_written_while_the_nonce_is_committed(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_spend = scene.state.intake.spend_nonce
    seen: list[bool] = []

    async def slow_spend(claim: NonceClaim) -> None:
        # As if the group commit waited for the disk: the verification goes on meanwhile.
        seen.append(await asyncio.to_thread(scene.verifying.wait, WAIT_S))
        await real_spend(claim)

    monkeypatch.setattr(scene.state.intake, "spend_nonce", slow_spend)
    body = _body()
    answer = scene.http.post("/v1/verify", content=body, headers=scene.headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["found"] is False
    assert seen == [True], "the verification waited for the nonce commit"


def test_a_replayed_nonce_gets_its_refusal_not_the_answer(scene: Scene) -> None:
    body = _body()
    headers = scene.headers(body)
    assert scene.http.post("/v1/verify", content=body, headers=headers).status_code == 200
    replay = scene.http.post("/v1/verify", content=body, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"
    assert "found" not in replay.json()


def test_a_nonce_not_stored_gets_503_not_the_answer(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_spend(claim: NonceClaim) -> None:
        await asyncio.to_thread(scene.verifying.wait, WAIT_S)
        raise ServiceUnavailable("the registry is not accepting writes", code="stopping")

    monkeypatch.setattr(scene.state.intake, "spend_nonce", failing_spend)
    body = _body()
    answer = scene.http.post("/v1/verify", content=body, headers=scene.headers(body))
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "stopping"
    assert scene.verifications == 1


def test_a_client_without_the_role_spends_its_nonce_and_verifies_nothing(scene: Scene) -> None:
    body = _body()
    headers = scene.headers(body, verifier=False)
    refused = scene.http.post("/v1/verify", content=body, headers=headers)
    assert refused.status_code == 403
    replay = scene.http.post("/v1/verify", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_nonce"
    assert scene.verifications == 0
