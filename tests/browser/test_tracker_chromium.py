"""The citizen's data tracker page (数据使用记录) in a real headless Chromium at a phone-sized
viewport: the registry runs as a uvicorn process on a real node; a department reads a
citizen's license metadata under an authorization the identity provider attested, and the
page the identity provider's session leads to shows the authorization and the access. A
screenshot is kept under test-artifacts/."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from chromium_harness import ARTIFACTS, CHROMIUM, VIEWPORTS, chromium, png_size
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_KEY,
    CLIENT_USCC,
    free_port,
    registry_environment,
    registry_settings,
)
from test_license_e2e import registry_process

from chain.crypto import PrivateKey
from registry.cli import add_client
from registry.db import Database
from sdk.data_client import DataClient
from sdk.trust import TrustClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "registry_authorizations"))

from sharing_harness import CITIZEN_ID, IDENTITY_USCC, RECIPIENT_USCC, license_request

VIEWPORT = VIEWPORTS[0]
"""A phone."""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package (/usr/bin/chromium)"
)

PURPOSE = "subsidy.eligibility"


def test_tracker_page_on_a_phone_sized_headless_chromium(
    trust_chain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    keys = {name: PrivateKey.generate() for name in ("recipient", "identity")}
    controller = add_client(
        db,
        name=CLIENT_DEPARTMENT_NAME,
        uscc=CLIENT_USCC,
        public_key_pem=CLIENT_KEY.public_key.to_pem(),
        roles=["licenses"],
    )
    recipient = add_client(
        db,
        name="区人社局",
        uscc=RECIPIENT_USCC,
        public_key_pem=keys["recipient"].public_key.to_pem(),
        roles=["data"],
    )
    identity = add_client(
        db,
        name="统一身份认证平台",
        uscc=IDENTITY_USCC,
        public_key_pem=keys["identity"].public_key.to_pem(),
        roles=["identity"],
    )
    db.close()
    ARTIFACTS.mkdir(exist_ok=True)
    with registry_process(
        registry_environment(settings), free_port(), tmp_path / "registry.log"
    ) as base:
        with TrustClient(base, controller.id, CLIENT_KEY) as licensing:
            license_id = licensing.issue_license(
                license_request(CITIZEN_ID, "resident_id")
            ).identifier
        with (
            DataClient(base, recipient.id, keys["recipient"]) as department,
            DataClient(base, identity.id, keys["identity"]) as provider,
        ):
            _key, chain_id = provider.registry_facts()
            now = int(time.time())
            asked = department.request_authorization(
                subject_kind="citizen",
                subject_id=CITIZEN_ID,
                controller=CLIENT_USCC,
                recipient=RECIPIENT_USCC,
                items=["license.metadata"],
                purpose=PURPOSE,
                legal_basis="consent",
                valid_from=now - 60,
                valid_until=now + 3_600,
            )
            granted = provider.attest_approval(asked, CITIZEN_ID, chain_id=chain_id)
            department.read(
                granted.id, item="license.metadata", purpose=PURPOSE, resource=license_id
            )
            session = provider.open_tracker_session(CITIZEN_ID)
        shot = tmp_path / "tracker.png"
        dom = chromium(base + str(session["path"]), shot, tmp_path / "profile", VIEWPORT)
        assert "数据使用记录" in dom and "生效中" in dom and "已提供" in dom
        assert f'data-authorization="{granted.id}"' in dom and RECIPIENT_USCC in dom
        assert "撤回授权" in dom
        assert CITIZEN_ID not in dom
        assert png_size(shot) == VIEWPORT
        shutil.copy(shot, ARTIFACTS / "tracker-page-390x844.png")
