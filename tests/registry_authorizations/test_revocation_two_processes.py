"""Two registry API processes (real uvicorn processes) on one database, each with its own
gateway caches warm: a revocation through one refuses the very next read through either."""

from __future__ import annotations

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
from sdk.data_client import AccessRefused, DataClient
from sdk.trust import TrustClient


def test_a_revocation_in_one_process_refuses_the_next_read_in_the_other(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    keys = {name: PrivateKey.generate() for name in ("recipient", "enterprise")}
    controller = add_client(
        db, name=CLIENT_DEPARTMENT_NAME, uscc=CLIENT_USCC,
        public_key_pem=CLIENT_KEY.public_key.to_pem(), roles=["licenses"],
    )  # fmt: skip
    recipient = add_client(
        db, name="区市场监管局", uscc=RECIPIENT_USCC,
        public_key_pem=keys["recipient"].public_key.to_pem(), roles=["data"],
    )  # fmt: skip
    enterprise = add_client(
        db, name="福建示例科技有限公司", uscc=ENTERPRISE_USCC,
        public_key_pem=keys["enterprise"].public_key.to_pem(), roles=["subject"],
    )  # fmt: skip
    db.close()
    environment = registry_environment(settings)
    with (
        registry_process(environment, free_port(), tmp_path / "first.log") as first,
        registry_process(environment, free_port(), tmp_path / "second.log") as second,
    ):
        with TrustClient(first, controller.id, CLIENT_KEY) as licensing:
            license_id = licensing.issue_license(license_request(ENTERPRISE_USCC)).identifier
        readers = {
            base: DataClient(base, recipient.id, keys["recipient"]) for base in (first, second)
        }
        owner = DataClient(second, enterprise.id, keys["enterprise"])
        try:
            _key, chain_id = owner.registry_facts()
            now = int(time.time())
            asked = readers[first].request_authorization(
                subject_kind="enterprise", subject_id=ENTERPRISE_USCC, controller=CLIENT_USCC,
                recipient=RECIPIENT_USCC, items=["license.metadata"], purpose=PURPOSE,
                legal_basis="consent", valid_from=now - 60, valid_until=now + 3_600,
            )  # fmt: skip
            granted = owner.grant(asked, chain_id=chain_id)
            for _ in range(3):  # every cache of both processes warm
                for reader in readers.values():
                    read = reader.read(
                        granted.id, item="license.metadata", purpose=PURPOSE, resource=license_id
                    )
                    assert read.data["identifier"] == license_id
            assert owner.revoke(granted.id).status == "revoked"
            for base in (first, second):
                with pytest.raises(AccessRefused) as refused:
                    readers[base].read(
                        granted.id, item="license.metadata", purpose=PURPOSE, resource=license_id
                    )
                assert refused.value.code == "authorization_revoked"
        finally:
            owner.close()
            for reader in readers.values():
                reader.close()
