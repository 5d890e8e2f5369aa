"""QR codes: decode the PNG that static_qr draws with zxing-cpp and get the exact text back;
sizes of the symbols for a static link and a token link."""

from __future__ import annotations

import datetime
import io
import xml.etree.ElementTree as ElementTree

import pytest
from PIL import Image

from chain.crypto import PrivateKey
from contracts.trust import license_id_hash
from registry.licenses.qr import QrImages, qr_version, static_qr, token_url
from registry.licenses.tokens import TOKEN_NONCE_SIZE, issue_token, verify_token

pytestmark = pytest.mark.no_database

zxingcpp = pytest.importorskip("zxingcpp")

IDENTIFIER = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
STATIC_URL = f"https://zwfw.example.gov.cn/licenses/verify/{IDENTIFIER}"
TOKEN_BASE = "https://zwfw.example.gov.cn/licenses/t"
NOW = datetime.datetime(2025, 6, 1, 9, 30, tzinfo=datetime.UTC)


def _decode(images: QrImages) -> str:
    # Only QR codes are looked for: a random token's modules can also read as a linear
    # code by accident (seen: a second, spurious result beside the QR code).
    results = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(images.png)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert len(results) == 1
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    text: str = results[0].text
    return text


def _token_link(key: PrivateKey) -> str:
    token = issue_token(
        license_id_hash(IDENTIFIER),
        NOW + datetime.timedelta(minutes=5),
        key,
        now=NOW,
        nonce=b"\x07" * TOKEN_NONCE_SIZE,
    )
    return token_url(TOKEN_BASE, token)


@pytest.mark.parametrize(
    "url",
    [
        STATIC_URL,
        "https://zwfw.example.gov.cn/v?id=1&lang=en#top",
        "https://例子.中国/证照/核验",
    ],
)
def test_static_qr_decodes_to_the_exact_url(url: str) -> None:
    images = static_qr(url)
    assert images.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert _decode(images) == url


def test_svg_is_a_scalable_svg_document() -> None:
    svg = static_qr(STATIC_URL).svg
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    side = 17 + 4 * qr_version(STATIC_URL) + 2 * 4
    assert root.attrib["viewBox"] == f"0 0 {side} {side}"
    assert "width" not in root.attrib


def test_token_link_round_trips_through_the_qr(signing_key: PrivateKey) -> None:
    link = _token_link(signing_key)
    decoded = _decode(static_qr(link))
    assert decoded == link
    token = decoded.removeprefix(TOKEN_BASE + "/")
    claims = verify_token(token, signing_key.public_key, now=NOW)
    assert claims.license_id_hash == license_id_hash(IDENTIFIER)


def test_symbol_sizes(signing_key: PrivateKey) -> None:
    # Error correction M, quiet zone 4, 8 px per module.
    assert len(STATIC_URL) == 113
    assert qr_version(STATIC_URL) <= 7
    link = _token_link(signing_key)
    assert len(link) <= 210
    assert qr_version(link) <= 10
    width, height = Image.open(io.BytesIO(static_qr(link).png)).size
    assert width == height == (17 + 4 * qr_version(link) + 8) * 8


def test_token_url_keeps_the_token_one_path_segment() -> None:
    assert token_url("https://a.example/t/", "abc-_") == "https://a.example/t/abc-_"
    assert token_url("https://a.example/t", "../x?y") == "https://a.example/t/..%2Fx%3Fy"


def test_empty_url_is_refused() -> None:
    with pytest.raises(ValueError):
        static_qr("")
