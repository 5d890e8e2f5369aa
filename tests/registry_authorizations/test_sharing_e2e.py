"""End to end on real processes (a node, the registry as its own uvicorn process, clients
over HTTP): an enterprise grants a department access to its license metadata, the
department fetches it, the enterprise revokes, the next fetch is refused, and the
enterprise's tracker shows both accesses with receipts that verify offline once anchored."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_KEY,
    CLIENT_USCC,
    TrustChain,
    free_port,
    registry_environment,
    registry_settings,
)
from sharing_harness import ENTERPRISE_USCC, PURPOSE, RECIPIENT_USCC, license_request
from test_license_e2e import registry_process

from chain.crypto import PrivateKey
from registry.cli import add_client
from registry.db import Database
from sdk.chain_reader import ChainReader
from sdk.data_client import AccessRefused, DataClient
from sdk.data_receipts import verify_receipt
from sdk.trust import TrustClient

ANCHOR_TIMEOUT_S = 60.0


def test_grant_fetch_revoke_refuse_and_the_tracker_shows_both(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    keys = {name: PrivateKey.generate() for name in ("recipient", "enterprise")}
    controller = add_client(
        db,
        name=CLIENT_DEPARTMENT_NAME,
        uscc=CLIENT_USCC,
        public_key_pem=CLIENT_KEY.public_key.to_pem(),
        roles=["licenses"],
    )
    recipient = add_client(
        db,
        name="区市场监管局",
        uscc=RECIPIENT_USCC,
        public_key_pem=keys["recipient"].public_key.to_pem(),
        roles=["data"],
    )
    enterprise = add_client(
        db,
        name="福建示例科技有限公司",
        uscc=ENTERPRISE_USCC,
        public_key_pem=keys["enterprise"].public_key.to_pem(),
        roles=["subject"],
    )
    db.close()
    with registry_process(
        registry_environment(settings), free_port(), tmp_path / "registry.log"
    ) as base:
        with TrustClient(base, controller.id, CLIENT_KEY) as licensing:
            license_id = licensing.issue_license(license_request(ENTERPRISE_USCC)).identifier
        department = DataClient(base, recipient.id, keys["recipient"])
        owner = DataClient(base, enterprise.id, keys["enterprise"])
        with department, owner:
            key, chain_id = owner.registry_facts()
            now = int(time.time())
            asked = department.request_authorization(
                subject_kind="enterprise",
                subject_id=ENTERPRISE_USCC,
                controller=CLIENT_USCC,
                recipient=RECIPIENT_USCC,
                items=["license.metadata"],
                purpose=PURPOSE,
                legal_basis="consent",
                valid_from=now - 60,
                valid_until=now + 3_600,
            )
            asked.check_terms(subject_id=ENTERPRISE_USCC)
            granted = owner.grant(asked, chain_id=chain_id)
            assert granted.status == "granted"

            fetched = department.read(
                granted.id, item="license.metadata", purpose=PURPOSE, resource=license_id
            )
            assert fetched.data["identifier"] == license_id

            assert owner.revoke(granted.id).status == "revoked"
            with pytest.raises(AccessRefused) as refused:
                department.read(
                    granted.id, item="license.metadata", purpose=PURPOSE, resource=license_id
                )
            assert refused.value.code == "authorization_revoked"

            deadline = time.monotonic() + ANCHOR_TIMEOUT_S
            while True:
                shown = [a for a in owner.tracker_accesses() if a.authorization_id == granted.id]
                if len(shown) == 2 and all(a.receipt.bundle is not None for a in shown):
                    break
                assert time.monotonic() < deadline, shown
                time.sleep(0.25)
            assert sorted(a.outcome for a in shown) == ["allowed", "authorization_revoked"]
            with ChainReader(trust_chain.chain.url) as reader:
                trusted = reader.validators()
            for access in shown:
                assert verify_receipt(
                    access.receipt, trusted, chain_id=chain_id, registry_key=key
                ).valid
            DataClient.verify_stream(sorted(shown, key=lambda a: a.receipt.entry["position"]))

        # The CLI lists the same stream and verifies it offline, as the department.
        key_file = tmp_path / "recipient.pem"
        key_file.write_bytes(keys["recipient"].to_pem())
        key_file.chmod(0o600)
        listed = subprocess.run(
            [sys.executable, "-m", "registry.authorizations.cli", "accesses", granted.id,
             "--registry", base, "--client-id", recipient.id, "--key-file", str(key_file),
             "--verify", "--node-url", trust_chain.chain.url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        entries = json.loads(listed.stdout)
        assert [e["outcome"] for e in entries] == ["allowed", "authorization_revoked"]
        assert all(e["verified"] is True for e in entries)
