"""``public_base_url``: with it, every link and QR code of a license points under the
configured site (path prefix kept), whatever URL the request came to; the setting itself
must be an http(s) URL with a host and no query or fragment. Runs on SQLite, or on
PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from registry_harness import TrustChain, decoded_qr, registry_settings
from test_licenses import Registry, license_request, make_registry, new_identifier

from registry.settings import RegistrySettings

PUBLIC_BASE_URL = "https://zx.example.gov.cn/zx"
"""Where citizens reach the test registry: another host than the test client's, and a
path prefix."""


@pytest.fixture
def public_registry(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> Iterator[Registry]:
    settings = registry_settings(
        trust_chain, tmp_path / "registry", database_url, public_base_url=PUBLIC_BASE_URL + "/"
    )
    yield from make_registry(settings)


def assert_public_links(answer: dict[str, Any], identifier: str) -> None:
    assert answer["verify_url"] == f"{PUBLIC_BASE_URL}/v/{identifier}"
    assert answer["qr_png_url"] == f"{PUBLIC_BASE_URL}/v1/licenses/{identifier}/qr.png"
    assert answer["qr_svg_url"] == f"{PUBLIC_BASE_URL}/v1/licenses/{identifier}/qr.svg"


def test_links_qr_codes_and_tokens_use_the_public_base_url(public_registry: Registry) -> None:
    identifier = new_identifier()
    issued = public_registry.post("/v1/licenses", license_request(identifier))
    assert issued.status_code in (201, 202), issued.text
    assert_public_links(issued.json(), identifier)
    client = public_registry.trust_client()
    shown = client.license_status(identifier)
    assert shown.verify_url == f"{PUBLIC_BASE_URL}/v/{identifier}"

    png = public_registry.http.get(f"/v1/licenses/{identifier}/qr.png")
    assert png.status_code == 200
    assert decoded_qr(png.content) == f"{PUBLIC_BASE_URL}/v/{identifier}"
    svg = public_registry.http.get(f"/v1/licenses/{identifier}/qr.svg")
    assert svg.status_code == 200 and "<svg" in svg.text

    token = client.license_token(identifier, lifetime_seconds=60)
    assert token.url == f"{PUBLIC_BASE_URL}/v/{token.token}"
    assert decoded_qr(token.qr_png) == token.url


def test_the_page_of_a_changed_license_links_its_successor_under_the_prefix(
    public_registry: Registry,
) -> None:
    client = public_registry.trust_client()
    first = client.issue_license(license_request())
    second_id = new_identifier("002", first.identifier.split(".")[7])
    second = client.change_license(first.identifier, license_request(second_id))
    assert second.verify_url == f"{PUBLIC_BASE_URL}/v/{second_id}"
    page = public_registry.http.get(f"/v/{first.identifier}")
    assert f'href="/zx/v/{second_id}"' in page.text


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://zx.example.gov.cn", "https://zx.example.gov.cn"),
        ("https://zx.example.gov.cn/", "https://zx.example.gov.cn"),
        ("https://host.example/zx/", "https://host.example/zx"),
        ("http://10.0.0.7:8080/a/b", "http://10.0.0.7:8080/a/b"),
    ],
)
def test_a_public_base_url_loses_only_its_trailing_slash(given: str, kept: str) -> None:
    assert RegistrySettings(public_base_url=given).public_base_url == kept


@pytest.mark.parametrize(
    "given",
    [
        "",
        "zx.example.gov.cn",
        "ftp://zx.example.gov.cn",
        "https:///zx",
        "https://zx.example.gov.cn/?a=1",
        "https://zx.example.gov.cn/#top",
        "https://user:secret@zx.example.gov.cn",
        "https://zx.example.gov.cn:port",
        "https://zx.example.gov.cn/a b",
    ],
)
def test_a_public_base_url_must_be_an_http_url_with_a_host(given: str) -> None:
    with pytest.raises(ValidationError):
        RegistrySettings(public_base_url=given)
