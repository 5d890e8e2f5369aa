"""What a citizen's phone is sent to: links and QR codes never name a host the caller made
up (no ``public_base_url``: the server's own address is used, whatever the Host header
says), and an expired dynamic QR code says that it has expired and that a new one is
needed — not "not found". Runs on SQLite, or on PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from registry_harness import decoded_qr, signed
from test_licenses import Registry, license_request, make_registry

from registry.licenses import issue_token
from registry.settings import RegistrySettings

EVIL_HOST = "evil.example"


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    yield from make_registry(settings)


def test_links_and_qr_codes_ignore_the_host_header(registry: Registry) -> None:
    issued = registry.post("/v1/licenses", license_request(), Host=EVIL_HOST)
    assert issued.status_code in (201, 202), issued.text
    answer = issued.json()
    identifier = answer["identifier"]
    for name in ("verify_url", "qr_png_url", "qr_svg_url"):
        assert answer[name].startswith("http://testserver/"), answer[name]

    png = registry.http.get(f"/v1/licenses/{identifier}/qr.png", headers={"Host": EVIL_HOST})
    assert png.status_code == 200
    assert decoded_qr(png.content) == f"http://testserver/v/{identifier}"
    svg = registry.http.get(f"/v1/licenses/{identifier}/qr.svg", headers={"Host": EVIL_HOST})
    assert EVIL_HOST not in svg.text

    path = f"/v1/licenses/{identifier}/token"
    body, headers = signed(registry.key, registry.client_id, "POST", path, {})
    token = registry.http.post(path, content=body, headers=headers | {"Host": EVIL_HOST})
    assert token.status_code == 200, token.text
    assert token.json()["url"].startswith("http://testserver/v/")
    assert EVIL_HOST not in token.text


def test_an_expired_dynamic_code_asks_for_a_new_one(registry: Registry) -> None:
    issued = registry.trust_client().issue_license(license_request())
    signer = registry.http.app.state.registry.chain.signer().private_key  # type: ignore[attr-defined]
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    expired = issue_token(
        bytes.fromhex(issued.id_hash),
        past + datetime.timedelta(seconds=30),
        signer,
        now=past,
        nonce=b"\x02" * 8,
    )
    page = registry.http.get(f"/v/{expired}")
    assert page.status_code == 410
    assert "二维码已过期" in page.text and "请向持证人索取新的二维码" in page.text
    assert "未找到" not in page.text
    assert issued.identifier not in page.text
    assert page.headers["cache-control"] == "no-store"
    english = registry.http.get(f"/v/{expired}?lang=en")
    assert "This code has expired; ask the holder for a new one." in english.text
