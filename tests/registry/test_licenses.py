"""E-licenses through the registry's HTTP API against a real node process: issue with a
holder commitment on chain, the lifecycle (suspend, resume, change, revoke), department
authorisation, QR codes, dynamic tokens, the citizen's verify page, UNAVAILABLE when the
node is away, and bad input refused with typed errors and nothing stored. Runs on SQLite,
or on PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import (
    CLIENT_KEY,
    CLIENT_USCC,
    TrustChain,
    decoded_qr,
    free_port,
    registry_settings,
    sign_license_body,
    signed,
)
from sqlalchemy import func, select, text

from chain.crypto import PrivateKey
from contracts.trust import LicenseStatus, Reason, holder_commitment
from registry.app import create_app
from registry.cli import add_client
from registry.data_vault import mask_identifier
from registry.db import Database
from registry.license_service import LicenseService
from registry.licenses import issue_token
from registry.models import License
from registry.settings import RegistrySettings
from sdk.identifiers import make_license_identifier
from sdk.license_status_signing import StatusAction, sign_status_change
from sdk.trust import AsyncTrustClient, RegistryError, TrustClient, Verdict

TYPE_CODE = CLIENT_USCC + "032"
"""A license type code defined by the test clients' department."""
OTHER_USCC = "91350100M000100Y43"
"""Another department."""
HOLDER_USCC = "91350100M000100Y43"
HOLDER_RESIDENT_ID = "11010519491231002X"
PAGE_LIMIT_BYTES = 50 * 1024

TABLES = ("licenses", "license_operations", "nonces")


def new_identifier(version: str = "001", serial: str | None = None) -> str:
    """A fresh valid identifier of the test department."""
    serial = serial or secrets.token_hex(6).upper()
    return make_license_identifier(TYPE_CODE, CLIENT_USCC, serial, version)


def wrong_check_identifier() -> str:
    """A fresh identifier whose check character is wrong (always a different character)."""
    valid = new_identifier()
    return valid[:-1] + ("1" if valid.endswith("0") else "0")


