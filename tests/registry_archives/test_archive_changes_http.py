"""Over HTTP, on the session's dev chain: a bag streamed to the archive's spool (capped, 413
leaving nothing; a 200 MB upload never held in memory) and ingested from it; a format
migration and a disposal by the owning department only, each signed by it and recorded as
custody events; disposal refused for a 永久 package and before the retention period ends;
the scheduled fixity audit stopped mid-audit and continued, naming the changed file."""

from __future__ import annotations

import shutil
import time
import tracemalloc
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from archive_samples import make_sample_bag, standard_files
from fastapi.testclient import TestClient
from registry_harness import CLIENT_KEY, DEPARTMENT_USCC, TrustChain, new_client, registry_settings
from registry_harness import signed as signed_request
from sqlalchemy import select

from archives.audit import FindingKind
from archives.custody import EventType, Outcome
from archives.four_properties import Stage
from archives.hashing import new_hasher
from archives.ingest import DisposalApproval, check_submission, dispose, store_version
from archives.store import Lineage
from archives.submission import sign_bag, sign_disposal, upload_headers
from chain.crypto import PrivateKey
from registry.app import create_app
from registry.archives.auditing import CHECKPOINT_NAME
from registry.archives.models import ArchiveAuditRow, ArchiveFileRow
from registry.archives.scheduler import AuditWorker
from registry.archives.service import ArchiveService
from registry.archives.settings import ArchiveSettings
from registry.archives.upload import CONTENT_SM3_HEADER
from registry.db import Database
from registry.models import Record
from sdk.chain_reader import ChainReader
from sdk.trust_core import signed_headers

pytestmark = pytest.mark.no_database

MIB = 1024 * 1024
LARGE_UPLOAD_MIB = 200
ANCHOR_TIMEOUT_S = 60.0
MEMORY_BOUND = 50 * MIB
"""Most memory a 200 MB upload may take above what was in use before it."""


@dataclass
class Served:
    http: TestClient
    db: Database
    client_id: str
    other_id: str
    other_key: PrivateKey
    chain_id: int
    work: Path

    @property
    def service(self) -> ArchiveService:
        return self.http.app.state.archives  # type: ignore[attr-defined,no-any-return]

    def post(self, path: str, payload: Any, *, as_other: bool = False) -> Any:
        key, client = (self.other_key, self.other_id) if as_other else (CLIENT_KEY, self.client_id)
        body, headers = signed_request(key, client, "POST", path, payload)
        return self.http.post(path, content=body, headers=headers)

    def get(self, path: str) -> Any:
        _body, headers = signed_request(CLIENT_KEY, self.client_id, "GET", path)
        return self.http.get(path, headers=headers)

    def upload(self, archive: Path) -> Any:
        headers = upload_headers(CLIENT_KEY, self.client_id, archive)
        return self.http.post("/v1/archives/uploads", content=archive.read_bytes(), headers=headers)


