"""An OpenAPI document a department can integrate from: the security scheme names the four
X-Lianxin-* headers and the sign-bytes recipe with a worked example that verifies; an
operation requires it exactly when an unsigned request to it is answered 401; every error
status of every operation has the registry's real error body (no FastAPI default); the
documentation pages and their assets come from the package itself; GET /v1 lists the API,
/healthz and /readyz report on the process, the database, the node and the backlog."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import free_port, signed
from test_licenses import Registry, make_registry

from chain.crypto import PrivateKey, PublicKey, sm3
from registry.app import create_app
from registry.openapi import STATIC_DIR, signing_example
from registry.settings import RegistrySettings
from sdk.trust_core import (
    CLIENT_HEADER,
    NONCE_HEADER,
    REQUEST_SIGN_PREFIX,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_sign_bytes,
)

ROOT = Path(__file__).resolve().parents[2]
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    yield from make_registry(settings)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_the_worked_signing_example_verifies() -> None:
    example = signing_example()
    body = example["body"].encode()
    assert sm3(body).hex() == example["body_sm3"]
    message = request_sign_bytes(
        method=example["method"],
        path=example["path"],
        client_id=example["client_id"],
        timestamp=example["timestamp"],
        nonce=example["nonce"],
        body=body,
    )
    assert message.hex() == example["sign_bytes_hex"]
    assert message.startswith(REQUEST_SIGN_PREFIX)
    public_key = PublicKey.from_pem(example["public_key_pem"].encode())
    public_key.verify(base64.b64decode(example["signature_base64"]), message)
    private_key = PrivateKey.from_pem(example["private_key_pem"].encode())
    assert private_key.public_key == public_key


def test_the_security_scheme_describes_the_headers_and_the_sign_bytes(
    registry: Registry,
) -> None:
    document = registry.http.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert {scheme["name"] for scheme in schemes.values()} == {
        CLIENT_HEADER,
        TIMESTAMP_HEADER,
        NONCE_HEADER,
        SIGNATURE_HEADER,
    }
    assert all(s["type"] == "apiKey" and s["in"] == "header" for s in schemes.values())
    description = document["info"]["description"]
    example = signing_example()
    assert "lianxin/registry-request/v1\\x00" in description
    for value in ("client_id", "nonce", "body_sm3", "signature_base64"):
        assert example[value] in description
    assert "distid:1234567812345678" in description


def test_an_operation_requires_the_scheme_exactly_when_it_answers_401_unsigned(
    registry: Registry,
) -> None:
    document = registry.http.get("/openapi.json").json()
    requirement = {name: [] for name in document["components"]["securitySchemes"]}
    signed_operations = 0
    for method, path, operation in operations(document):
        url = re.sub(r"\{[^}]+\}", "x", path)
        content = b"{}" if "requestBody" in operation else b""
        answer = registry.http.request(
            method, url, content=content, headers={"Content-Type": "application/json"}
        )
        if answer.status_code == 401:
            assert operation["security"] == [requirement], (method, path)
            signed_operations += 1
        else:
            assert operation["security"] == [], (method, path, answer.status_code)
    assert signed_operations >= 10


def test_every_error_status_has_the_registry_error_body(registry: Registry) -> None:
    document = registry.http.get("/openapi.json").json()
    text = json.dumps(document)
    assert "HTTPValidationError" not in text and '"ValidationError"' not in text
    error = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["properties"]) == {"code", "message", "details"}
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert {"422", "500"} <= set(responses), (method, path)
        if "requestBody" in operation:
            assert "413" in responses, (method, path)
        for status, response in responses.items():
            if int(status) < 400:
                continue
            content = response["content"]
            if "text/html" in content:
                assert path.startswith("/v/") and status not in ("413", "422", "500")
            elif path == "/readyz" and status == "503":
                assert content["application/json"]["schema"]["$ref"].endswith("/Readiness")
            else:
                assert content == {"application/json": {"schema": ERROR_REF}}, (path, status)
    # And what the API really answers has that shape: a schema error, for one.
    body, headers = signed(registry.key, registry.client_id, "POST", "/v1/records", {"x": 1})
    answer = registry.http.post("/v1/records", content=body, headers=headers)
    assert answer.status_code == 422
    assert set(answer.json()["error"]) == {"code", "message", "details"}


def test_docs_pages_load_only_assets_the_package_serves(registry: Registry) -> None:
    manifest = json.loads((STATIC_DIR / "assets.json").read_text())
    pins = json.loads((ROOT / "package.json").read_text())["dependencies"]
    for name, entry in manifest.items():
        assert pins[entry["package"]] == entry["version"], name
        served = registry.http.get(f"/static/{name}")
        assert served.status_code == 200, name
        assert hashlib.sha256(served.content).hexdigest() == entry["sha256"], name
        installed = ROOT / "node_modules" / entry["package"] / entry["source"]
        if installed.exists():  # after `npm install`: the copy is the pinned package's
            assert installed.read_bytes() == served.content, name
    for page in ("/docs", "/redoc"):
        html = registry.http.get(page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert sources, page
        assert all(source.startswith("/") for source in sources), (page, sources)
        assert "http://" not in html and "https://" not in html, page


def test_the_index_lists_the_api(registry: Registry) -> None:
    index = registry.http.get("/v1")
    assert index.status_code == 200
    value = index.json()
    document = registry.http.get("/openapi.json").json()
    listed = {(item["method"], item["path"]) for item in value["operations"]}
    assert listed == {(method, path) for method, path, _ in operations(document)}
    assert {"openapi", "docs", "redoc", "healthz", "readyz"} <= set(value["links"])
    for name in ("openapi", "docs", "redoc", "healthz", "signing_example"):
        assert registry.http.get(value["links"][name]).status_code == 200, name


def test_health_and_readiness(registry: Registry) -> None:
    assert registry.http.get("/healthz").json() == {"status": "ok"}
    ready = registry.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    value = ready.json()
    assert value["ready"] and value["database"]["ok"] and value["node"]["ok"]
    assert value["node"]["detail"].startswith("block ")
    backlog = value["backlog"]
    assert set(backlog) == {"records_waiting", "oldest_waiting_seconds", "transactions_unconfirmed"}
    assert backlog["records_waiting"] >= 0


def test_readiness_reports_a_node_that_is_away(settings: RegistrySettings) -> None:
    away = settings.model_copy(update={"node_url": f"http://127.0.0.1:{free_port()}"})
    with TestClient(create_app(away)) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 503
        value = ready.json()
        assert not value["ready"] and not value["node"]["ok"] and value["database"]["ok"]
        assert http.get("/healthz").status_code == 200
