"""The parties of the served data-sharing tests, on one in-process registry: the
department holding licenses (controller), the department reading them (recipient),
another department, the enterprise the licenses are about, and an identity provider."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_KEY,
    CLIENT_USCC,
    DATABASE_URL_ENV,
    create_postgres_database,
    drop_postgres_database,
    signed,
)

from chain.crypto import PrivateKey
from registry.app import create_app
from registry.authorizations.gateway import DataGateway
from registry.cli import add_client
from registry.db import Database
from sdk.data_receipts import consent_sign_bytes, terms_hash
from sdk.identifiers import make_license_identifier
from sdk.trust import TrustClient

CONTROLLER_USCC = CLIENT_USCC
"""The licensing department (its key is registered on chain by the session fixture)."""
RECIPIENT_USCC = "11350102MB00010016"
"""The department reading shared data."""
OTHER_USCC = "11350102MB00010029"
"""A department with no authorization."""
ENTERPRISE_USCC = "91350102MA2Y0001X6"
"""The enterprise the licenses are about."""
OTHER_HOLDER_USCC = "91350102MA2Y0002X7"
"""The holder of another license."""
CITIZEN_ID = "11010519491231002X"
"""A citizen."""
IDENTITY_USCC = "11350102MB0001003C"
"""The identity provider's organisation."""
LICENSE_TYPE = CLIENT_USCC + "032"
PURPOSE = "approval.food-business-license"


@dataclasses.dataclass
class Party:
    """A registered client and its key."""

    client_id: str
    key: PrivateKey
    uscc: str

    def post(self, http: TestClient, path: str, payload: Any = None) -> Any:
        body, headers = signed(self.key, self.client_id, "POST", path, payload)
        return http.post(path, content=body, headers=headers)

    def get(self, http: TestClient, path: str) -> Any:
        _body, headers = signed(self.key, self.client_id, "GET", path)
        return http.get(path, headers=headers)


def add_party(
    db: Database,
    uscc: str,
    roles: list[str],
    key: PrivateKey | None = None,
    name: str | None = None,
) -> Party:
    """A registered client of ``uscc`` with ``roles``."""
    key = key or PrivateKey.generate()
    client = add_client(
        db,
        name=name or f"party {uscc}",
        uscc=uscc,
        public_key_pem=key.public_key.to_pem(),
        roles=roles,
    )
    return Party(client.id, key, uscc)


def license_request(holder: str, holder_type: str = "uscc") -> dict[str, Any]:
    return {
        "identifier": make_license_identifier(
            LICENSE_TYPE, CLIENT_USCC, secrets.token_hex(6).upper(), "001"
        ),
        "license_name": "食品经营许可证",
        "holder_name": "福建示例科技有限公司",
        "holder_id_type": holder_type,
        "holder_id": holder,
        "issuer_name": "区行政审批局",
        "issue_date": "2024-03-15",
        "valid_from": "2024-03-15",
        "valid_until": "2099-03-14",
        "license_number": "JY13501000012345",
        "content": [{"name": "经营项目", "value": "预包装食品销售"}],
    }


@dataclasses.dataclass
class Scenario:
    """One registry with every party and two licenses (the enterprise's, another's)."""

    http: TestClient
    db: Database
    controller: Party
    recipient: Party
    other: Party
    enterprise: Party
    identity: Party
    license_id: str
    other_license_id: str
    chain_id: int

    @property
    def gateway(self) -> DataGateway:
        gateway: DataGateway = self.http.app.state.data_gateway  # type: ignore[attr-defined]
        return gateway

    def ask(self, path: str = "/v1/authorizations", **changes: Any) -> dict[str, Any]:
        """The recipient asks for an authorization of the enterprise's license metadata
        (one hour from now, consent) with ``changes``; returns the answer."""
        now = int(time.time())
        body: dict[str, Any] = {
            "subject_kind": "enterprise",
            "subject_id": ENTERPRISE_USCC,
            "controller": CONTROLLER_USCC,
            "recipient": RECIPIENT_USCC,
            "items": ["license.metadata"],
            "purpose": PURPOSE,
            "legal_basis": "consent",
            "valid_from": now - 60,
            "valid_until": now + 3_600,
        }
        body.update(changes)
        response = self.recipient.post(self.http, path, body)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def consent(self, authorization: dict[str, Any]) -> dict[str, Any]:
        """The enterprise signs the terms it is shown (after checking their hash)."""
        digest = terms_hash(authorization["terms"])
        assert digest.hex() == authorization["terms_hash"]
        signature = self.enterprise.key.sign(consent_sign_bytes(self.chain_id, digest))
        response = self.enterprise.post(
            self.http,
            f"/v1/authorizations/{authorization['id']}/consent",
            {"signature": base64.b64encode(signature).decode()},
        )
        assert response.status_code == 200, response.text
        granted: dict[str, Any] = response.json()
        return granted

    def granted(self, **changes: Any) -> dict[str, Any]:
        """An authorization asked for and consented to."""
        return self.consent(self.ask(**changes))

    def read(
        self,
        authorization_id: str,
        *,
        party: Party | None = None,
        item: str = "license.metadata",
        purpose: str = PURPOSE,
        resource: str | None = None,
    ) -> Any:
        """A gateway read by ``party`` (the recipient by default)."""
        return (party or self.recipient).post(
            self.http,
            "/v1/data/read",
            {
                "authorization_id": authorization_id,
                "item": item,
                "purpose": purpose,
                "resource": resource or self.license_id,
            },
        )


def issue(http: TestClient, party: Party, holder: str, holder_type: str = "uscc") -> str:
    """A license of ``party``'s department held by ``holder``; returns its identifier."""
    trust = TrustClient("http://testserver", party.client_id, party.key, http_client=http)
    return trust.issue_license(license_request(holder, holder_type)).identifier


@contextlib.contextmanager
def module_database() -> Iterator[str | None]:
    """A fresh database for one test module: a new PostgreSQL database when
    LIANXIN_TEST_DATABASE_URL names a server, else None (SQLite in the data dir)."""
    base = os.environ.get(DATABASE_URL_ENV)
    if not base:
        yield None
        return
    url = create_postgres_database(base, migrated=True)
    try:
        yield url
    finally:
        drop_postgres_database(base, url)


def scenario_on(settings: Any) -> Iterator[Scenario]:
    """A :class:`Scenario` on a registry app with ``settings`` (for a module fixture)."""
    with TestClient(create_app(settings)) as http:
        db = http.app.state.registry.db  # type: ignore[attr-defined]
        controller = add_party(
            db, CLIENT_USCC, ["licenses", "data", "verify"], CLIENT_KEY, CLIENT_DEPARTMENT_NAME
        )
        yield Scenario(
            http=http,
            db=db,
            controller=controller,
            recipient=add_party(db, RECIPIENT_USCC, ["data"]),
            other=add_party(db, OTHER_USCC, ["data"]),
            enterprise=add_party(db, ENTERPRISE_USCC, ["subject"]),
            identity=add_party(db, IDENTITY_USCC, ["identity"]),
            license_id=issue(http, controller, ENTERPRISE_USCC),
            other_license_id=issue(http, controller, OTHER_HOLDER_USCC),
            chain_id=int(http.get("/v1/records/signing").json()["chainId"]),
        )