@pytest.fixture(scope="module")
def served(trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("archive-changes")
    settings = registry_settings(trust_chain, work / "registry", None)
    app = create_app(settings)
    with TestClient(app) as http:
        state = app.state.registry
        app.state.archives = ArchiveService(
            state.db, state.chain, settings, ArchiveSettings(store_dir=work / "store")
        )
        client, _key = new_client(state.db)
        other_key = PrivateKey.generate()
        other, _ = new_client(
            state.db, key=other_key, uscc=DEPARTMENT_USCC, name="另一部门 (not the owner)"
        )
        reader = ChainReader(trust_chain.chain.url)
        yield Served(http, state.db, client.id, other.id, other_key, reader.chain_id(), work)
        reader.close()


def _zip(served: Served, name: str, files: dict[str, bytes] | None = None, **info: str) -> Path:
    bag = make_sample_bag(served.work / name / "bag", files, **info)
    return Path(shutil.make_archive(str(served.work / name / "bag"), "zip", bag.parent, "bag"))


def _ingest(served: Served, name: str, files: dict[str, bytes] | None = None, **info: str) -> Any:
    archive = _zip(served, name, files, **info)
    uploaded = served.upload(archive)
    assert uploaded.status_code == 201, uploaded.text
    submission = sign_bag(archive, CLIENT_KEY, served.chain_id, served.work / name / "scratch")
    answer = served.post(
        "/v1/archives/packages",
        {"upload": uploaded.json()["upload"], "records": submission.records},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_streamed_upload_is_ingested_and_used_up(served: Served) -> None:
    archive = _zip(served, "streamed", 档号="J001-WS·2023-Y-BGS-0101")
    uploaded = served.upload(archive)
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["upload"]
    assert uploaded.json()["size"] == archive.stat().st_size
    assert len(served.service.spool.files()) == 1
    submission = sign_bag(archive, CLIENT_KEY, served.chain_id, served.work / "streamed" / "s")
    ingested = served.post(
        "/v1/archives/packages", {"upload": upload_id, "records": submission.records}
    )
    assert ingested.status_code == 201, ingested.text
    assert ingested.json()["root"] == submission.root
    assert served.service.spool.files() == []
    again = served.post("/v1/archives/packages", {"upload": upload_id, "records": {}})
    assert again.status_code == 422 and again.json()["error"]["code"] == "upload_not_found"
    both = served.post("/v1/archives/packages", {"upload": upload_id, "bag": "", "records": {}})
    assert both.status_code == 422


def test_an_upload_over_the_cap_is_refused_and_leaves_nothing(served: Served) -> None:
    spool = served.service.spool
    cap = spool.max_bytes
    spool.max_bytes = 10_000
    try:
        body = b"\x00" * 20_000
        digest = new_hasher("sm3")
        digest.update(body)
        headers = signed_headers(
            CLIENT_KEY,
            client_id=served.client_id,
            method="POST",
            path="/v1/archives/uploads",
            body=body,
        ) | {CONTENT_SM3_HEADER: digest.hexdigest()}
        declared = served.http.post("/v1/archives/uploads", content=body, headers=headers)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "payload_too_large"
        headers = signed_headers(
            CLIENT_KEY,
            client_id=served.client_id,
            method="POST",
            path="/v1/archives/uploads",
            body=body,
        ) | {CONTENT_SM3_HEADER: digest.hexdigest()}
        chunked = served.http.post(
            "/v1/archives/uploads", content=iter([body[:6_000], body[6_000:]]), headers=headers
        )
        assert chunked.status_code == 413
        assert spool.files() == []
    finally:
        spool.max_bytes = cap
    small = b"not the bag that was signed"
    headers = signed_headers(
        CLIENT_KEY, client_id=served.client_id, method="POST", path="/v1/archives/uploads", body=b""
    ) | {CONTENT_SM3_HEADER: new_hasher("sm3").hexdigest()}
    mismatch = served.http.post("/v1/archives/uploads", content=small, headers=headers)
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "body_digest_mismatch"
    unsigned = served.http.post("/v1/archives/uploads", content=small)
    assert unsigned.status_code == 401
    undeclared = served.http.post(
        "/v1/archives/uploads", content=small, headers={**headers, CONTENT_SM3_HEADER: "x"}
    )
    assert undeclared.status_code == 401
    assert undeclared.json()["error"]["code"] == "missing_credentials"
    replayed = served.http.post("/v1/archives/uploads", content=small, headers=headers)
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "replayed_nonce"
    assert spool.files() == []


def test_a_large_upload_is_never_held_in_memory(served: Served) -> None:
    block = bytes(range(256)) * (MIB // 256)
    hasher = new_hasher("sm3")
    for _ in range(LARGE_UPLOAD_MIB):
        hasher.update(block)
    digest = hasher.hexdigest()
    headers = signed_headers(
        CLIENT_KEY,
        client_id=served.client_id,
        method="POST",
        path="/v1/archives/uploads",
        body=b"",
        body_sm3=digest,
    ) | {CONTENT_SM3_HEADER: digest, "content-type": "application/octet-stream"}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/archives/uploads",
        "raw_path": b"/v1/archives/uploads",
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    delivered = 0
    answer: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if delivered < LARGE_UPLOAD_MIB:
            delivered += 1
            return {
                "type": "http.request",
                "body": block,
                "more_body": delivered < LARGE_UPLOAD_MIB,
            }
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        answer.append(message)

    async def upload() -> None:
        await served.http.app(scope, receive, send)

    portal = served.http.portal
    assert portal is not None
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        portal.call(upload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer[0]["status"] == 201, answer
    assert delivered == LARGE_UPLOAD_MIB
    assert peak - baseline < MEMORY_BOUND, (peak - baseline) / MIB
    [stored] = served.service.spool.files()
    assert stored.stat().st_size == LARGE_UPLOAD_MIB * MIB
    stored.unlink()


def test_a_migration_by_the_owner_keeps_lineage(served: Served) -> None:
    ingested = _ingest(served, "to-migrate", 档号="J001-WS·2023-Y-BGS-0201")
    package_id = ingested["packageId"]
    files = standard_files()
    files["0004.txt"] = "关于印发某区档案工作要点的通知（UTF-8）\n".encode()
    migrated = _zip(served, "migrated", files, 档号="J001-WS·2023-Y-BGS-0201")
    records = sign_bag(migrated, CLIENT_KEY, served.chain_id, served.work / "m", version=2)
    path = f"/v1/archives/packages/{package_id}/migrations"

    def request(upload: str, signed_records: dict[str, Any]) -> dict[str, Any]:
        return {
            "upload": upload,
            "tool": "iconv",
            "toolVersion": "2.36",
            "parameters": {"to": "UTF-8"},
            "records": signed_records,
        }

    upload = served.upload(migrated).json()["upload"]
    other = served.post(path, request(upload, records.records), as_other=True)
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_package_owner"
    unsigned_by_owner = served.post(path, request(upload, {}))
    assert unsigned_by_owner.status_code == 422
    assert unsigned_by_owner.json()["error"]["code"] == "archive_records_mismatch"
    assert served.service.store.versions(package_id) == [1]

    upload = served.upload(migrated).json()["upload"]
    answer = served.post(path, request(upload, records.records))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["version"] == 2 and body["root"] == records.root
    assert body["lineage"]["previousRoot"] == ingested["root"]
    assert body["lineage"]["tool"] == "iconv" and body["lineage"]["parameters"] == {"to": "UTF-8"}
    assert body["report"]["stage"] == "preservation"
    assert [e["eventType"] for e in body["events"]][:2] == ["migration", "validation"]
    view = served.get(f"/v1/archives/packages/{package_id}").json()
    assert [v["version"] for v in view["versions"]] == [1, 2]
    assert view["events"][len(ingested["events"])]["eventType"] == "migration"
    assert served.service.store.versions(package_id) == [1, 2]
    with served.db.read_session() as session:
        signers = set(
            session.scalars(
                select(Record.client_id)
                .join(ArchiveFileRow, ArchiveFileRow.record_id == Record.id)
                .where(ArchiveFileRow.package_id == package_id, ArchiveFileRow.version == 2)
            )
        )
        signatures = set(
            session.scalars(
                select(Record.department_signature)
                .join(ArchiveFileRow, ArchiveFileRow.record_id == Record.id)
                .where(ArchiveFileRow.package_id == package_id, ArchiveFileRow.version == 2)
            )
        )
    assert signers == {served.client_id} and None not in signatures

    broken = standard_files()
    broken["0001.pdf"] = b"%PDF-1.7 this is no PDF at all"
    failing = _zip(served, "failing", broken, 档号="J001-WS·2023-Y-BGS-0201")
    failing_records = sign_bag(failing, CLIENT_KEY, served.chain_id, served.work / "f", version=3)
    upload = served.upload(failing).json()["upload"]
    refused = served.post(path, request(upload, failing_records.records))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "ingest_refused"
    assert any(item["verdict"] == "FAIL" for item in refused.json()["error"]["details"]["items"])
    assert served.service.store.versions(package_id) == [1, 2]


def _approval(approved_by: str = "档案鉴定委员会") -> DisposalApproval:
    return DisposalApproval(
        "鉴销〔2026〕9号", approved_by, datetime(2026, 5, 20, 9, 0, tzinfo=UTC), "保管期限届满"
    )


def _disposal(served: Served, package_id: str, approval: DisposalApproval, roots: list[str]) -> Any:
    body = {
        "approval": approval.to_json(),
        "records": sign_disposal(
            CLIENT_KEY, served.chain_id, package_id, approval.to_json(), roots
        ),
    }
    return body


def test_disposal_by_the_owner_after_the_retention_period(served: Served) -> None:
    ingested = _ingest(
        served, "expired", 档号="J001-WS·2010-D10-BGS-0001", 形成时间="2010", 保管期限="10年"
    )
    package_id, roots = ingested["packageId"], [ingested["root"]]
    path = f"/v1/archives/packages/{package_id}/disposal"
    approval = _approval()
    body = _disposal(served, package_id, approval, roots)
    other = served.post(path, body, as_other=True)
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_package_owner"
    wrong_roots = served.post(path, _disposal(served, package_id, approval, ["00" * 32]))
    assert wrong_roots.status_code == 422
    assert wrong_roots.json()["error"]["code"] == "archive_record_wrong"
    assert served.service.store.versions(package_id) == [1]

    answer = served.post(path, body)
    assert answer.status_code == 200, answer.text
    tombstone = answer.json()
    assert [v["root"] for v in tombstone["destroyed"]] == roots
    assert tombstone["disposableFrom"] == "2021-01-01"
    assert tombstone["approval"]["approvalId"] == "鉴销〔2026〕9号"
    assert served.service.store.versions(package_id) == []
    last = served.service.history(package_id)[-1]
    assert last.event_type is EventType.DISPOSAL
    assert last.detail["departmentRecord"] == tombstone["departmentRecord"]
    assert last.detail["destroyedRoots"] == roots
    view = served.get(f"/v1/archives/packages/{package_id}").json()
    assert view["versions"][0]["disposedAt"] is not None
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        with served.db.read_session() as session:
            record = session.scalars(
                select(Record).where(Record.id == tombstone["departmentRecord"])
            ).one()
        assert record.client_id == served.client_id
        assert record.digest == tombstone["departmentCommitment"]
        if record.status == "anchored":
            break
        assert time.monotonic() < deadline, record.status
        time.sleep(0.2)
    again = served.post(path, body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "package_disposed"


@pytest.mark.parametrize(
    ("code", "formed", "retention", "error"),
    [
        ("J001-WS·1990-Y-BGS-0001", "1990", "永久", "retention_permanent"),
        ("J001-WS·2020-D10-BGS-0001", "2020", "10年", "retention_not_expired"),
    ],
)
def test_disposal_is_refused_for_permanent_and_unexpired_packages(
    served: Served, code: str, formed: str, retention: str, error: str
) -> None:
    ingested = _ingest(served, f"kept-{formed}", 档号=code, 形成时间=formed, 保管期限=retention)
    package_id = ingested["packageId"]
    body = _disposal(served, package_id, _approval(), [ingested["root"]])
    answer = served.post(f"/v1/archives/packages/{package_id}/disposal", body)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == error
    assert served.service.store.versions(package_id) == [1]
    assert served.service.history(package_id)[-1].event_type is not EventType.DISPOSAL
    self_approved = _disposal(
        served, package_id, _approval("区行政审批局 (11100000000013338W)"), []
    )
    refused = served.post(f"/v1/archives/packages/{package_id}/disposal", self_approved)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "disposal_refused"
    assert served.service.store.versions(package_id) == [1]


def test_the_scheduled_audit_continues_after_being_stopped_mid_audit(served: Served) -> None:
    files = {f"{n:04d}.txt": f"第{n}件 文书\n".encode() for n in range(1, 151)}
    ingested = _ingest(served, "many-files", files, 档号="J001-WS·2023-Y-BGS-0301", 件数="150")
    package_id = ingested["packageId"]
    service = served.service
    checkpoint = service.store.root / CHECKPOINT_NAME
    with served.db.read_session() as session:
        audits_before = session.query(ArchiveAuditRow).count()

    first = AuditWorker(service, 3600.0)
    first.progress = lambda _files, _bytes: first.request_stop()
    first.start()
    deadline = time.monotonic() + 120
    while first.running and time.monotonic() < deadline:
        time.sleep(0.1)
    first.stop()
    assert first.finished == []
    assert checkpoint.exists()
    hashed = len(checkpoint.read_text(encoding="utf-8").splitlines()) - 1
    assert hashed > 0
    with served.db.read_session() as session:
        assert session.query(ArchiveAuditRow).count() == audits_before

    changed = service.store.bag_path(package_id, 1) / "data" / "0150.txt"
    changed.chmod(0o644)
    changed.write_bytes("第150件 文书，被改写过的内容\n".encode())
    second = AuditWorker(service, 3600.0)
    assert second.due_in() == 0.0  # an interrupted audit continues at once
    second.start()
    deadline = time.monotonic() + 180
    while not second.finished and time.monotonic() < deadline:
        time.sleep(0.2)
    second.stop()
    [result] = second.finished
    assert result.resumed_files == hashed
    every_file = sum(len(service.store.read_version(p, v).entries) for p, v in result.packages)
    assert result.files == every_file - hashed
    assert [(f.package_id, f.path, f.kind) for f in result.findings] == [
        (package_id, "data/0150.txt", FindingKind.CHANGED)
    ]
    assert not checkpoint.exists()
    assert 3590 < second.due_in() <= 3600
    fixity = [e for e in service.history(package_id) if e.event_type is EventType.FIXITY_CHECK]
    assert fixity[-1].outcome is Outcome.FAILURE
    assert [f["path"] for f in fixity[-1].detail["findings"]] == ["data/0150.txt"]
    health = served.http.get("/v1/archives/health").json()
    assert health["status"] == "fixity_failed"
    assert [f["path"] for f in health["findings"]] == ["data/0150.txt"]


def test_the_registry_runs_the_audits_on_schedule(
    trust_chain: TrustChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIANXIN_ARCHIVES_AUDIT_INTERVAL_S", "0.5")
    settings = registry_settings(trust_chain, tmp_path / "registry", None)
    with TestClient(create_app(settings)) as http:
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        deadline = time.monotonic() + 120
        audits = 0
        while audits < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            with db.read_session() as session:
                audits = session.query(ArchiveAuditRow).count()
        assert audits >= 2
        assert http.get("/v1/archives/health").json()["status"] == "ok"


def test_a_migration_and_a_disposal_cut_short_by_a_crash_are_finished_by_asking_again(
    served: Served,
) -> None:
    info = {"档号": "J001-WS·2012-D10-BGS-0001", "形成时间": "2012", "保管期限": "10年"}
    ingested = _ingest(served, "crash", None, **info)
    package_id = ingested["packageId"]
    files = standard_files()
    files["0004.txt"] = "迁移后的文本\n".encode()
    migrated = _zip(served, "crash-migrated", files, **info)
    lineage = Lineage(1, ingested["root"], "iconv", "2.36", {"to": "UTF-8"})
    # The new version reached the store; the database never heard of it.
    reading, report = check_submission(
        migrated, served.work / "crash-scratch", stage=Stage.PRESERVATION, now=datetime.now(UTC)
    )
    store_version(
        served.service.store, reading, report, package_id=package_id, version=2, lineage=lineage
    )
    records = sign_bag(migrated, CLIENT_KEY, served.chain_id, served.work / "c", version=2)
    upload = served.upload(migrated).json()["upload"]
    answer = served.post(
        f"/v1/archives/packages/{package_id}/migrations",
        {
            "upload": upload,
            "tool": "iconv",
            "toolVersion": "2.36",
            "parameters": {"to": "UTF-8"},
            "records": records.records,
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["root"] == records.root
    roots = [ingested["root"], records.root]

    # The package was destroyed; the database never heard of it.
    approval = _approval()
    dispose(
        served.service.store,
        package_id,
        approval,
        carried_out_by="区行政审批局 (11100000000013338W)",
        today=datetime.now(UTC).date(),
    )
    finished = served.post(
        f"/v1/archives/packages/{package_id}/disposal",
        _disposal(served, package_id, approval, roots),
    )
    assert finished.status_code == 200, finished.text
    assert [v["root"] for v in finished.json()["destroyed"]] == roots
    last = served.service.history(package_id)[-1]
    assert last.event_type is EventType.DISPOSAL and last.detail["destroyedRoots"] == roots


def test_the_reading_budget_setting_reaches_the_usability_check(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ArchiveSettings(_env_file=None).read_budget_s == 600.0
    monkeypatch.setenv("LIANXIN_ARCHIVES_READ_BUDGET_S", "0.000001")
    monkeypatch.setattr(
        served.service, "settings", ArchiveSettings(store_dir=served.work / "store")
    )
    answer = _ingest(served, "budget-spent", 档号="J001-WS·2023-Y-BGS-0401")
    items = {item["code"]: item for item in answer["report"]["items"]}
    opens = items["usability.opens"]
    assert opens["verdict"] == "NOT_CHECKED", opens
    assert "reading budget" in str(opens), opens
