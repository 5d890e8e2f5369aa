"""Backing up a registry under load, losing it, and restoring it — on real processes.

A dev chain and a registry process (``python -m registry``) run; records are notarized in a
loop and archive packages ingested over HTTP while ``lianxin registry backup`` (``python -m
registry.cli backup``, its own process) copies the registry; one ingest is sent while the
backup runs. Then the registry is SIGKILLed and its data wiped (data dir removed; on
PostgreSQL its tables dropped), the backup restored with ``python -m registry.cli restore``
and the registry started again. Every record acknowledged before the backup began is there,
gets anchored and its proof bundle verifies offline, as does the bundle of the license
issued before it; the package ingested before the backup
is there whole, its files match its SM3 manifest, and its access copy (DIP) verifies
offline; the package ingested during the backup is either wholly there (rows and files) or
wholly absent; no stored version lacks its rows and no row lacks its files.

Runs on PostgreSQL when LIANXIN_TEST_DATABASE_URL is set (a database of its own per test).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
for extra in (HERE.parent / "registry", HERE.parent / "archives"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from archive_samples import make_sample_bag  # noqa: E402
from registry_harness import (  # noqa: E402
    CLIENT_KEY,
    TrustChain,
    free_port,
    new_client,
    registry_environment,
    registry_settings,
    signed,
    start_registry,
)
from sqlalchemy import create_engine, text  # noqa: E402
from test_licenses import license_request  # noqa: E402

from archives.hashing import sm3_file  # noqa: E402
from archives.store import LocalArchiveStore  # noqa: E402
from archives.submission import sign_bag  # noqa: E402
from chain.crypto import sm3  # noqa: E402
from registry.archives.models import ArchiveFileRow, ArchivePackageRow  # noqa: E402
from registry.db import Database  # noqa: E402
from registry.settings import RegistrySettings  # noqa: E402
from sdk.archive_bundle import verify_dip  # noqa: E402
from sdk.bundle import verify_bundle, verify_license_bundle  # noqa: E402
from sdk.chain_reader import ChainReader  # noqa: E402
from sdk.trust import RegistryError, TrustClient  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "registry_backup_conftest", HERE.parent / "registry" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_registry_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_registry_conftest)
trust_chain = _registry_conftest.trust_chain
database_url = _registry_conftest.database_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START_TIMEOUT_S = 90.0
ANCHOR_TIMEOUT_S = 120.0
COMMAND_TIMEOUT_S = 300.0
BEFORE_BACKUP_RECORDS = 20
"""Records acknowledged before the backup starts (the loop goes on meanwhile)."""


def registry_cli(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


@dataclass
class Load:
    """Records notarized in a loop: (record id, digest, monotonic time of the answer)."""

    base: str
    client_id: str
    acknowledged: list[tuple[str, bytes, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        counter = 0
        with TrustClient(self.base, self.client_id, CLIENT_KEY, retries=0, timeout=10) as trust:
            while not self.stop.is_set():
                counter += 1
                digest = sm3(b"backup under load %d %f" % (counter, time.time()))
                try:
                    result = trust.notarize(digest=digest)
                except RegistryError as exc:  # the SIGKILL cuts the last ones off
                    self.errors.append(str(exc))
                    continue
                self.acknowledged.append((result.record_id, digest, time.monotonic()))


def ingest(base: str, client_id: str, chain_id: int, work: Path, number: int) -> dict[str, Any]:
    """Ingest a sample bag with 档号 ...-000<number> over HTTP; the registry's answer."""
    folder = work / f"package-{number}"
    bag = make_sample_bag(folder / "bag", **{"档号": f"J001-WS·2023-Y-BGS-000{number}"})
    archive = Path(shutil.make_archive(str(folder / "bag"), "zip", bag.parent, "bag"))
    submission = sign_bag(archive, CLIENT_KEY, chain_id, folder / "scratch")
    payload = {
        "bag": base64.b64encode(archive.read_bytes()).decode(),
        "records": submission.records,
    }
    body, headers = signed(CLIENT_KEY, client_id, "POST", "/v1/archives/packages", payload)
    answer = httpx.post(f"{base}/v1/archives/packages", content=body, headers=headers, timeout=120)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def wipe(settings: RegistrySettings) -> None:
    """Lose the registry: its data dir, and on PostgreSQL every table."""
    shutil.rmtree(settings.data_dir)
    if settings.database_url:
        engine = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def store_versions(store: LocalArchiveStore) -> set[tuple[str, int]]:
    return {
        (package, version) for package in store.package_ids() for version in store.versions(package)
    }


