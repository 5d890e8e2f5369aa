"""The served archive, end to end on the session's dev chain: a department ingests a bag
made by bagit over HTTP with its own signatures, every file is anchored, the catalogue finds
it, a migration keeps lineage, an access copy (DIP) is logged and verifies offline down to
each file after the registry is gone, an audit finds a changed file and says so in the
health answer, and a package kept 永久 is never disposed of."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from archive_samples import make_sample_bag, standard_files
from fastapi.testclient import TestClient
from registry_harness import CLIENT_KEY, TrustChain, new_client, registry_settings, signed
from sqlalchemy import select

from archives.custody import EventType, Outcome
from archives.four_properties import Stage
from archives.hashing import sm3_hex
from archives.ingest import DisposalApproval, check_submission, package_id_for, store_version
from archives.submission import sign_bag
from chain.commit import ValidatorSet
from registry.app import create_app
from registry.archives.auditing import run_audit
from registry.archives.lifecycle import dispose_package, migrate
from registry.archives.models import ArchiveEventRow, ArchiveFileRow
from registry.archives.service import ArchiveService
from registry.db import Database
from registry.errors import Conflict
from registry.models import Record
from sdk.archive_bundle import verify_dip
from sdk.canonical import canonical_json
from sdk.chain_reader import ChainReader

pytestmark = pytest.mark.no_database

ANCHOR_TIMEOUT_S = 60.0


@dataclass
class Served:
    http: TestClient
    db: Database
    client_id: str
    chain_id: int
    validators: ValidatorSet
    work: Path
    genesis: Path

    def post(self, path: str, payload: Any) -> Any:
        body, headers = signed(CLIENT_KEY, self.client_id, "POST", path, payload)
        return self.http.post(path, content=body, headers=headers)

    def get(self, path: str) -> Any:
        _body, headers = signed(CLIENT_KEY, self.client_id, "GET", path)
        return self.http.get(path, headers=headers)

    @property
    def service(self) -> ArchiveService:
        return self.http.app.state.archives  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module")
def served(trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("archives")
    settings = registry_settings(
        trust_chain, work / "registry", None, max_upload_bytes=4 * 1024 * 1024
    )
    app = create_app(settings)
    with TestClient(app) as http:
        db: Database = app.state.registry.db
        client, _key = new_client(db)
        reader = ChainReader(trust_chain.chain.url)
        yield Served(
            http,
            db,
            client.id,
            reader.chain_id(),
            reader.validators(),
            work,
            trust_chain.chain.root / "genesis.toml",
        )
        reader.close()


def _ingest(
    served: Served, name: str, *, stored_before_a_crash: bool = False, **info: str
) -> tuple[dict[str, Any], Path]:
    bag = make_sample_bag(served.work / name / "bag", **info)
    if stored_before_a_crash:
        # The AIP reached the store, the database never heard of it.
        assert served.http.get("/v1/archives/health").json()["status"] == "not_audited"
        reading, report = check_submission(
            bag, served.work / name, stage=Stage.INGEST, now=datetime.now(UTC)
        )
        package_id = package_id_for("J001", str(reading.info["档号"]))
        store_version(
            served.service.store, reading, report, package_id=package_id, version=1, lineage=None
        )
    archive = Path(shutil.make_archive(str(served.work / name / "bag"), "zip", bag.parent, "bag"))
    submission = sign_bag(archive, CLIENT_KEY, served.chain_id, served.work / name / "scratch")
    answer = served.post(
        "/v1/archives/packages",
        {"bag": base64.b64encode(archive.read_bytes()).decode(), "records": submission.records},
    )
    assert answer.status_code == 201, answer.text
    return answer.json(), bag


def _wait_anchored(served: Served, package_id: str) -> None:
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        with served.db.read_session() as session:
            ids = [r.record_id for r in session.scalars(select(ArchiveFileRow))]
            ids += [r.record_id for r in session.scalars(select(ArchiveEventRow))]
            states = set(session.scalars(select(Record.status).where(Record.id.in_(ids))))
        if states == {"anchored"}:
            return
        assert time.monotonic() < deadline, f"not anchored: {states}"
        time.sleep(0.2)


def test_ingest_access_audit_migrate_dispose(served: Served) -> None:
    ingested, _bag = _ingest(served, "first", stored_before_a_crash=True)
    package_id = ingested["packageId"]
    assert ingested["report"]["verdict"] == "NOT_CHECKED"  # no virus scanner here
    assert [e["eventType"] for e in ingested["events"]] == [
        "ingestion",
        "validation",
        "format identification",
        "virus check",
    ]
    assert ingested["events"][0]["detail"]["root"] == ingested["root"]

    again = served.post(
        "/v1/archives/packages",
        {"bag": base64.b64encode(b"not a bag at all").decode(), "records": {}},
    )
    assert again.status_code == 422 and again.json()["error"]["code"] == "unsafe_archive"

    found = served.get("/v1/archives/packages?archival_code=J001-WS&formed_from=2023-06-01")
    assert [p["packageId"] for p in found.json()] == [package_id]
    assert served.get(f"/v1/archives/packages?title={quote('不存在')}").json() == []
    report = served.get(f"/v1/archives/packages/{package_id}/report").json()
    assert {item["code"] for item in report["items"]} >= {"authenticity.digests"}
    pdf = served.get(f"/v1/archives/packages/{package_id}/report.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert sm3_hex(pdf.content) == ingested["events"][0]["detail"]["reportPdfSm3"]
    assert sm3_hex(canonical_json(report)) == ingested["events"][0]["detail"]["reportSm3"]

    _wait_anchored(served, package_id)
    dip = served.post(f"/v1/archives/packages/{package_id}/dip", {"purpose": "查档：工作查考"})
    assert dip.status_code == 200, dip.text
    dip_path = served.work / "copy.dip.zip"
    dip_path.write_bytes(dip.content)
    history = served.get(f"/v1/archives/packages/{package_id}").json()["events"]
    assert history[-1]["eventType"] == "access"
    assert history[-1]["detail"]["purpose"] == "查档：工作查考"

    # A migration keeps lineage; the old version stays.
    files = standard_files()
    files["0004.txt"] = "关于印发某区档案工作要点的通知（UTF-8）\n".encode()
    migrated = make_sample_bag(served.work / "migrated", files)
    now = datetime.now(UTC)
    version = migrate(
        served.service,
        package_id,
        migrated,
        tool="iconv",
        tool_version="2.36",
        parameters={"to": "UTF-8"},
        agent="档案馆 数字化组",
        now=now,
    ).stored
    view = served.get(f"/v1/archives/packages/{package_id}").json()
    assert [v["version"] for v in view["versions"]] == [1, 2]
    assert view["versions"][1]["lineage"]["previousRoot"] == ingested["root"]
    assert [e["eventType"] for e in view["events"]][-4:] == [
        "migration",
        "validation",
        "format identification",
        "virus check",
    ]
    assert version.lineage is not None and version.lineage.tool == "iconv"

    # An audit finds the file changed behind the archive's back and says so.
    stored = served.service.store.bag_path(package_id, 1) / "data" / "0004.txt"
    stored.chmod(0o644)
    stored.write_bytes(b"rewritten behind the archive's back " * 4)
    result = run_audit(served.service)
    assert [(f.path, f.kind.value, f.version) for f in result.findings] == [
        ("data/0004.txt", "changed", 1)
    ]
    health = served.http.get("/v1/archives/health").json()
    assert health["status"] == "fixity_failed"
    assert health["findings"][0]["path"] == "data/0004.txt"
    fixity = [
        e for e in served.service.history(package_id) if e.event_type is EventType.FIXITY_CHECK
    ]
    assert [(e.detail["version"], e.outcome) for e in fixity] == [
        (1, Outcome.FAILURE),
        (2, Outcome.SUCCESS),
    ]
    assert (
        fixity[0].detail["findings"][0]["expectedSm3"]
        != fixity[0].detail["findings"][0]["actualSm3"]
    )

    # A package kept 永久 is never destroyed, whoever approves it.
    approval = DisposalApproval("鉴销〔2026〕7号", "档案鉴定委员会", now, "保管期限届满")
    with pytest.raises(Conflict) as refused:
        dispose_package(served.service, package_id, approval, agent="张三", now=now)
    assert refused.value.code == "retention_permanent"
    assert served.service.store.versions(package_id) == [1, 2]
    assert served.service.history(package_id)[-1].event_type is EventType.FIXITY_CHECK

    # The registry stops: the copy still verifies offline, down to each file.
    served.http.__exit__(None, None, None)
    verdict = verify_dip(dip_path, served.validators, chain_id=served.chain_id)
    assert verdict.valid, verdict.failures
    assert {c.subject for c in verdict.checks} >= {"data/0001.pdf", "bag-info.txt", "package root"}
    assert verdict.description["档号"] == "J001-WS·2023-Y-BGS-0001"

    tampered = served.work / "tampered.dip.zip"
    with zipfile.ZipFile(dip_path) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "files/data/0004.txt":
                data = data.replace("通知".encode(), "通告".encode())
            target.writestr(info, data)
    bad = verify_dip(tampered, served.validators, chain_id=served.chain_id)
    assert [c.subject for c in bad.failures] == ["data/0004.txt"]
    other_chain = verify_dip(dip_path, served.validators, chain_id=served.chain_id + 1)
    assert not other_chain.valid

    # The same through the command line, against the chain's genesis.
    genesis = served.genesis
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry.archives.cli",
            "verify",
            str(dip_path),
            "--genesis",
            str(genesis),
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VALID" in ok.stdout and "OK   data/0001.pdf" in ok.stdout
    bad_run = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry.archives.cli",
            "verify",
            str(tampered),
            "--genesis",
            str(genesis),
        ],
        capture_output=True,
        text=True,
    )
    assert bad_run.returncode == 1 and "FAIL data/0004.txt" in bad_run.stdout
