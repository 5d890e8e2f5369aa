"""Schema-driven fuzzing of the registry's OpenAPI with schemathesis: every operation gets
a fixed, small number of generated requests (valid and invalid by the schema), half of them
signed by a registered department client, sent to the application in process (lifespan
running, on a real node). No answer may be a server error (5xx), except 503 for chain
unavailability, which does not happen here and is therefore refused as well; every JSON
error answer has the registry's error shape."""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_harness import CLIENT_USCC

from chain.crypto import PrivateKey
from registry.app import create_app
from registry.cli import add_client
from registry.settings import RegistrySettings
from sdk.trust import signed_headers

MAX_EXAMPLES = 25
"""Generated requests per operation (kept small for CI)."""


@pytest.fixture
def app_client(settings: RegistrySettings) -> Iterator[tuple[TestClient, str, PrivateKey]]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        db = http.app.state.registry.db  # type: ignore[attr-defined]
        key = PrivateKey.generate()
        client = add_client(
            db,
            name="区行政审批局",
            uscc=CLIENT_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=["notarize", "verify", "licenses"],
        )
        yield http, client.id, key


def _body_bytes(case: Any) -> bytes:
    if case.body is None or not case.media_type:
        return b""
    if "json" in case.media_type:
        return json.dumps(case.body).encode()
    return case.body if isinstance(case.body, bytes) else str(case.body).encode()


def test_no_operation_answers_a_server_error(
    app_client: tuple[TestClient, str, PrivateKey],
) -> None:
    http, client_id, key = app_client
    schema = schemathesis.openapi.from_dict(http.get("/openapi.json").json())
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), sign=st.booleans())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, sign: bool) -> None:
            body = _body_bytes(case)
            headers = {k: str(v) for k, v in (case.headers or {}).items()}
            if case.media_type and body:
                headers["Content-Type"] = case.media_type
            query = urllib.parse.urlencode(case.query or {}, doseq=True)
            path = case.formatted_path
            if sign:
                signed_path = urllib.parse.unquote(path) + (f"?{query}" if query else "")
                headers.update(
                    signed_headers(
                        key,
                        client_id=client_id,
                        method=case.method,
                        path=signed_path,
                        body=body,
                    )
                )
            url = path + (f"?{query}" if query else "")
            response = http.request(case.method, url, content=body, headers=headers)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {url} -> {response.status_code}: {response.text}")
            elif response.status_code >= 400 and response.headers.get(
                "content-type", ""
            ).startswith("application/json"):
                error = response.json().get("error")
                if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
                    failures.append(f"{case.method} {url} -> not the error shape: {response.text}")

        run()

    print("schemathesis statuses:", dict(sorted(statuses.items())))
    assert sum(statuses.values()) >= 10 * MAX_EXAMPLES
    assert not failures, failures[:5]
