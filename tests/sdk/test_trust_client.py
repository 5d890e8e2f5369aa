"""TrustClient without a registry: every request carries a verifiable SM2 signature over
the canonical request bytes, retries keep the idempotency key and renew the nonce, and
errors come back typed."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from chain.crypto import PrivateKey, sm3
from chain.errors import CryptoError
from sdk.bundle import department_record_commitment, department_sign_bytes, salted_metadata_hash
from sdk.record_calls import SIGNING_PATH
from sdk.trust import (
    CLIENT_HEADER,
    IDEMPOTENCY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AsyncTrustClient,
    RegistryError,
    RegistryUnavailable,
    TrustClient,
    request_sign_bytes,
)

KEY = PrivateKey.from_bytes(sm3(b"trust client test key"))
CLIENT_ID = "6a0c2d1e-7f00-4c55-9e21-000000000001"
ACCEPTED = {
    "id": "0d7c3b2a-1111-4222-8333-444455556666",
    "status": "accepted",
    "digest": sm3(b"doc").hex(),
    "metadata_hash": sm3(b"{}").hex(),
    "field_hashes": {},
    "salts": {},
    "created_at": "2026-01-01T00:00:00Z",
}


def check_signature(request: httpx.Request) -> None:
    """Assert that ``request`` is signed as the registry expects."""
    path = request.url.raw_path.decode()
    message = request_sign_bytes(
        method=request.method,
        path=path,
        client_id=request.headers[CLIENT_HEADER],
        timestamp=request.headers[TIMESTAMP_HEADER],
        nonce=request.headers[NONCE_HEADER],
        body=request.content,
    )
    KEY.public_key.verify(base64.b64decode(request.headers[SIGNATURE_HEADER]), message)


def test_requests_are_signed_over_the_canonical_bytes() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        check_signature(request)
        seen.append(request)
        return httpx.Response(202, json=ACCEPTED)

    client = TrustClient(
        "http://registry", CLIENT_ID, KEY, transport=httpx.MockTransport(handler), chain_id=7
    )
    result = client.notarize(document=b"doc", metadata={"a": 1})
    assert result.record_id == ACCEPTED["id"]
    body = json.loads(seen[0].content)
    assert body["document"] == base64.b64encode(b"doc").decode()
    assert body["metadata"] == {"a": 1}


def test_retries_keep_the_idempotency_key_and_renew_the_nonce() -> None:
    attempts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        check_signature(request)
        attempts.append(request)
        if len(attempts) == 1:
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": ""}})
        if len(attempts) == 2:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(202, json=ACCEPTED)

    client = TrustClient(
        "http://registry",
        CLIENT_ID,
        KEY,
        transport=httpx.MockTransport(handler),
        backoff=0,
        chain_id=7,
    )
    client.notarize(digest=sm3(b"doc"))
    assert len(attempts) == 3
    assert len({r.headers[IDEMPOTENCY_HEADER] for r in attempts}) == 1
    assert len({r.headers[NONCE_HEADER] for r in attempts}) == 3
    assert len({r.content for r in attempts}) == 1


def test_errors_are_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            409, json={"error": {"code": "idempotency_conflict", "message": "other body"}}
        )

    client = TrustClient(
        "http://registry", CLIENT_ID, KEY, transport=httpx.MockTransport(handler), chain_id=7
    )
    with pytest.raises(RegistryError) as caught:
        client.notarize(digest=sm3(b"doc"), idempotency_key="k")
    assert (caught.value.status_code, caught.value.code) == (409, "idempotency_conflict")


def test_an_unreachable_registry_raises_unavailable_after_the_retries() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("down", request=request)

    client = TrustClient(
        "http://registry",
        CLIENT_ID,
        KEY,
        transport=httpx.MockTransport(handler),
        backoff=0,
        chain_id=7,
    )
    with pytest.raises(RegistryUnavailable):
        client.get_record(ACCEPTED["id"])
    assert calls == client.retries + 1


def test_exactly_one_of_digest_and_document() -> None:
    client = TrustClient("http://registry", CLIENT_ID, KEY)
    with pytest.raises(ValueError):
        client.notarize()
    with pytest.raises(ValueError):
        client.verify(digest=sm3(b"a"), document=b"a")


def test_async_client_signs_and_retries() -> None:
    attempts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        check_signature(request)
        attempts.append(request)
        if len(attempts) == 1:
            return httpx.Response(502)
        return httpx.Response(202, json=ACCEPTED)

    async def scenario() -> None:
        async with AsyncTrustClient(
            "http://registry",
            CLIENT_ID,
            KEY,
            transport=httpx.MockTransport(handler),
            backoff=0,
            chain_id=7,
        ) as client:
            result = await client.notarize(digest=sm3(b"doc"), idempotency_key="retry-me")
            assert result.record_id == ACCEPTED["id"]

    asyncio.run(scenario())
    assert [r.headers[IDEMPOTENCY_HEADER] for r in attempts] == ["retry-me", "retry-me"]


def test_notarize_signs_the_salted_commitment_for_the_chain_it_asked_for_once() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        check_signature(request)
        seen.append(request)
        if request.url.path == SIGNING_PATH:
            return httpx.Response(200, json={"chainId": 41, "commitmentScheme": 2})
        return httpx.Response(202, json=ACCEPTED)

    client = TrustClient("http://registry", CLIENT_ID, KEY, transport=httpx.MockTransport(handler))
    first = client.notarize(digest=sm3(b"doc"), metadata={"holder_id": "X"}, idempotency_key="a")
    client.notarize(digest=sm3(b"doc"), metadata={"holder_id": "X"}, idempotency_key="a")
    client.notarize(digest=sm3(b"doc"), metadata={"holder_id": "X"}, idempotency_key="b")
    assert [r.url.path for r in seen] == [SIGNING_PATH] + ["/v1/records"] * 3
    bodies = [json.loads(r.content) for r in seen[1:]]
    # The same key derives the same salts; another key other salts (128 bits each).
    assert bodies[0]["metadata_salt"] == bodies[1]["metadata_salt"] != bodies[2]["metadata_salt"]
    assert len(bytes.fromhex(bodies[0]["metadata_salt"])) == 16
    assert first.metadata_salt == bodies[0]["metadata_salt"]
    salted = salted_metadata_hash({"holder_id": "X"}, bytes.fromhex(first.metadata_salt))
    commitment = department_record_commitment(KEY.public_key.to_bytes(), sm3(b"doc"), salted, [])
    signature = base64.b64decode(bodies[0]["department_signature"])
    KEY.public_key.verify(signature, department_sign_bytes(41, commitment))
    with pytest.raises(CryptoError):
        KEY.public_key.verify(signature, department_sign_bytes(42, commitment))