def license_request(identifier: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid issue request body."""
    body: dict[str, Any] = {
        "identifier": identifier or new_identifier(),
        "license_name": "食品经营许可证",
        "holder_name": "福建示例科技有限公司",
        "holder_id_type": "uscc",
        "holder_id": HOLDER_USCC,
        "issuer_name": "区行政审批局",
        "issue_date": "2024-03-15",
        "valid_from": "2024-03-15",
        "valid_until": "2099-03-14",
        "license_number": "JY13501000012345",
        "content": [{"name": "经营项目", "value": "预包装食品销售"}],
    }
    body.update(overrides)
    return body


def counts(db: Database) -> dict[str, int]:
    """Rows of the tables a license request could write to."""
    with db.session() as session:
        return {
            table: int(session.scalar(select(func.count()).select_from(text(table))) or 0)
            for table in TABLES
        }


@dataclasses.dataclass
class Registry:
    """An in-process registry with a licensing client of the test department."""

    http: TestClient
    db: Database
    client_id: str
    key: PrivateKey

    def trust_client(self) -> TrustClient:
        return TrustClient("http://testserver", self.client_id, self.key, http_client=self.http)

    def other_department(self) -> TrustClient:
        key = PrivateKey.generate()
        client = add_client(
            self.db,
            name="另一部门",
            uscc=OTHER_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=["licenses", "verify"],
        )
        return TrustClient("http://testserver", client.id, key, http_client=self.http)

    def post(self, path: str, payload: Any, **headers: str) -> Any:
        """A signed request; an issue or change body is first salted and signed by the
        department (:func:`sign_license_body`), as the registry requires."""
        if path == "/v1/licenses":
            payload = self.sign_license(payload, headers.get("Idempotency-Key"))
        elif path.endswith("/change") and isinstance(payload, dict):
            predecessor = path.split("/")[3]
            signed_license = self.sign_license(
                payload["license"], headers.get("Idempotency-Key"), predecessor
            )
            payload = {**payload, "license": signed_license}
        elif path.rsplit("/", 1)[-1] in {action.function for action in StatusAction}:
            payload = self.sign_status(path, payload)
        return self.post_as_is(path, payload, **headers)

    def chain_id(self) -> int:
        return int(self.http.get("/v1/records/signing").json()["chainId"])

    def get(self, path: str) -> Any:
        """A signed GET."""
        _, signed_headers = signed(self.key, self.client_id, "GET", path)
        return self.http.get(path, headers=signed_headers)

    def sign_status(self, path: str, payload: Any) -> Any:
        """``payload`` of a status change, signed by the department for the license's next
        history position (1 for a license the registry does not know)."""
        _, _, _, identifier, action = path.split("/")
        read = self.get(f"/v1/licenses/{identifier}")
        sequence = len(read.json()["chain"]["history"]) if read.status_code == 200 else 1
        return sign_status_change(
            self.key,
            self.chain_id(),
            identifier,
            StatusAction.named(action),
            int(payload["reason"]),
            sequence,
        ).body

    def post_as_is(self, path: str, payload: Any, **headers: str) -> Any:
        """A signed request with ``payload`` as it is."""
        body, signed_headers = signed(self.key, self.client_id, "POST", path, payload)
        return self.http.post(path, content=body, headers=signed_headers | headers)

    def sign_license(
        self, payload: Any, idempotency_key: str | None, predecessor: str | None = None
    ) -> Any:
        return sign_license_body(
            self.key, self.chain_id(), payload, idempotency_key or secrets.token_hex(8), predecessor
        )


def make_registry(settings: RegistrySettings) -> Iterator[Registry]:
    with TestClient(create_app(settings)) as http:
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        # The test department's key, registered in IssuerRegistry: the verify page checks
        # its signature there.
        key = CLIENT_KEY
        client = add_client(
            db,
            name="区行政审批局",
            uscc=CLIENT_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=["licenses", "verify"],
        )
        yield Registry(http=http, db=db, client_id=client.id, key=key)


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    yield from make_registry(settings)


def page(registry: Registry, key: str, lang: str | None = None) -> Any:
    path = f"/v/{key}" + ("" if lang is None else f"?lang={lang}")
    response = registry.http.get(path)
    assert len(response.content) < PAGE_LIMIT_BYTES
    return response


def test_issue_puts_only_a_holder_commitment_on_chain_and_the_page_says_valid(
    registry: Registry,
) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    assert issued.operation is not None and issued.operation.confirmed
    assert issued.recorded_status == "issued" and issued.block_number is not None

    status = client.license_status(issued.identifier)
    assert status.chain is not None and status.chain.verdict is Verdict.VALID
    assert status.chain.status is LicenseStatus.ISSUED
    assert [entry.status for entry in status.chain.history] == [LicenseStatus.ISSUED]
    # Shown masked, even to the issuing department.
    assert status.metadata is not None and status.metadata["holder_id"] == mask_identifier(
        HOLDER_USCC
    )

    # The chain holds SM3(salt || holder id), never the identifier itself; the registry
    # opens the sealed identifier and salt with its own key.
    with registry.db.session() as session:
        row = session.get_one(License, issued.identifier)
        session.expunge(row)
    service = LicenseService(registry.db, registry.http.app.state.registry.chain)  # type: ignore[attr-defined]
    holder_id, salt = service.holder_secrets(row)
    assert holder_id == HOLDER_USCC
    assert holder_commitment(salt, HOLDER_USCC).hex() == status.holder_commitment
    assert HOLDER_USCC not in status.holder_commitment

    response = page(registry, issued.identifier)
    assert response.status_code == 200
    assert "有效" in response.text and "食品经营许可证" in response.text
    assert f"#{issued.block_number}" in response.text
    assert response.headers["cache-control"] == "public, max-age=30"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    english = page(registry, issued.identifier, "en")
    assert "Valid" in english.text and 'lang="en"' in english.text


def test_lifecycle_suspend_resume_change_revoke(registry: Registry) -> None:
    client = registry.trust_client()
    first = client.issue_license(license_request(license_request()["identifier"]))
    suspended = client.suspend_license(first.identifier, reason=Reason.UNDER_INVESTIGATION)
    assert suspended.recorded_status == "suspended"
    assert "暂停" in page(registry, first.identifier).text

    client.resume_license(first.identifier)
    assert "有效" in page(registry, first.identifier).text

    serial = first.identifier.split(".")[7]
    second_id = new_identifier("002", serial)
    second = client.change_license(
        first.identifier, license_request(second_id, holder_name="福建示例科技股份有限公司")
    )
    assert second.identifier == second_id and second.predecessor == first.identifier
    old_page = page(registry, first.identifier)
    assert "已变更" in old_page.text and f'href="/v/{second_id}"' in old_page.text

    revoked = client.revoke_license(second_id, reason=Reason.LEGAL_DECISION)
    assert revoked.recorded_status == "revoked"
    revoked_page = page(registry, second_id)
    assert "已撤销" in revoked_page.text and "依据行政决定或司法裁判" in revoked_page.text
    history = client.license_status(second_id).chain
    assert history is not None and history.verdict is Verdict.INVALID
    assert [(e.status, e.reason) for e in history.history] == [
        (LicenseStatus.ISSUED, 0),
        (LicenseStatus.REVOKED, Reason.LEGAL_DECISION),
    ]

    before = counts(registry.db)
    with pytest.raises(RegistryError) as refused:
        client.resume_license(second_id)
    assert (refused.value.status_code, refused.value.code) == (409, "invalid_transition")
    after = counts(registry.db)
    assert after["licenses"] == before["licenses"]
    assert after["license_operations"] == before["license_operations"]


def test_only_the_issuing_department_may_act(registry: Registry) -> None:
    issued = registry.trust_client().issue_license(license_request())
    other = registry.other_department()
    before = counts(registry.db)
    for act in (
        lambda: other.revoke_license(issued.identifier, reason=Reason.ISSUED_IN_ERROR),
        lambda: other.suspend_license(issued.identifier),
        lambda: other.license_token(issued.identifier),
        lambda: other.issue_license(license_request()),  # identifier of another department
    ):
        with pytest.raises(RegistryError) as refused:
            act()
        assert refused.value.status_code == 403, refused.value
    after = counts(registry.db)
    assert (after["licenses"], after["license_operations"]) == (
        before["licenses"],
        before["license_operations"],
    )
    # Reading is allowed, without the holder's data.
    seen = other.license_status(issued.identifier)
    assert seen.metadata is not None and "holder_id" not in seen.metadata


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"identifier": wrong_check_identifier()}, "invalid_license_identifier"),
        ({"identifier": "1.2.156.3005.2.not-an-identifier"}, "invalid_license_identifier"),
        ({"holder_id": "91350100M000100Y44"}, "invalid_uscc"),
        (
            {"holder_id_type": "resident_id", "holder_id": HOLDER_RESIDENT_ID[:-1] + "1"},
            "invalid_resident_id",
        ),
        ({"valid_until": "2020-01-01", "valid_from": "2019-01-01"}, "already_expired"),
        ({"valid_until": "2024-01-01"}, "invalid_metadata"),
    ],
)
def test_invalid_identifiers_are_refused_and_nothing_is_stored(
    registry: Registry, overrides: dict[str, Any], code: str
) -> None:
    body = license_request()
    body.update(overrides)
    before = counts(registry.db)
    response = registry.post("/v1/licenses", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    after = counts(registry.db)
    assert after["licenses"] == before["licenses"] == 0
    assert after["license_operations"] == 0


def test_idempotent_retries_replays_and_bad_requests(registry: Registry) -> None:
    body = license_request()
    first = registry.post("/v1/licenses", body, **{"Idempotency-Key": "issue-1"})
    assert first.status_code == 201, first.text
    again = registry.post("/v1/licenses", body, **{"Idempotency-Key": "issue-1"})
    assert again.status_code == 200
    assert again.json()["operation"]["id"] == first.json()["operation"]["id"]
    other_body = registry.post("/v1/licenses", license_request(), **{"Idempotency-Key": "issue-1"})
    assert other_body.status_code == 409
    assert other_body.json()["error"]["code"] == "idempotency_conflict"
    duplicate = registry.post("/v1/licenses", body)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "license_exists"
    before = counts(registry.db)

    path = f"/v1/licenses/{body['identifier']}/revoke"
    revocation = registry.sign_status(path, {"reason": 1})
    payload, headers = signed(registry.key, registry.client_id, "POST", path, revocation)
    bad_signature = dict(headers, **{"X-Lianxin-Signature": headers["X-Lianxin-Signature"][:-4]})
    assert registry.http.post(path, content=payload, headers=bad_signature).status_code == 401
    wrong_key = PrivateKey.generate()
    _, forged = signed(wrong_key, registry.client_id, "POST", path, revocation)
    response = registry.http.post(path, content=payload, headers=forged)
    assert response.json()["error"]["code"] == "bad_signature"
    oversize = registry.post("/v1/licenses", license_request(license_number="x" * 70_000))
    assert oversize.status_code == 413
    unknown = new_identifier()
    assert registry.post(f"/v1/licenses/{unknown}/revoke", {"reason": 1}).status_code == 404
    assert registry.http.get(f"/v1/licenses/{unknown}/qr.png").status_code == 404
    after = counts(registry.db)
    # Signed, well-formed requests use up their nonce; nothing else is stored.
    assert (after["licenses"], after["license_operations"]) == (
        before["licenses"],
        before["license_operations"],
    )

    # A replayed request (same nonce) is refused; the revocation happened once.
    assert registry.http.post(path, content=payload, headers=headers).status_code == 201
    replayed = registry.http.post(path, content=payload, headers=headers)
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "replayed_nonce"


def test_qr_codes_and_dynamic_tokens(registry: Registry) -> None:
    client = registry.trust_client()
    issued = client.issue_license(license_request())
    png = registry.http.get(f"/v1/licenses/{issued.identifier}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert decoded_qr(png.content) == f"http://testserver/v/{issued.identifier}"
    svg = registry.http.get(f"/v1/licenses/{issued.identifier}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text

    token = client.license_token(issued.identifier, lifetime_seconds=60)
    assert token.url == f"http://testserver/v/{token.token}"
    assert decoded_qr(token.qr_png) == token.url
    shown = page(registry, token.token)
    assert shown.status_code == 200 and "有效" in shown.text
    assert shown.headers["cache-control"] == "no-store"

    tampered = token.token[:-2] + ("AA" if not token.token.endswith("AA") else "BB")
    assert page(registry, tampered).status_code == 404
    signer = registry.http.app.state.registry.chain.signer().private_key  # type: ignore[attr-defined]
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    expired = issue_token(
        bytes.fromhex(issued.id_hash),
        past + datetime.timedelta(seconds=30),
        signer,
        now=past,
        nonce=b"\x00" * 8,
    )
    assert page(registry, expired).status_code == 410
    forged = issue_token(
        bytes.fromhex(issued.id_hash),
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30),
        PrivateKey.generate(),
        now=datetime.datetime.now(datetime.UTC),
        nonce=b"\x01" * 8,
    )
    forged_page = page(registry, forged)
    assert forged_page.status_code == 404 and "未找到" in forged_page.text
    assert page(registry, new_identifier()).status_code == 404


def test_unreachable_node_is_unavailable_never_revoked(
    registry: Registry, trust_chain: TrustChain, tmp_path: Any, database_url: str | None
) -> None:
    issued = registry.trust_client().issue_license(license_request())
    away = registry_settings(
        trust_chain,
        tmp_path / "registry",
        database_url,
        node_url=f"http://127.0.0.1:{free_port()}",
        chain_timeout=0.5,
        run_workers=False,
    )
    with TestClient(create_app(away)) as http:
        key = registry.key
        client = TrustClient("http://testserver", registry.client_id, key, http_client=http)
        status = client.license_status(issued.identifier)
        assert status.chain is not None and status.chain.verdict is Verdict.UNAVAILABLE
        assert status.chain.status is None
        response = http.get(f"/v/{issued.identifier}")
        assert response.status_code == 503 and response.headers["cache-control"] == "no-store"
        assert "暂时无法核验" in response.text and "已撤销" not in response.text
        before = counts(registry.db)
        with pytest.raises(RegistryError) as refused:
            TrustClient(
                "http://testserver", registry.client_id, key, http_client=http, retries=0
            ).revoke_license(issued.identifier, reason=Reason.ISSUED_IN_ERROR)
        assert refused.value.status_code == 503
        assert counts(registry.db)["license_operations"] == before["license_operations"]


def test_async_client_issues_and_revokes(registry: Registry) -> None:
    import httpx

    async def run() -> tuple[Any, Any]:
        transport = httpx.ASGITransport(app=registry.http.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            client = AsyncTrustClient(
                "http://testserver", registry.client_id, registry.key, http_client=http
            )
            body = license_request(holder_id_type="resident_id", holder_id=HOLDER_RESIDENT_ID)
            issued = await client.issue_license(body, idempotency_key="async-1")
            replay = await client.issue_license(body, idempotency_key="async-1")
            assert replay.operation == issued.operation
            await client.revoke_license(issued.identifier, reason=Reason.HOLDER_REQUEST)
            return issued, await client.license_status(issued.identifier)

    issued, status = asyncio.run(run())
    assert status.chain.status is LicenseStatus.REVOKED
    assert status.metadata["holder_id"] == mask_identifier(HOLDER_RESIDENT_ID)
    assert issued.identifier == status.identifier


def test_a_license_not_signed_by_its_department_is_refused_and_nothing_is_stored(
    registry: Registry,
) -> None:
    chain_id = int(registry.http.get("/v1/records/signing").json()["chainId"])
    before = counts(registry.db)
    unsigned = registry.post_as_is("/v1/licenses", license_request())
    assert unsigned.status_code == 422, unsigned.text
    assert unsigned.json()["error"]["code"] == "department_signature_required"

    body = license_request()
    other_key = sign_license_body(PrivateKey.generate(), chain_id, body, "key-1")
    other_chain = sign_license_body(registry.key, chain_id + 1, body, "key-1")
    changed = dict(sign_license_body(registry.key, chain_id, body, "key-1"))
    changed["holder_id"] = HOLDER_RESIDENT_ID
    changed["holder_id_type"] = "resident_id"
    for forged in (other_key, other_chain, changed):
        response = registry.post_as_is("/v1/licenses", forged)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "bad_department_signature"
    after = counts(registry.db)
    assert (after["licenses"], after["license_operations"]) == (
        before["licenses"],
        before["license_operations"],
    )
    assert registry.post("/v1/licenses", body).status_code == 201
