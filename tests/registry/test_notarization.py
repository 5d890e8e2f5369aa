"""The registry against a real node process: notarize → anchored → proof bundle verified
offline; verification verdicts; idempotency; and bad requests refused with typed errors and
nothing stored. Runs on SQLite, or on PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_USCC,
    DEPARTMENT_USCC,
    TrustChain,
    free_port,
    new_client,
    record_payload,
    registry_settings,
    row_counts,
    signed,
)

from chain.crypto import PrivateKey, sm3
from registry.app import create_app
from registry.db import Database
from registry.settings import RegistrySettings
from sdk.bundle import Link, VerifiedEvidence, field_hash, verify_bundle
from sdk.chain_reader import ChainReader
from sdk.trust import AsyncTrustClient, RegistryError, TrustClient, Verdict

ANCHOR_TIMEOUT_S = 15.0


@dataclasses.dataclass
class Registry:
    """An in-process registry app (lifespan running) and what tests need around it."""

    http: TestClient
    db: Database
    client_id: str
    key: PrivateKey

    def trust_client(self) -> TrustClient:
        """A TrustClient of the registered test client over the in-process app."""
        return TrustClient("http://testserver", self.client_id, self.key, http_client=self.http)

    @property
    def chain_id(self) -> int:
        """The chain id records are signed for."""
        return int(self.http.app.state.registry.chain.chain_id())  # type: ignore[attr-defined]


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    """The registry app on the shared chain with one registered department client."""
    with TestClient(create_app(settings)) as http:
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        client, key = new_client(db)
        yield Registry(http=http, db=db, client_id=client.id, key=key)


def trusted_chain_facts(trust_chain: TrustChain) -> tuple[object, int, bytes]:
    """The validator set and chain id a verifier learns from the node, and the Notary."""
    with ChainReader(trust_chain.chain.url) as reader:
        return (
            reader.validators(),
            reader.chain_id(),
            bytes.fromhex(trust_chain.addresses["notary"][2:]),
        )


def test_notarized_record_is_anchored_and_its_bundle_verifies_offline(
    registry: Registry, trust_chain: TrustChain
) -> None:
    client = registry.trust_client()
    document = "营业执照 91350100M000100Y43".encode()
    accepted = client.notarize(
        document=document, metadata={"title": "licence"}, fields={"holder": "张三"}
    )
    assert accepted.status == "accepted"
    assert accepted.digest == sm3(document).hex()
    record = client.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S)
    assert record.batch is not None and record.batch["status"] == "anchored"
    bundle = record.bundle
    assert bundle is not None

    validator_set, chain_id, notary = trusted_chain_facts(trust_chain)
    verdict = verify_bundle(
        bundle, validator_set, chain_id=chain_id, expected_digest=sm3(document), notary=notary
    )  # type: ignore[arg-type]
    assert verdict.valid, verdict.failures
    assert [check.link for check in verdict.checks] == list(Link)

    # Selective disclosure: the holder's value and salt reproduce the committed field hash.
    salt = bytes.fromhex(accepted.salts["holder"])
    assert dict(bundle.record.field_hashes)["holder"] == field_hash("holder", "张三", salt)
    # The salts are handed out once: reading the record back does not show them.
    raw = registry.http.get(f"/v1/records/{accepted.record_id}")
    assert raw.status_code == 401
    assert "salts" not in client.get_record(accepted.record_id).__dict__


def test_tampered_bundle_pieces_each_fail(registry: Registry, trust_chain: TrustChain) -> None:
    client = registry.trust_client()
    accepted = client.notarize(digest=sm3(b"tamper me"), metadata={"n": 1})
    bundle = client.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S).bundle
    assert bundle is not None
    validator_set, chain_id, notary = trusted_chain_facts(trust_chain)
    flipped_tx = bytearray(bundle.anchor.raw_transaction)
    flipped_tx[-5] ^= 0x01
    other_key = PrivateKey.generate().public_key.to_bytes()
    tampered = {
        Link.BATCH: dataclasses.replace(
            bundle, record=dataclasses.replace(bundle.record, metadata_hash=sm3(b"other"))
        ),
        Link.TRANSACTION: dataclasses.replace(
            bundle, anchor=dataclasses.replace(bundle.anchor, raw_transaction=bytes(flipped_tx))
        ),
        Link.SIGNER: dataclasses.replace(
            bundle, issuer_key=dataclasses.replace(bundle.issuer_key, public_key=other_key)
        ),
        Link.CERTIFICATE: dataclasses.replace(
            bundle, header=dataclasses.replace(bundle.header, state_root=sm3(b"forged"))
        ),
        Link.ISSUER_KEY: dataclasses.replace(
            bundle,
            issuer_key=dataclasses.replace(
                bundle.issuer_key, valid_from_block=bundle.header.height + 1
            ),
        ),
    }
    # A memory of verified chain halves, primed with the genuine bundle, lets no forgery pass.
    memory = VerifiedEvidence()
    genuine = verify_bundle(
        bundle, validator_set, chain_id=chain_id, notary=notary, verified=memory
    )  # type: ignore[arg-type]
    assert genuine.valid
    for link, forged in tampered.items():
        for verified in (None, memory):
            verdict = verify_bundle(
                forged,
                validator_set,  # type: ignore[arg-type]
                chain_id=chain_id,
                notary=notary,
                verified=verified,
            )
            assert not verdict.valid, link
            assert link in {check.link for check in verdict.failures}, (link, verdict.failures)
    remembered = verify_bundle(
        bundle, validator_set, chain_id=chain_id, notary=notary, verified=memory
    )  # type: ignore[arg-type]
    assert remembered == genuine
    wrong_digest = verify_bundle(
        bundle, validator_set, chain_id=chain_id, expected_digest=sm3(b"x")
    )  # type: ignore[arg-type]
    assert [c.link for c in wrong_digest.failures] == [Link.RECORD]


def test_verify_by_document_gives_separate_verdicts(registry: Registry) -> None:
    client = registry.trust_client()
    document = b"%PDF-1.7 archive record"
    accepted = client.notarize(document=document)
    client.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S)

    verification = client.verify(document=document)
    assert verification.found and verification.record_id == accepted.record_id
    for verdict in (
        verification.integrity,
        verification.issuance,
        verification.status,
        verification.issuer,
    ):
        assert verdict.verdict is Verdict.VALID, verdict
    # The issuer is the department that signed the record; the registry only anchored it.
    assert verification.facts["issuer_uscc"] == CLIENT_USCC
    assert verification.facts["issuer_name"] == CLIENT_DEPARTMENT_NAME
    assert verification.facts["anchored_by_uscc"] == DEPARTMENT_USCC
    assert f"signed by {CLIENT_DEPARTMENT_NAME} ({CLIENT_USCC})" in verification.issuance.detail
    assert verification.bundle is not None

    unknown = client.verify(document=b"never notarized")
    assert not unknown.found
    assert unknown.integrity.verdict is Verdict.INVALID


def test_unreachable_node_gives_unavailable_never_revoked(
    registry: Registry, trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    client = registry.trust_client()
    document = b"verified while the node is away"
    accepted = client.notarize(document=document)
    client.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S)
    pending = client.notarize(document=b"accepted but never anchored")
    registry.http.__exit__(None, None, None)

    dead_node = f"http://127.0.0.1:{free_port()}"
    offline = registry_settings(
        trust_chain,
        tmp_path / "registry",
        database_url,
        node_url=dead_node,
        chain_timeout=0.5,
        run_workers=False,
    )
    with TestClient(create_app(offline)) as http:
        away = TrustClient("http://testserver", registry.client_id, registry.key, http_client=http)
        verification = away.verify(document=document)
        assert verification.integrity.verdict is Verdict.VALID
        # The proof bundle needs no node: issuance is still proven offline.
        assert verification.issuance.verdict is Verdict.VALID
        assert verification.status.verdict is Verdict.UNAVAILABLE
        assert verification.issuer.verdict is Verdict.UNAVAILABLE
        assert "revoked_at_block" not in verification.facts
        waiting = away.verify(digest=pending.digest)
        assert waiting.status.verdict is Verdict.UNAVAILABLE
        assert waiting.issuance.verdict is Verdict.UNAVAILABLE


def test_idempotent_retries_return_the_same_record(registry: Registry) -> None:
    client = registry.trust_client()
    first = client.notarize(digest=sm3(b"a"), metadata={"v": 1}, idempotency_key="order-17")
    again = client.notarize(digest=sm3(b"a"), metadata={"v": 1}, idempotency_key="order-17")
    assert again.record_id == first.record_id and again.salts == first.salts
    with pytest.raises(RegistryError) as conflict:
        client.notarize(digest=sm3(b"b"), metadata={"v": 1}, idempotency_key="order-17")
    assert conflict.value.status_code == 409
    assert conflict.value.code == "idempotency_conflict"
    assert row_counts(registry.db)["records"] == 1


def test_async_client_notarizes_and_verifies(registry: Registry, trust_chain: TrustChain) -> None:
    import asyncio

    import httpx

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=registry.http.app)
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        async with AsyncTrustClient(
            "http://testserver", registry.client_id, registry.key, http_client=http
        ) as client:
            accepted = await client.notarize(document=b"async document")
            deadline = time.monotonic() + ANCHOR_TIMEOUT_S
            while (await client.get_record(accepted.record_id)).status != "anchored":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            verification = await client.verify(document=b"async document")
            assert verification.issuance.verdict is Verdict.VALID

    asyncio.run(scenario())


# -- bad requests --------------------------------------------------------------------------


def _post_record(registry: Registry, headers: dict[str, str], body: bytes) -> dict[str, object]:
    response = registry.http.post("/v1/records", content=body, headers=headers)
    return {**response.json(), "http_status": response.status_code}


PAYLOAD = {"digest": sm3(b"payload").hex(), "metadata": {}}


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_signature", "bad_signature"),
        ("unknown_client", "bad_signature"),
        ("stale_timestamp", "stale_timestamp"),
        ("tampered_body", "bad_signature"),
        ("missing_headers", "missing_credentials"),
    ],
)
def test_unauthenticated_requests_are_refused_and_store_nothing(
    registry: Registry, case: str, code: str
) -> None:
    before = row_counts(registry.db)
    key, client_id, now = registry.key, registry.client_id, None
    if case == "wrong_signature":
        key = PrivateKey.generate()
    elif case == "unknown_client":
        client_id = "0b5c4f7e-0000-4000-8000-000000000000"
    elif case == "stale_timestamp":
        now = time.time() - 3600
    body, headers = signed(key, client_id, "POST", "/v1/records", PAYLOAD, now=now)
    if case == "tampered_body":
        body = body.replace(b'"metadata": {}', b'"metadata": {"x": 1}')
    if case == "missing_headers":
        headers = {"Content-Type": "application/json"}
    answer = _post_record(registry, headers, body)
    assert answer["http_status"] == 401
    assert answer["error"]["code"] == code  # type: ignore[index]
    assert row_counts(registry.db) == before


def test_replayed_nonce_is_refused(registry: Registry) -> None:
    payload = record_payload(registry.key, registry.chain_id, digest=sm3(b"payload"))
    body, headers = signed(registry.key, registry.client_id, "POST", "/v1/records", payload)
    assert _post_record(registry, headers, body)["http_status"] == 202
    # What a request writes (the batcher may seal and anchor the record meanwhile).
    written = ("records", "nonces")
    before = {table: row_counts(registry.db)[table] for table in written}
    replay = _post_record(registry, headers, body)
    assert replay["http_status"] == 401
    assert replay["error"]["code"] == "replayed_nonce"  # type: ignore[index]
    assert {table: row_counts(registry.db)[table] for table in written} == before


def test_a_record_not_signed_by_its_department_is_refused_and_stores_nothing(
    registry: Registry,
) -> None:
    before = row_counts(registry.db)
    good = record_payload(registry.key, registry.chain_id, digest=sm3(b"signed?"), metadata={})
    other_key = record_payload(PrivateKey.generate(), registry.chain_id, digest=sm3(b"signed?"))
    other_chain = record_payload(registry.key, registry.chain_id + 1, digest=sm3(b"signed?"))
    unsigned = {k: v for k, v in good.items() if k != "department_signature"}
    cases = {
        "department_signature_required": [unsigned],
        "bad_department_signature": [
            {**good, "department_signature": other_key["department_signature"]},
            {**good, "department_signature": other_chain["department_signature"]},
            {**good, "metadata": {"changed": True}},
            {**good, "metadata_salt": "00" * 16},
        ],
        "invalid_salt": [{k: v for k, v in good.items() if k != "metadata_salt"}],
    }
    for code, payloads in cases.items():
        for payload in payloads:
            body, headers = signed(registry.key, registry.client_id, "POST", "/v1/records", payload)
            answer = _post_record(registry, headers, body)
            assert answer["http_status"] == 422, payload
            assert answer["error"]["code"] == code  # type: ignore[index]
    assert row_counts(registry.db)["records"] == before["records"]


def test_oversize_upload_is_refused_with_413(registry: Registry) -> None:
    before = row_counts(registry.db)
    big = {"document": base64.b64encode(bytes(100 * 1024)).decode(), "metadata": {}}
    body, headers = signed(registry.key, registry.client_id, "POST", "/v1/records", big)
    answer = _post_record(registry, headers, body)
    assert answer["http_status"] == 413
    assert answer["error"]["code"] == "payload_too_large"  # type: ignore[index]
    assert row_counts(registry.db) == before


def test_unknown_record_and_invalid_input_get_typed_errors(registry: Registry) -> None:
    path = "/v1/records/6f1e8a9c-1111-4222-8333-944455556666"
    _, headers = signed(registry.key, registry.client_id, "GET", path)
    missing = registry.http.get(path, headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "record_not_found"

    before = row_counts(registry.db)
    for payload in (
        {"digest": "zz", "metadata": {}},
        {"metadata": {}},
        {"digest": sm3(b"a").hex(), "document": "YQ=="},
        {"document": "not base64!", "metadata": {}},
    ):
        body, headers = signed(registry.key, registry.client_id, "POST", "/v1/records", payload)
        answer = _post_record(registry, headers, body)
        assert answer["http_status"] == 422, payload
        assert answer["error"]["code"] in {"invalid_request", "invalid_document"}  # type: ignore[index]
    assert row_counts(registry.db)["records"] == before["records"]


def test_openapi_lists_the_endpoints(registry: Registry) -> None:
    schema = registry.http.get("/openapi.json").json()
    assert {"/v1/records", "/v1/records/{record_id}", "/v1/verify"} <= set(schema["paths"])
    assert registry.http.get("/docs").status_code == 200


def test_verify_refuses_bad_bodies_and_replays_and_stores_nothing_for_them(
    registry: Registry,
) -> None:
    before = row_counts(registry.db)
    for payload in ({"digest": "zz"}, {"digest": "ab" * 32, "document": "eA=="}, {}, [1]):
        body, headers = signed(registry.key, registry.client_id, "POST", "/v1/verify", payload)
        answer = registry.http.post("/v1/verify", content=body, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
    body, headers = signed(registry.key, registry.client_id, "POST", "/v1/verify", None)
    assert registry.http.post("/v1/verify", content=b"{", headers=headers).status_code == 401
    assert row_counts(registry.db) == before, "refused requests spend no nonce"
    body, headers = signed(
        registry.key, registry.client_id, "POST", "/v1/verify", {"digest": "cd" * 32}
    )
    first = registry.http.post("/v1/verify", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["found"] is False
    replay = registry.http.post("/v1/verify", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_nonce"
    assert row_counts(registry.db)["nonces"] == before["nonces"] + 1
    client, key = new_client(registry.db, roles=("notarize",))
    body, headers = signed(key, client.id, "POST", "/v1/verify", {"digest": "cd" * 32})
    assert registry.http.post("/v1/verify", content=body, headers=headers).status_code == 403
