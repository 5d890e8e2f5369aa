"""Issuers bound server-side: a license names only an issuing authority its client was
bound to when it was registered (its USCC, or administrative division codes granted by the
operator), and the issuer name citizens see is the client's registered name, never the
request's. Claiming another authority is refused with 403 and stores nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from registry_harness import CLIENT_USCC, TrustChain
from test_licenses import TABLES, counts, license_request

from chain.crypto import PrivateKey
from registry.app import create_app
from registry.cli import add_client
from registry.db import Database
from registry.department_keys import register_department_key
from registry.settings import RegistrySettings
from sdk.account import Sm2Account
from sdk.identifiers import compute_uscc_check, make_license_identifier
from sdk.trust import RegistryError, TrustClient

HUBEI_USCC = "11420100MB1234567" + compute_uscc_check("11420100MB1234567")
"""A valid USCC of a Hubei (42xxxx) authority."""
HUBEI_NAME = "武汉市市场监督管理局"
WUHAN_DIVISION = "420100"
BEIJING_DIVISION = "110000"


def identifier_of(issuer_code: str) -> str:
    """A fresh identifier of a license issued under ``issuer_code``."""
    return make_license_identifier(
        CLIENT_USCC + "032", issuer_code, secrets.token_hex(6).upper(), "001"
    )


@pytest.fixture
def http(settings: RegistrySettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def licensing_client(
    http: TestClient,
    *,
    name: str,
    uscc: str,
    issuer_codes: list[str] | None = None,
    key: PrivateKey | None = None,
) -> TrustClient:
    db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
    key = key or PrivateKey.generate()
    client = add_client(
        db,
        name=name,
        uscc=uscc,
        public_key_pem=key.public_key.to_pem(),
        roles=["licenses"],
        issuer_codes=issuer_codes,
    )
    return TrustClient("http://testserver", client.id, key, http_client=http)


def refused(http: TestClient, client: TrustClient, body: dict[str, object]) -> RegistryError:
    db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
    before = {table: n for table, n in counts(db).items() if table != "nonces"}
    with pytest.raises(RegistryError) as raised:
        client.issue_license(body)
    after = {table: n for table, n in counts(db).items() if table != "nonces"}
    assert after == before, "a refused issuance stored something"
    assert set(after) == set(TABLES) - {"nonces"}
    return raised.value


def test_division_code_impersonation_is_refused(http: TestClient) -> None:
    hubei = licensing_client(http, name=HUBEI_NAME, uscc=HUBEI_USCC, issuer_codes=[WUHAN_DIVISION])
    # A division code the client was not bound to: Beijing's.
    error = refused(http, hubei, license_request(identifier_of(BEIJING_DIVISION)))
    assert (error.status_code, error.code) == (403, "wrong_department")
    # Another department's USCC as issuer code.
    error = refused(http, hubei, license_request(identifier_of(CLIENT_USCC)))
    assert (error.status_code, error.code) == (403, "wrong_department")
    # A client bound to no division code cannot use its own region's either.
    unbound = licensing_client(http, name="区行政审批局", uscc=CLIENT_USCC)
    error = refused(http, unbound, license_request(identifier_of(WUHAN_DIVISION)))
    assert (error.status_code, error.code) == (403, "wrong_department")

    # What it was bound to it may use, under its registered name.
    issued = hubei.issue_license(license_request(identifier_of(WUHAN_DIVISION), issuer_name=None))
    assert issued.metadata is not None and issued.metadata["issuer_name"] == HUBEI_NAME


def test_a_hubei_department_cannot_issue_as_beijing(
    http: TestClient, trust_chain: TrustChain
) -> None:
    # Its key registered in IssuerRegistry, where the verify page checks who signed.
    key = PrivateKey.generate()
    governance = Sm2Account.from_keystore(
        trust_chain.chain.keystore("admin"), trust_chain.chain.password
    )
    register_department_key(
        http.app.state.registry.chain,  # type: ignore[attr-defined]
        governance,
        uscc=HUBEI_USCC,
        department_name=HUBEI_NAME,
        public_key=key.public_key.to_bytes(),
    )
    hubei = licensing_client(http, name=HUBEI_NAME, uscc=HUBEI_USCC, key=key)
    body = license_request(identifier_of(HUBEI_USCC), issuer_name="北京市市场监督管理局")
    error = refused(http, hubei, body)
    assert (error.status_code, error.code) == (403, "wrong_issuer_name")

    issued = hubei.issue_license(license_request(identifier_of(HUBEI_USCC), issuer_name=None))
    page = http.get(f"/v/{issued.identifier}")
    assert page.status_code == 200
    assert HUBEI_NAME in page.text and "北京" not in page.text
    assert f"由 {HUBEI_NAME} ({HUBEI_USCC}) 签发，签名有效" in page.text


def test_issuer_codes_are_checked_when_a_client_is_registered(http: TestClient) -> None:
    with pytest.raises(ValueError, match="invalid issuer code"):
        licensing_client(http, name=HUBEI_NAME, uscc=HUBEI_USCC, issuer_codes=["42010"])
    with pytest.raises(ValueError, match="invalid issuer code"):
        licensing_client(http, name=HUBEI_NAME, uscc=HUBEI_USCC, issuer_codes=["4201AB"])
