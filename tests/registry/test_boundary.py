"""The registry's outer boundary (registry.boundary) in process: on every route of the
application, a nesting bomb that fits under the size limit and a size bomb (declared and
streamed) are answered 4xx in the registry's error shape, before authentication; bodies
with NaN, Infinity, out-of-range numbers or lone surrogates are refused 422; metadata too
deep or too large is refused 422 at intake and nothing is stored. Runs on SQLite, or on
PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import CLIENT_USCC, row_counts

from chain.crypto import PrivateKey, sm3
from registry.app import create_app
from registry.archives.upload import streams_its_body
from registry.cli import add_client
from registry.db import Database
from registry.limits import MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_REQUEST_JSON_DEPTH
from registry.settings import RegistrySettings
from sdk.canonical import canonical_json
from sdk.trust import TrustClient, signed_headers

DIGEST = sm3(b"boundary").hex()


def assert_error_shape(response: Any, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    if response.request.method == "HEAD":
        return {}  # an answer to HEAD has no body
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return dict(error)


@pytest.fixture
def http(settings: RegistrySettings) -> Iterator[tuple[TestClient, str, PrivateKey]]:
    # Room for metadata past its own limit, which must be refused by the schema.
    roomy = settings.model_copy(update={"max_upload_bytes": 4 * MAX_METADATA_BYTES})
    with TestClient(create_app(roomy), raise_server_exceptions=False) as client:
        db: Database = client.app.state.registry.db  # type: ignore[attr-defined]
        key = PrivateKey.generate()
        row = add_client(
            db,
            name="区行政审批局",
            uscc=CLIENT_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=["notarize", "verify", "licenses"],
        )
        yield client, row.id, key


def every_operation(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route: the operations of the OpenAPI document and the
    routes outside it (the documentation pages), path parameters filled in."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in app.routes:
        found.update((method, route.path) for method in getattr(route, "methods", None) or ())
    operations = sorted((method, re.sub(r"\{[^}]+\}", "x", path)) for method, path in found)
    assert len(operations) >= 20, operations
    return operations


def reaches_its_route_unread(method: str, path: str) -> bool:
    """Whether the boundary hands this route its body unread (an upload streamed to disk)."""
    return streams_its_body({"type": "http", "method": method, "path": path})


def test_every_route_refuses_nesting_and_size_bombs_before_authentication(
    http: tuple[TestClient, str, PrivateKey],
) -> None:
    client, _, _ = http
    limit = client.app.state.registry.settings.max_upload_bytes  # type: ignore[attr-defined]
    nesting_bomb = b"[" * (limit // 2) + b"]" * (limit // 2)
    assert len(nesting_bomb) <= limit
    size_bomb = b"[" + b"0," * limit + b"0]"
    operations = every_operation(client.app)
    uploads = [
        (method, path) for method, path in operations if reaches_its_route_unread(method, path)
    ]
    assert uploads == [("POST", "/v1/archives/uploads")]
    for method, path in uploads:
        # Never read as JSON: an unsigned request is refused before a byte of its body is
        # read, whatever the body (its own cap is checked as it streams to disk).
        for body in (nesting_bomb, size_bomb):
            answer = client.request(method, path, content=body, headers={})
            assert assert_error_shape(answer, 401)["code"] == "missing_credentials"
    for method, path in operations:
        if (method, path) in uploads:
            continue
        for headers in ({"Content-Type": "application/json"}, {}):
            deep = client.request(method, path, content=nesting_bomb, headers=headers)
            error = assert_error_shape(deep, 422)
            if method != "HEAD":
                assert error["code"] == "invalid_json"
                assert error["details"] == {"reason": "too_deep", "limit": MAX_REQUEST_JSON_DEPTH}
        large = client.request(
            method, path, content=size_bomb, headers={"Content-Type": "application/json"}
        )
        assert assert_error_shape(large, 413).get("code", "payload_too_large") == (
            "payload_too_large"
        )
        streamed = client.request(
            method,
            path,
            content=iter([size_bomb[:1000], size_bomb[1000:]]),
            headers={"Content-Type": "application/json"},
        )
        assert assert_error_shape(streamed, 413).get("code", "payload_too_large") == (
            "payload_too_large"
        )


def test_a_bomb_under_another_content_type_is_still_answered_4xx(
    http: tuple[TestClient, str, PrivateKey],
) -> None:
    client, client_id, key = http
    bomb = b"[" * 30_000 + b"]" * 30_000
    for method, path in every_operation(client.app):
        answer = client.request(method, path, content=bomb, headers={"Content-Type": "text/plain"})
        assert answer.status_code < 500, (method, path, answer.text)
        # The body is not read as JSON: each route answers as it would without it (the
        # citizen's page with its HTML "not found").
        if answer.status_code >= 400 and answer.headers["content-type"] == "application/json":
            assert_error_shape(answer)
    # Signed, so that it reaches the parser of the one route that reads any body.
    headers = signed_headers(key, client_id=client_id, method="POST", path="/v1/verify", body=bomb)
    headers["Content-Type"] = "text/plain"
    answer = client.post("/v1/verify", content=bomb, headers=headers)
    assert_error_shape(answer, 422)


def trust_client(http: tuple[TestClient, str, PrivateKey]) -> TrustClient:
    """The SDK's client for the test department, over the in-process application."""
    client, client_id, key = http
    return TrustClient("http://testserver", client_id, key, http_client=client)


