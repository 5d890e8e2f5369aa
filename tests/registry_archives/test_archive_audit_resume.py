"""A fixity audit of one package asked for over HTTP is run by the audit worker as the
scheduled audits are: stopped mid-audit (a shutdown), it stays running with its own
checkpoint, and the next worker continues it from there and names the changed file. The
四性 report of an audit says what its findings mean, for any findings."""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from archive_samples import make_sample_bag
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from registry_harness import CLIENT_KEY, TrustChain, new_client, registry_settings, signed

from archives.audit import FindingKind, FixityFinding
from archives.fixity_report import DIGEST_KINDS, PRESENCE_KINDS, fixity_report
from archives.four_properties import Verdict
from archives.submission import sign_bag
from registry.app import create_app
from registry.archives.auditing import CHECKPOINT_NAME
from registry.archives.scheduler import AuditWorker
from registry.archives.service import ArchiveService
from registry.archives.settings import ArchiveSettings
from sdk.chain_reader import ChainReader

pytestmark = pytest.mark.no_database

FILES = 150
WAIT_S = 180.0


@dataclass
class Served:
    http: TestClient
    client_id: str
    chain_id: int
    work: Path

    @property
    def service(self) -> ArchiveService:
        return self.http.app.state.archives  # type: ignore[attr-defined,no-any-return]

    def post(self, path: str, payload: Any) -> Any:
        body, headers = signed(CLIENT_KEY, self.client_id, "POST", path, payload)
        return self.http.post(path, content=body, headers=headers)

    def get(self, path: str) -> Any:
        _body, headers = signed(CLIENT_KEY, self.client_id, "GET", path)
        return self.http.get(path, headers=headers)


@pytest.fixture(scope="module")
def served(trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("archive-audit-resume")
    # No workers of the application's own: the audits here are run by the workers below.
    settings = registry_settings(
        trust_chain, work / "registry", None, max_upload_bytes=4 * 1024 * 1024, run_workers=False
    )
    app = create_app(settings)
    with TestClient(app) as http:
        state = app.state.registry
        app.state.archives = ArchiveService(
            state.db, state.chain, settings, ArchiveSettings(store_dir=work / "store", processes=1)
        )
        client, _key = new_client(state.db)
        reader = ChainReader(trust_chain.chain.url)
        yield Served(http, client.id, reader.chain_id(), work)
        reader.close()


def _ingest(served: Served) -> str:
    files = {f"{n:04d}.txt": f"第{n}件 文书\n".encode() for n in range(1, FILES + 1)}
    bag = make_sample_bag(
        served.work / "bag", files, 档号="J001-WS·2025-Y-BGS-0200", 件数=str(FILES)
    )
    archive = Path(shutil.make_archive(str(served.work / "bag"), "zip", bag.parent, "bag"))
    submission = sign_bag(archive, CLIENT_KEY, served.chain_id, served.work / "scratch")
    answer = served.post(
        "/v1/archives/packages",
        {"bag": base64.b64encode(archive.read_bytes()).decode(), "records": submission.records},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["packageId"])


def _run(worker: AuditWorker, until: Any) -> None:
    worker.start()
    deadline = time.monotonic() + WAIT_S
    try:
        while not until() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()


def test_a_requested_audit_stopped_midway_is_continued_by_the_next_worker(
    served: Served,
) -> None:
    package_id = _ingest(served)
    asked = served.post(f"/v1/archives/packages/{package_id}/audits", {})
    assert asked.status_code == 202, asked.text
    audit_id, location = asked.json()["auditId"], asked.json()["location"]
    checkpoint = served.service.store.root / f"{CHECKPOINT_NAME}.{audit_id}"

    first = AuditWorker(served.service, None)
    first.progress = lambda _files, _bytes: first.request_stop()
    _run(first, lambda: not first.running)
    assert first.finished == []
    stopped = served.get(location).json()
    assert stopped["status"] == "running" and stopped["finishedAt"] is None
    assert checkpoint.exists()
    hashed = len(checkpoint.read_text(encoding="utf-8").splitlines()) - 1
    assert hashed > 0

    changed = served.service.store.bag_path(package_id, 1) / "data" / f"{FILES:04d}.txt"
    changed.chmod(0o644)
    changed.write_bytes("第150件 文书，被改写过的内容\n".encode())
    again = served.post(f"/v1/archives/packages/{package_id}/audits", {})
    assert again.json()["auditId"] == audit_id and again.json()["created"] is False

    second = AuditWorker(served.service, None)
    _run(second, lambda: bool(second.finished))
    [result] = second.finished
    assert result.audit_id == audit_id and result.resumed_files == hashed
    done = served.get(location).json()
    assert done["status"] == "finished" and done["ok"] is False
    assert [(f["path"], f["kind"]) for f in done["findings"]] == [("data/0150.txt", "changed")]
    assert done["files"] == len(served.service.store.read_version(package_id, 1).entries)
    assert not checkpoint.exists()
    # Not the store's last audit: the schedule and the health answer are the whole store's.
    assert served.http.get("/v1/archives/health").json()["status"] == "not_audited"


_findings = st.lists(
    st.builds(
        FixityFinding,
        package_id=st.just("p"),
        version=st.just(1),
        path=st.text(min_size=1, max_size=20),
        kind=st.sampled_from(list(FindingKind)),
        expected_sm3=st.just("ab" * 32),
        actual_sm3=st.sampled_from(["", "cd" * 32]),
    ),
    max_size=8,
)


@given(findings=_findings)
def test_the_report_of_an_audit_fails_exactly_what_its_findings_say(
    findings: list[FixityFinding],
) -> None:
    report = fixity_report("J001-WS·2025-Y-BGS-0200", findings, 10, checked_at=datetime.now(UTC))
    digests = report.item("authenticity.digests")
    counts = report.item("integrity.counts")
    assert (digests.verdict is Verdict.FAIL) == any(f.kind in DIGEST_KINDS for f in findings)
    assert (counts.verdict is Verdict.FAIL) == any(f.kind in PRESENCE_KINDS for f in findings)
    for finding in findings:
        item = digests if finding.kind in DIGEST_KINDS else counts
        assert any(
            line.startswith(f"{finding.path}: {finding.kind.value}") for line in item.evidence
        )
    assert report.item("usability.opens").verdict is Verdict.NOT_CHECKED
    assert report.verdict is (Verdict.FAIL if findings else Verdict.NOT_CHECKED)