def test_backup_under_load_survives_sigkill_and_wipe(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(
        trust_chain, tmp_path / "registry", database_url, max_upload_bytes=4 * 1024 * 1024
    )
    db = Database.open(settings)
    client, _key = new_client(db, ("notarize", "verify", "licenses"))
    db.close()
    port = free_port()
    environment = registry_environment(settings) | {"LIANXIN_REGISTRY_PORT": str(port)}
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "registry.log"
    with ChainReader(trust_chain.chain.url) as reader:
        chain_id, validators = reader.chain_id(), reader.validators()
    notary = bytes.fromhex(trust_chain.addresses["notary"][2:])
    backup = tmp_path / "backup"
    process = start_registry(environment, log, START_TIMEOUT_S)
    load = Load(base, client.id)
    loader = threading.Thread(target=load.run, daemon=True)
    try:
        first = ingest(base, client.id, chain_id, tmp_path, 1)
        with TrustClient(base, client.id, CLIENT_KEY, timeout=30) as trust:
            issued = trust.issue_license(license_request())
        loader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(load.acknowledged) < BEFORE_BACKUP_RECORDS:
            assert time.monotonic() < deadline and loader.is_alive(), load.errors
            time.sleep(0.05)
        during: dict[str, Any] = {}
        concurrent = threading.Thread(
            target=lambda: during.update(ingest(base, client.id, chain_id, tmp_path, 2))
        )
        backup_began = time.monotonic()
        before = [entry for entry in load.acknowledged if entry[2] < backup_began]
        concurrent.start()
        made = registry_cli(environment, "backup", str(backup))
        assert made.returncode == 0, made.stderr
        concurrent.join(timeout=COMMAND_TIMEOUT_S)
        assert "archives:" in made.stderr  # progress on stderr
        manifest = json.loads((backup / "backup.json").read_text(encoding="utf-8"))
        assert manifest["database"]["rowCounts"]["records"] >= len(before)
        time.sleep(0.5)  # the load goes on after the backup: lost with the kill
    finally:
        process.kill()
        process.wait(timeout=30)
        load.stop.set()
        loader.join(timeout=30)
    assert len(load.acknowledged) > len(before)

    wipe(settings)
    restored = registry_cli(environment, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    summary = json.loads(restored.stdout)
    assert summary["rowCounts"] == manifest["database"]["rowCounts"]
    assert summary["archivePackages"] == len(manifest["archives"]["packages"])

    process = start_registry(environment, log, START_TIMEOUT_S)
    try:
        with TrustClient(base, client.id, CLIENT_KEY, timeout=10) as trust:
            for record_id, digest, _at in before:
                record = trust.wait_until_anchored(record_id, timeout=ANCHOR_TIMEOUT_S)
                assert record.bundle is not None
                verdict = verify_bundle(
                    record.bundle, validators, chain_id=chain_id, expected_digest=digest,
                    notary=notary,
                )  # fmt: skip
                assert verdict.valid, (record_id, verdict.failures)
            _check_license(trust, issued.identifier, validators, chain_id, trust_chain)
        _check_store_and_rows(settings, first["packageId"], during.get("packageId"))
        _check_dip(base, client.id, first["packageId"], validators, chain_id, tmp_path)
    finally:
        process.kill()
        process.wait(timeout=30)


def _check_store_and_rows(settings: RegistrySettings, first: str, during: str | None) -> None:
    """Every stored version has its rows and every row its files, each file matching its
    package's SM3 manifest; the package of the first ingest is there."""
    store = LocalArchiveStore(settings.data_dir / "archives")
    db = Database.open(settings)
    try:
        with db.read_session() as session:
            rows = {(r.package_id, r.version): r for r in session.query(ArchivePackageRow)}
            files: dict[tuple[str, int], dict[str, str]] = {}
            for f in session.query(ArchiveFileRow):
                files.setdefault((f.package_id, f.version), {})[f.path] = f.sm3
    finally:
        db.close()
    assert store_versions(store) == set(rows)
    assert (first, 1) in rows
    if during is not None:  # wholly there or wholly absent
        assert ((during, 1) in rows) == bool(store.versions(during))
    for package_id, version in rows:
        stored = store.read_version(package_id, version)
        assert stored.root == rows[(package_id, version)].root
        bag = store.bag_path(package_id, version)
        for entry in stored.entries:
            assert sm3_file(bag / entry.path)[0] == entry.sm3, (package_id, entry.path)
        assert files[(package_id, version)] == {e.path: e.sm3 for e in stored.entries}


def _check_license(
    trust: TrustClient, identifier: str, validators: Any, chain_id: int, chain: TrustChain
) -> None:
    """The license issued before the backup is served and its bundle verifies offline."""
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        try:
            bundle = trust.license_bundle(identifier)
            break
        except RegistryError as exc:  # 503 until the issuing block is certified
            assert exc.status_code == 503 and time.monotonic() < deadline, exc
            time.sleep(0.2)
    verdict = verify_license_bundle(
        bundle,
        validators,
        chain_id=chain_id,
        expected_identifier=identifier,
        license_registry=bytes.fromhex(chain.addresses["license_registry"][2:]),
    )
    assert verdict.valid, verdict.failures
    assert trust.license_status(identifier).identifier == identifier


def _check_dip(
    base: str, client_id: str, package_id: str, validators: Any, chain_id: int, work: Path
) -> None:
    """The restored package's access copy verifies offline, once its records are anchored."""
    path = f"/v1/archives/packages/{package_id}/dip"
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        body, headers = signed(CLIENT_KEY, client_id, "POST", path, {"purpose": "查档：恢复演练"})
        answer = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=60)
        if answer.status_code == 200:
            break
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)
    dip = work / "restored.dip.zip"
    dip.write_bytes(answer.content)
    verdict = verify_dip(dip, validators, chain_id=chain_id)
    assert verdict.valid, verdict.failures