def _post_signed(http: tuple[TestClient, str, PrivateKey], path: str, body: bytes) -> Any:
    client, client_id, key = http
    headers = signed_headers(key, client_id=client_id, method="POST", path=path, body=body)
    headers["Content-Type"] = "application/json"
    return client.post(path, content=body, headers=headers)


@pytest.mark.parametrize(
    ("metadata_text", "reason"),
    [
        (b'{"x": NaN}', "non_finite_number"),
        (b'{"x": Infinity}', "non_finite_number"),
        (b'{"x": -Infinity}', "non_finite_number"),
        (b'{"x": 1e400}', "non_finite_number"),
        (b'{"x": "\\ud800"}', "lone_surrogate"),
        (b'{"\\udc00": 1}', "lone_surrogate"),
        (b'{"x": "\xed\xa0\x80"}', "not_utf8"),
        (b'{"x": "\xff"}', "not_utf8"),
        (b'{"x": "a\\u0000b"}', "nul_character"),
        (b'{"\\u0000": 1}', "nul_character"),
        (b'{"x": "\\\\\\u0000"}', "nul_character"),
    ],
)
def test_values_without_a_canonical_form_are_refused_422_and_nothing_is_stored(
    http: tuple[TestClient, str, PrivateKey], metadata_text: bytes, reason: str
) -> None:
    client, _, _ = http
    db: Database = client.app.state.registry.db  # type: ignore[attr-defined]
    before = row_counts(db)
    body = b'{"digest": "' + DIGEST.encode() + b'", "metadata": ' + metadata_text + b"}"
    answer = _post_signed(http, "/v1/records", body)
    error = assert_error_shape(answer, 422)
    assert error["code"] == "invalid_json" and error["details"]["reason"] == reason
    assert row_counts(db) == before
    assert trust_client(http).notarize(digest=DIGEST).status == "accepted"


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep (counting itself)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        (nested(MAX_METADATA_DEPTH + 1), "invalid_request"),
        (nested(5_000), "invalid_json"),
        (nested(9_000), "invalid_json"),
        ({"big": "x" * (MAX_METADATA_BYTES + 1)}, "invalid_request"),
        ({"n": 2**53}, "invalid_request"),
        ({"n": -(2**53)}, "invalid_request"),
    ],
)
def test_metadata_beyond_the_intake_limits_is_refused_and_nothing_is_stored(
    http: tuple[TestClient, str, PrivateKey], metadata: dict[str, Any], code: str
) -> None:
    client, _, _ = http
    db: Database = client.app.state.registry.db  # type: ignore[attr-defined]
    before = row_counts(db)
    text = canonical_json({"digest": DIGEST, "metadata": metadata})
    answer = _post_signed(http, "/v1/records", text)
    assert assert_error_shape(answer, 422)["code"] == code
    bulk = canonical_json({"records": [{"digest": DIGEST, "metadata": metadata}]})
    answer = _post_signed(http, "/v1/records/bulk", bulk)
    assert assert_error_shape(answer, 422)["code"] == code
    assert row_counts(db) == before


def test_metadata_at_the_limits_is_stored_and_read_back(
    http: tuple[TestClient, str, PrivateKey],
) -> None:
    metadata = nested(MAX_METADATA_DEPTH)
    client = trust_client(http)
    accepted = client.notarize(digest=DIGEST, metadata=metadata)
    assert client.get_record(accepted.record_id).metadata == metadata


def test_a_nul_character_in_the_path_or_query_is_refused_on_every_route(
    http: tuple[TestClient, str, PrivateKey],
) -> None:
    """PostgreSQL cannot compare text holding NUL: a search term or id with one reached a
    query and failed there (500). It is refused at the boundary, on every route, and the
    same search without it is answered."""
    client, _, _ = http
    for method, path in every_operation(client.app):
        for url in (f"{path}?q=a%00b", f"{path}?q=%00", path.replace("/x", "/a%00b", 1)):
            if "%00" not in url:
                continue
            answer = client.request(method, url)
            error = assert_error_shape(answer, 422)
            if method != "HEAD":
                assert error["code"] == "invalid_request"
                assert error["details"] == {"reason": "nul_character"}
    assert client.get("/v1/credit/search?q=%E5%B8%82").status_code != 422


def test_a_backslash_before_u0000_is_text_not_a_nul_and_is_accepted(
    http: tuple[TestClient, str, PrivateKey],
) -> None:
    """``"\\\\u0000"`` in JSON is a backslash followed by ``u0000``: six characters, no NUL."""
    accepted = trust_client(http).notarize(digest=DIGEST, metadata={"path": "C:\\u0000"})
    assert accepted.status == "accepted"
