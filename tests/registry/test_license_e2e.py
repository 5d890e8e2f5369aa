"""An e-license end to end against real processes: the dev chain node and the registry
started with ``python -m registry.cli start`` (uvicorn). A department's TrustClient issues
a license; its QR code (PNG) decodes with zxing-cpp to the verify page URL, which shows
有效; the issuance proof bundle is saved; the license is revoked with a reason and the page
shows 已撤销 and the reason; the saved bundle still proves the issuance offline, and names
the department whose own signature over the license's commitment it carries (a changed
signature fails that link alone); the bundle read after the revocation carries it, signed
by the department, and it verifies offline too; an auditor lists what the department
issued.

The bundle is made from the LicenseRegistry transaction receipt (``LicenseIssued`` in the
issuing transaction), not from a Notary batch: sdk.bundle.verify_license_bundle checks it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_KEY,
    CLIENT_USCC,
    TrustChain,
    decoded_qr,
    free_port,
    registry_environment,
    registry_settings,
    signed,
)
from test_licenses import license_request

from chain.crypto import PrivateKey
from contracts.trust import Reason
from registry.cli import add_client
from registry.db import Database
from sdk.bundle import BundleFormatError, LicenseBundle, LicenseLink, verify_license_bundle
from sdk.chain_reader import ChainReader
from sdk.license_status_bundle import verify_status_changes
from sdk.license_status_signing import StatusAction
from sdk.trust import RegistryError, TrustClient

START_TIMEOUT_S = 180.0
"""Longest the registry process may take to serve (importing it all on a loaded machine)."""
BUNDLE_TIMEOUT_S = 20.0


@contextlib.contextmanager
def registry_process(environment: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """The registry as a uvicorn process on ``port``; yields its base URL."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry.cli", "start", "--port", str(port)],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/openapi.json", timeout=0.5).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_for_bundle(client: TrustClient, identifier: str, changes: int = 0) -> LicenseBundle:
    """The license's bundle, once the blocks of its issuance and of ``changes`` status
    changes are certified."""
    deadline = time.monotonic() + BUNDLE_TIMEOUT_S
    while True:
        try:
            bundle = client.license_bundle(identifier)
            if len(bundle.status_changes) >= changes:
                return bundle
        except RegistryError as exc:
            if exc.status_code != 503 or time.monotonic() > deadline:
                raise
        assert time.monotonic() < deadline, "the bundle never carried the status changes"
        time.sleep(0.2)


def test_license_qr_page_revocation_and_offline_proof(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    # The test department's key, registered in IssuerRegistry: its signature verifies there.
    key = CLIENT_KEY
    body = license_request()
    assert body["identifier"].split(".")[6] == CLIENT_USCC
    client_row = add_client(
        db,
        name=CLIENT_DEPARTMENT_NAME,
        uscc=CLIENT_USCC,
        public_key_pem=key.public_key.to_pem(),
        roles=["licenses", "verify"],
    )
    db.close()
    port = free_port()
    log = tmp_path / "registry.log"
    with registry_process(registry_environment(settings), port, log) as base:
        client = TrustClient(base, client_row.id, key)
        issued = client.issue_license(body)
        assert issued.recorded_status == "issued"

        png = httpx.get(issued.qr_png_url)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        url = decoded_qr(png.content)
        assert url == f"{base}/v/{issued.identifier}"
        valid_page = httpx.get(url)
        assert valid_page.status_code == 200 and "有效" in valid_page.text

        bundle = wait_for_bundle(client, issued.identifier)
        assert bundle.version == 3 and bundle.department is not None
        assert bundle.status_changes == ()
        listed = client.department_licenses(CLIENT_USCC)
        assert [entry["identifier"] for entry in listed.licenses] == [issued.identifier]
        assert listed.licenses[0]["commitment"] == bundle.license.commitment().hex()
        saved = tmp_path / "license-bundle.json"
        path = f"/v1/licenses/{issued.identifier}/bundle"
        _, headers = signed(key, client_row.id, "GET", path)
        saved.write_bytes(httpx.get(base + path, headers=headers).content)

        client.revoke_license(issued.identifier, reason=Reason.ISSUED_IN_ERROR)
        revoked_page = httpx.get(url)
        assert revoked_page.status_code == 200
        assert "已撤销" in revoked_page.text and "证照签发有误" in revoked_page.text
        english = httpx.get(url, params={"lang": "en"})
        assert "Revoked" in english.text and "Issued in error" in english.text
        revoked_bundle = wait_for_bundle(client, issued.identifier, changes=1)
        _, headers = signed(key, client_row.id, "GET", path)
        revoked_json = httpx.get(base + path, headers=headers).json()
        client.close()

    # Offline: only the saved file and the validator set and chain id the verifier trusts.
    with ChainReader(trust_chain.chain.url) as reader:
        validator_set, chain_id = reader.validators(), reader.chain_id()
    license_registry = bytes.fromhex(trust_chain.addresses["license_registry"][2:])
    restored = LicenseBundle.from_json(json.loads(saved.read_text()))
    assert restored == bundle
    verdict = verify_license_bundle(
        restored,
        validator_set,
        chain_id=chain_id,
        expected_identifier=issued.identifier,
        license_registry=license_registry,
    )
    assert verdict.valid, verdict.failures
    assert [check.link for check in verdict.checks] == list(LicenseLink)
    assert restored.license.holder_commitment.hex() == issued.holder_commitment
    assert verdict.signed_by is not None
    assert (verdict.signed_by.uscc, verdict.signed_by.name) == (CLIENT_USCC, CLIENT_DEPARTMENT_NAME)

    assert restored.department is not None
    forged = dataclasses.replace(
        restored,
        department=dataclasses.replace(
            restored.department, signature=PrivateKey.generate().sign(b"another message")
        ),
    )
    forged_verdict = verify_license_bundle(forged, validator_set, chain_id=chain_id)
    assert [check.link for check in forged_verdict.failures] == [LicenseLink.DEPARTMENT]
    assert forged_verdict.signed_by is None

    # The revocation, signed by the department, verifies offline and names it.
    (revocation,) = verify_status_changes(
        revoked_bundle, validator_set, chain_id=chain_id, license_registry=license_registry
    )
    assert revocation.valid, revocation.verdict.failures
    assert revocation.change.action is StatusAction.REVOKE
    assert revocation.signed_by is not None and revocation.signed_by.uscc == CLIENT_USCC

    other = verify_license_bundle(
        restored, validator_set, chain_id=chain_id, expected_identifier=body["identifier"] + "0"
    )
    assert [check.link for check in other.failures] == [LicenseLink.LICENSE]

    # Members of another type or past their on-chain width are format errors. Each of these
    # once raised something else: AttributeError for a license that is not an object, the
    # ABI encoder's error out of the verifiers for the numbers.
    assert LicenseBundle.from_json(revoked_json).status_changes
    for member, value in (
        (("license",), True),
        (("license", "validUntil"), 2**64),
        (("statusChanges", 0, "reason"), 2**16),
        (("statusChanges", 0, "sequence"), 2**64),
    ):
        doctored = copy.deepcopy(revoked_json)
        parent = doctored
        for key_part in member[:-1]:
            parent = parent[key_part]
        parent[member[-1]] = value
        with pytest.raises(BundleFormatError):
            LicenseBundle.from_json(doctored)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go to 127.0.0.1 directly."""
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
