"""Bulk notarization with ``notarize_many``: each item is the body a single notarization
sends, the record count is checked before anything is sent, and against the registry app
(in-process, no chain node: records are accepted, not sealed) the answers come back in
request order, replays and lost answers reuse one Idempotency-Key, and refusals are typed."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from chain.crypto import PrivateKey, sm3
from registry.app import create_app
from registry.cli import add_client
from registry.db import Database
from registry.models import Record
from registry.settings import RegistrySettings
from sdk.trust import (
    CLIENT_HEADER,
    IDEMPOTENCY_HEADER,
    MAX_BULK_RECORDS,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AsyncTrustClient,
    RegistryError,
    TrustClient,
    request_sign_bytes,
)

BULK_PATH = "/v1/records/bulk"
UNREACHABLE_NODE = "http://127.0.0.1:9"
"""No node listens here: notarization only stores records, it never needs the chain."""
CLIENT_USCC = "11100000000013338W"
"""The department of the test client (a published valid USCC)."""
CHAIN_ID = 20261126
"""The chain id records are signed for (recorded in the registry: no node is asked)."""
SIGNED_ONLY = ("metadata_salt", "field_salts", "department_signature")
"""What each record's body carries beyond the record itself: salts and signature."""

RECORDS: list[dict[str, Any]] = [
    {"digest": sm3(b"first record").hex(), "metadata": {"title": "first"}},
    {"document": "营业执照 第二份".encode(), "metadata": {"title": "second"}},
    {"digest": sm3(b"third record"), "fields": {"holder": "张三", "number": "A-3"}},
]
"""One record of each form notarize takes: hex digest, document, digest bytes with fields."""


def expected_digest(record: dict[str, Any]) -> str:
    """The hex SM3 digest the registry reports for ``record``."""
    if "document" in record:
        return sm3(record["document"]).hex()
    digest = record["digest"]
    return digest.hex() if isinstance(digest, bytes) else str(digest)


# -- without a registry ----------------------------------------------------------------------

KEY = PrivateKey.from_bytes(sm3(b"trust bulk test key"))
CLIENT_ID = "6a0c2d1e-7f00-4c55-9e21-000000000002"


def accepted_json(body: dict[str, Any], index: int) -> dict[str, Any]:
    """A RecordAccepted object for one record of a request body."""
    digest = body.get("digest") or sm3(base64.b64decode(body["document"])).hex()
    return {
        "id": f"00000000-0000-4000-8000-{index:012d}",
        "status": "accepted",
        "digest": digest,
        "metadata_hash": sm3(b"{}").hex(),
        "field_hashes": {},
        "salts": {},
        "created_at": "2026-01-01T00:00:00Z",
    }


def recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    """A registry stand-in that checks each request's signature, records it, and accepts
    its record or records."""

    def handler(request: httpx.Request) -> httpx.Response:
        message = request_sign_bytes(
            method=request.method,
            path=request.url.raw_path.decode(),
            client_id=request.headers[CLIENT_HEADER],
            timestamp=request.headers[TIMESTAMP_HEADER],
            nonce=request.headers[NONCE_HEADER],
            body=request.content,
        )
        KEY.public_key.verify(base64.b64decode(request.headers[SIGNATURE_HEADER]), message)
        seen.append(request)
        body = json.loads(request.content)
        if request.url.path == BULK_PATH:
            answers = [accepted_json(item, i) for i, item in enumerate(body["records"])]
            return httpx.Response(202, json={"records": answers})
        return httpx.Response(202, json=accepted_json(body, 0))

    return httpx.MockTransport(handler)


