"""The citizen's verify page in a real headless Chromium (Debian's ``chromium`` package) at
a phone-sized viewport, with the network cut (``chromium_harness``): the registry runs as a
uvicorn process on a real node, a license is issued, and the browser's DOM shows its status; a
screenshot of the right size is kept under test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from chromium_harness import ARTIFACTS, CHROMIUM, VIEWPORTS, chromium, png_size
from registry_harness import CLIENT_KEY, free_port, registry_environment, registry_settings
from test_license_e2e import registry_process
from test_licenses import license_request

from contracts.trust import Reason
from registry.cli import add_client
from registry.db import Database
from sdk.trust import TrustClient

VIEWPORT = VIEWPORTS[0]
"""A phone: the page a citizen opens by scanning the QR code."""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package (/usr/bin/chromium)"
)


def test_verify_page_on_a_phone_sized_headless_chromium(
    trust_chain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    # The test department's key, registered in IssuerRegistry: the page checks its
    # signature there.
    key = CLIENT_KEY
    body = license_request()
    client_row = add_client(
        db,
        name="区行政审批局",
        uscc=body["identifier"].split(".")[6],
        public_key_pem=key.public_key.to_pem(),
        roles=["licenses", "verify"],
    )
    db.close()
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        registry_process(
            registry_environment(settings), free_port(), tmp_path / "registry.log"
        ) as base,
        TrustClient(base, client_row.id, key) as client,
    ):
        issued = client.issue_license(body)
        valid_shot = tmp_path / "valid.png"
        dom = chromium(issued.verify_url, valid_shot, tmp_path / "profile-1", VIEWPORT)
        assert "有效" in dom and "食品经营许可证" in dom and issued.identifier in dom
        assert "签名有效" in dom
        assert png_size(valid_shot) == VIEWPORT
        shutil.copy(valid_shot, ARTIFACTS / "verify-page-valid-390x844.png")

        client.revoke_license(issued.identifier, reason=Reason.LEGAL_DECISION)
        revoked_shot = tmp_path / "revoked.png"
        dom = chromium(issued.verify_url, revoked_shot, tmp_path / "profile-2", VIEWPORT)
        assert "已撤销" in dom and "依据行政决定或司法裁判" in dom
        assert png_size(revoked_shot) == VIEWPORT
        shutil.copy(revoked_shot, ARTIFACTS / "verify-page-revoked-390x844.png")