def test_bulk_items_are_the_single_notarization_bodies() -> None:
    seen: list[httpx.Request] = []
    client = TrustClient(
        "http://registry", CLIENT_ID, KEY, transport=recording_transport(seen), chain_id=CHAIN_ID
    )
    for record in RECORDS:
        client.notarize(**record)
    results = client.notarize_many(RECORDS)

    *singles, bulk = seen
    assert bulk.method == "POST" and bulk.url.path == BULK_PATH
    # The same bodies, each salted and signed under its own idempotency key.
    assert [_unsigned(item) for item in json.loads(bulk.content)["records"]] == [
        _unsigned(json.loads(s.content)) for s in singles
    ]
    assert bulk.headers[IDEMPOTENCY_HEADER]
    assert [result.digest for result in results] == [expected_digest(r) for r in RECORDS]


def _unsigned(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name not in SIGNED_ONLY}


@pytest.mark.parametrize("count", [0, MAX_BULK_RECORDS + 1])
def test_a_record_count_outside_the_limit_is_refused_before_sending(count: int) -> None:
    seen: list[httpx.Request] = []
    client = TrustClient(
        "http://registry", CLIENT_ID, KEY, transport=recording_transport(seen), chain_id=CHAIN_ID
    )
    with pytest.raises(ValueError, match=str(MAX_BULK_RECORDS)):
        client.notarize_many([RECORDS[0]] * count)
    assert seen == []


@pytest.mark.parametrize(
    ("record", "complaint"),
    [
        ({"digest": sm3(b"x").hex(), "title": "not an argument"}, "unknown record keys"),
        ({"digest": sm3(b"x").hex(), "document": b"x"}, "exactly one of digest and document"),
        ({"metadata": {"title": "neither"}}, "exactly one of digest and document"),
    ],
)
def test_a_malformed_record_is_refused_with_its_index(
    record: dict[str, Any], complaint: str
) -> None:
    seen: list[httpx.Request] = []
    client = TrustClient(
        "http://registry", CLIENT_ID, KEY, transport=recording_transport(seen), chain_id=CHAIN_ID
    )
    with pytest.raises(ValueError, match=f"record 1: .*{complaint}"):
        client.notarize_many([RECORDS[0], record])
    assert seen == []


# -- against the registry app ----------------------------------------------------------------


@dataclass
class Registry:
    """An in-process registry app (lifespan running) and one registered department client."""

    http: TestClient
    db: Database
    client_id: str
    key: PrivateKey

    def trust_client(self, transport: httpx.BaseTransport | None = None) -> TrustClient:
        """A TrustClient of the test client over the app, or over ``transport``."""
        if transport is None:
            return TrustClient("http://testserver", self.client_id, self.key, http_client=self.http)
        return TrustClient(
            "http://testserver",
            self.client_id,
            self.key,
            transport=transport,
            backoff=0,
            chain_id=CHAIN_ID,
        )

    def record_count(self) -> int:
        """Records stored."""
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(Record)) or 0)


@contextmanager
def running_registry(
    data_dir: Path, roles: tuple[str, ...] = ("notarize", "verify"), **overrides: Any
) -> Iterator[Registry]:
    """The registry app on a fresh SQLite database, without workers or chain node, and a
    client with ``roles``; ``overrides`` go to the settings."""
    settings = RegistrySettings(
        data_dir=data_dir,
        node_url=UNREACHABLE_NODE,
        run_workers=False,
        chain_timeout=0.5,
        **overrides,
    )
    with TestClient(create_app(settings)) as http:
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        key = PrivateKey.generate()
        client = add_client(
            db,
            name="区行政审批局",
            uscc=CLIENT_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=list(roles),
        )
        # What bootstrap records: the chain id records are signed for.
        http.app.state.registry.chain.record("chain_id", str(CHAIN_ID))  # type: ignore[attr-defined]
        yield Registry(http=http, db=db, client_id=client.id, key=key)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry app with a client that may notarize."""
    with running_registry(tmp_path) as running:
        yield running


def forwarding_transport(
    http: TestClient, on_answer: Callable[[httpx.Request, httpx.Response], None]
) -> httpx.MockTransport:
    """A transport that hands each request to the app, then shows ``on_answer`` the answer
    (which may raise, as a connection lost after the app answered)."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = http.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.content,
            headers=dict(request.headers),
        )
        on_answer(request, answer)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(handler)


def test_notarize_many_answers_each_record_in_request_order(registry: Registry) -> None:
    client = registry.trust_client()
    results = client.notarize_many(RECORDS)

    assert [result.digest for result in results] == [expected_digest(r) for r in RECORDS]
    assert {result.status for result in results} == {"accepted"}
    assert len({result.record_id for result in results}) == len(RECORDS)
    # Fields become salted hashes whose salts come back once, as for a single record.
    assert set(results[2].salts) == set(results[2].field_hashes) == {"holder", "number"}
    for record, result in zip(RECORDS, results, strict=True):
        stored = client.get_record(result.record_id)
        assert stored.digest == result.digest
        assert dict(stored.metadata) == record.get("metadata", {})
    assert registry.record_count() == len(RECORDS)


def test_a_replay_under_the_same_key_answers_the_same_records(registry: Registry) -> None:
    client = registry.trust_client()
    first = client.notarize_many(RECORDS, idempotency_key="upload-2026-01-01")
    again = client.notarize_many(RECORDS, idempotency_key="upload-2026-01-01")
    assert again == first
    with pytest.raises(RegistryError) as conflict:
        client.notarize_many(RECORDS[:2], idempotency_key="upload-2026-01-01")
    assert (conflict.value.status_code, conflict.value.code) == (409, "idempotency_conflict")
    assert registry.record_count() == len(RECORDS)


def test_a_lost_answer_is_retried_under_the_same_key(registry: Registry) -> None:
    attempts: list[httpx.Request] = []
    statuses: list[int] = []

    def lose_the_first_answer(request: httpx.Request, answer: httpx.Response) -> None:
        attempts.append(request)
        statuses.append(answer.status_code)
        if len(attempts) == 1:
            raise httpx.ReadError("connection lost after the registry answered", request=request)

    transport = forwarding_transport(registry.http, lose_the_first_answer)
    results = registry.trust_client(transport).notarize_many(RECORDS)

    assert statuses == [202, 200]
    assert len({request.headers[IDEMPOTENCY_HEADER] for request in attempts}) == 1
    assert len({request.headers[NONCE_HEADER] for request in attempts}) == 2
    assert len({request.content for request in attempts}) == 1
    assert [result.digest for result in results] == [expected_digest(r) for r in RECORDS]
    assert registry.record_count() == len(RECORDS)


REFUSALS: dict[str, tuple[tuple[str, ...], dict[str, Any], list[dict[str, Any]], int]] = {
    "without the notarize role": (("verify",), {}, RECORDS, 403),
    "more records than the registry allows": (("notarize",), {"max_bulk_records": 2}, RECORDS, 413),
    "one invalid record": (
        ("notarize",),
        {},
        [RECORDS[0], {"digest": sm3(b"x").hex(), "fields": {"": "a field without a name"}}],
        422,
    ),
}
"""Client roles, registry settings and records of a refused request, and its HTTP status."""


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_request_stores_none_of_its_records(tmp_path: Path, case: str) -> None:
    roles, overrides, records, status_code = REFUSALS[case]
    with running_registry(tmp_path, roles=roles, **overrides) as registry:
        with pytest.raises(RegistryError) as refused:
            registry.trust_client().notarize_many(records)
        assert refused.value.status_code == status_code
        assert registry.record_count() == 0


def test_async_client_notarizes_many(registry: Registry) -> None:
    async def scenario() -> list[str]:
        transport = httpx.ASGITransport(app=registry.http.app)
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        async with AsyncTrustClient(
            "http://testserver", registry.client_id, registry.key, http_client=http
        ) as client:
            results = await client.notarize_many(RECORDS)
            stored = [await client.get_record(result.record_id) for result in results]
            return [record.digest for record in stored]

    assert asyncio.run(scenario()) == [expected_digest(r) for r in RECORDS]
