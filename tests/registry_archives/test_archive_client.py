"""The archive SDK clients against a real registry process (uvicorn, on the session's dev
chain): a bag ingested from a directory, a zip and a tar, its records signed by the client
(the root it computes is the archive's); package, custody, 四性 report and its PDF, the
catalogue, an access copy written to disk that verifies offline; a migration signed for
the next version; a disposal with the approval and the signed commitment; the archive's
health as the scheduled audits leave it, a changed file named; every refusal as its typed
error; a 200 MB upload streamed from disk with the client's memory flat."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_samples import make_sample_bag, standard_files
from registry_harness import (
    CLIENT_KEY,
    DEPARTMENT_USCC,
    TrustChain,
    free_port,
    new_client,
    registry_environment,
    registry_settings,
)
from test_license_e2e import registry_process

from chain.commit import ValidatorSet
from chain.crypto import PrivateKey
from registry.db import Database
from sdk.archive_calls import (
    BagRejected,
    IngestRefused,
    NotPackageOwner,
    PackageConflict,
    PackageNotFound,
    RetentionNotExpired,
    RetentionPermanent,
    UploadTooLarge,
)
from sdk.archive_client import ArchiveClient
from sdk.archive_client_async import AsyncArchiveClient
from sdk.archive_entries import BagNotReadable, read_bag_contents
from sdk.chain_reader import ChainReader

pytestmark = pytest.mark.no_database

MIB = 1024 * 1024
UPLOAD_CAP_MIB = 210
LARGE_UPLOAD_MIB = 200
MEMORY_BOUND = 30 * MIB
"""Most memory a 200 MB upload may take in the client above what was in use before."""
DEADLINE_S = 180.0


@dataclass
class Registry:
    base: str
    owner_id: str
    other_id: str
    other_key: PrivateKey
    chain_id: int
    validators: ValidatorSet
    store: Path
    work: Path

    def owner(self, **options: Any) -> ArchiveClient:
        return ArchiveClient(self.base, self.owner_id, CLIENT_KEY, timeout=120.0, **options)

    def other(self) -> ArchiveClient:
        return ArchiveClient(self.base, self.other_id, self.other_key, timeout=120.0)


@pytest.fixture(scope="module")
def registry(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("archive-client")
    settings = registry_settings(trust_chain, work / "registry", None, max_upload_bytes=MIB)
    db = Database.open(settings)
    owner, _ = new_client(db)
    other_key = PrivateKey.generate()
    other, _ = new_client(db, key=other_key, uscc=DEPARTMENT_USCC, name="另一部门")
    db.close()
    store = work / "store"
    environment = registry_environment(settings) | {
        "LIANXIN_ARCHIVES_STORE_DIR": str(store),
        "LIANXIN_ARCHIVES_MAX_UPLOAD_BYTES": str(UPLOAD_CAP_MIB * MIB),
        "LIANXIN_ARCHIVES_AUDIT_INTERVAL_S": "2",
        "LIANXIN_ARCHIVES_PROCESSES": "1",
    }
    reader = ChainReader(trust_chain.chain.url)
    with registry_process(environment, free_port(), work / "registry.log") as base:
        yield Registry(
            base,
            owner.id,
            other.id,
            other_key,
            reader.chain_id(),
            reader.validators(),
            store,
            work,
        )
    reader.close()


def _bag(registry: Registry, name: str, files: dict[str, bytes] | None = None, **info: str) -> Path:
    return make_sample_bag(registry.work / name / "bag", files, **info)


def _zip(bag: Path) -> Path:
    return Path(shutil.make_archive(str(bag), "zip", bag.parent, bag.name))


def _tar(bag: Path) -> Path:
    target = bag.parent / "bag.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        archive.add(bag, arcname="bag")
    return target


def _verified_dip(client: ArchiveClient, registry: Registry, package_id: str) -> Any:
    """Take access copies until every record in one is anchored, and verify it offline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        target = registry.work / f"{package_id}.dip.zip"
        assert client.export_dip(package_id, target, purpose="档案利用：测试") == target
        verdict = ArchiveClient.verify_dip(target, registry.validators, chain_id=registry.chain_id)
        if verdict.valid:
            return verdict
        assert time.monotonic() < deadline, verdict.failures
        time.sleep(1.0)


def test_ingest_read_and_verify_an_access_copy_offline(registry: Registry) -> None:
    bag = _bag(registry, "directory", 档号="J001-WS·2024-Y-BGS-0001")
    contents = read_bag_contents(bag)
    sent: list[tuple[int, int]] = []
    with registry.owner() as client:
        stored = client.ingest(bag, progress=lambda done, total: sent.append((done, total)))
        assert stored.version == 1 and stored.lineage is None
        assert (stored.package_id, stored.root) == (contents.package_id, contents.root)
        assert sent and sent[-1][0] == sent[-1][1] > 0
        assert [event["eventType"] for event in stored.events][:2] == ["ingestion", "validation"]

        package = client.package(stored.package_id)
        assert [v.version for v in package.versions] == [1]
        assert package.latest.root == stored.root and package.latest.disposed_at is None
        assert client.custody(stored.package_id)[: len(stored.events)] == stored.events
        report = client.report(stored.package_id)
        assert report["stage"] == "ingest" and report == stored.report
        assert client.report(stored.package_id, version=1) == report
        assert client.report_pdf(stored.package_id).startswith(b"%PDF")
        found = client.search(archival_code="J001-WS·2024-Y-BGS-0001")
        assert [row["packageId"] for row in found] == [stored.package_id]
        assert client.search(archival_code="J001-WS·1900") == []

        verdict = _verified_dip(client, registry, stored.package_id)
        assert {c.subject for c in verdict.checks} >= {"data/0001.pdf", "package root"}
        assert client.custody(stored.package_id)[-1]["eventType"] == "access"

        with pytest.raises(PackageConflict) as again:
            client.ingest(bag)
        assert again.value.code == "package_exists"
        with pytest.raises(ValueError):
            client.report(stored.package_id, version=0)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_zip_or_tar_bag_is_ingested_with_the_root_it_signed(
    registry: Registry, kind: str
) -> None:
    bag = _bag(
        registry, f"packed-{kind}", 档号=f"J001-WS·2024-Y-BGS-01{['zip', 'tar'].index(kind):02d}"
    )
    packed = _zip(bag) if kind == "zip" else _tar(bag)
    assert read_bag_contents(packed).root == read_bag_contents(bag).root
    with registry.owner() as client:
        stored = client.ingest(packed)
    assert stored.root == read_bag_contents(packed).root


def test_a_migration_is_signed_for_the_next_version_by_its_owner_only(registry: Registry) -> None:
    code = "J001-WS·2024-Y-BGS-0201"
    with registry.owner() as client, registry.other() as other:
        first = client.ingest(_bag(registry, "to-migrate", 档号=code))
        files = standard_files()
        files["0004.txt"] = "关于印发某区档案工作要点的通知（UTF-8）\n".encode()
        migrated = _bag(registry, "migrated", files, 档号=code)
        with pytest.raises(NotPackageOwner) as refused:
            other.migrate(first.package_id, migrated, tool="iconv", tool_version="2.36")
        assert refused.value.status_code == 403 and refused.value.code == "not_package_owner"

        second = client.migrate(
            first.package_id,
            migrated,
            tool="iconv",
            tool_version="2.36",
            parameters={"to": "UTF-8"},
        )
        assert second.version == 2 and second.root == read_bag_contents(migrated).root
        assert second.lineage is not None and second.lineage["previousRoot"] == first.root
        assert second.lineage["parameters"] == {"to": "UTF-8"}
        assert [v.version for v in client.package(first.package_id).versions] == [1, 2]

        broken = standard_files()
        broken["0001.pdf"] = b"%PDF-1.7 this is no PDF at all"
        failing = _bag(registry, "failing", broken, 档号=code)
        with pytest.raises(IngestRefused) as fails:
            client.migrate(first.package_id, failing, tool="iconv", tool_version="2.36")
        assert fails.value.status_code == 422 and fails.value.report["stage"] == "preservation"
        assert fails.value.failed_items
        assert [v.version for v in client.package(first.package_id).versions] == [1, 2]

        elsewhere = _bag(registry, "elsewhere", 档号="J001-WS·2024-Y-BGS-0299")
        with pytest.raises(BagNotReadable):
            client.migrate(first.package_id, elsewhere, tool="iconv", tool_version="2.36")


def test_disposal_and_its_refusals(registry: Registry) -> None:
    approval: dict[str, Any] = {
        "approval_id": "鉴销〔2026〕9号",
        "approved_by": "档案鉴定委员会",
        "approved_at": datetime(2026, 5, 20, 9, 0, tzinfo=UTC),
        "reason": "保管期限届满",
    }
    with registry.owner() as client, registry.other() as other:
        kept = client.ingest(_bag(registry, "permanent", 档号="J001-WS·1990-Y-BGS-0001"))
        with pytest.raises(RetentionPermanent) as permanent:
            client.dispose(kept.package_id, **approval)
        assert permanent.value.status_code == 409
        recent = client.ingest(
            _bag(
                registry,
                "recent",
                档号="J001-WS·2020-D10-BGS-0001",
                形成时间="2020",
                保管期限="10年",
            )
        )
        with pytest.raises(RetentionNotExpired):
            client.dispose(recent.package_id, **approval)

        expired = client.ingest(
            _bag(
                registry,
                "expired",
                档号="J001-WS·2010-D10-BGS-0001",
                形成时间="2010",
                保管期限="10年",
            )
        )
        with pytest.raises(NotPackageOwner):
            other.dispose(expired.package_id, **approval)
        with pytest.raises(ValueError):
            client.dispose(
                expired.package_id, **(approval | {"approved_at": datetime(2026, 5, 20)})
            )
        tombstone = client.dispose(expired.package_id, **approval)
        assert [v["root"] for v in tombstone["destroyed"]] == [expired.root]
        assert tombstone["approval"]["approvalId"] == "鉴销〔2026〕9号"
        assert client.package(expired.package_id).latest.disposed_at is not None
        assert client.custody(expired.package_id)[-1]["eventType"] == "deletion"
        with pytest.raises(ValueError):
            client.dispose(expired.package_id, **approval)
        assert client.package(kept.package_id).latest.disposed_at is None


def test_the_async_client_ingests_reads_and_gets_typed_errors(registry: Registry) -> None:
    bag = _bag(registry, "async", 档号="J001-WS·2024-Y-BGS-0401")
    packed = _zip(bag)
    other = _bag(registry, "async-other", 档号="J001-WS·2024-Y-BGS-0402")

    async def scenario() -> None:
        async with AsyncArchiveClient(
            registry.base, registry.owner_id, CLIENT_KEY, timeout=120.0
        ) as client:
            progress: list[int] = []
            stored = await client.ingest(
                packed, progress=lambda done, _total: progress.append(done)
            )
            assert stored.root == read_bag_contents(bag).root
            assert progress[-1] == packed.stat().st_size
            package = await client.package(stored.package_id)
            assert package.latest.root == stored.root
            assert (await client.custody(stored.package_id))[0]["eventType"] == "ingestion"
            assert (await client.report(stored.package_id))["stage"] == "ingest"
            assert (await client.report_pdf(stored.package_id)).startswith(b"%PDF")
            assert [r["packageId"] for r in await client.search(fonds="J001", limit=200)].count(
                stored.package_id
            ) == 1
            target = registry.work / "async.dip.zip"
            await client.export_dip(stored.package_id, target, purpose="异步利用")
            assert target.stat().st_size > 0
            with pytest.raises(PackageConflict):
                await client.ingest(packed)
            with pytest.raises(RetentionPermanent):
                await client.dispose(
                    stored.package_id,
                    approval_id="鉴销〔2026〕10号",
                    approved_by="档案鉴定委员会",
                    approved_at=datetime(2026, 5, 20, tzinfo=UTC),
                    reason="保管期限届满",
                )
            health = await client.health()
            assert health.status in ("ok", "not_audited", "fixity_failed")
        async with AsyncArchiveClient(
            registry.base, registry.other_id, registry.other_key, timeout=120.0
        ) as stranger:
            with pytest.raises(NotPackageOwner):
                await stranger.migrate(stored.package_id, bag, tool="none", tool_version="0")
            assert (await stranger.ingest(other)).version == 1

    asyncio.run(scenario())


def test_a_bag_that_cannot_be_read_is_refused_before_sending(registry: Registry) -> None:
    plain = registry.work / "not-a-bag.txt"
    plain.write_text("这不是档案包")
    requests: list[httpx.Request] = []
    http = httpx.Client(base_url=registry.base, event_hooks={"request": [requests.append]})
    with ArchiveClient(registry.base, registry.owner_id, CLIENT_KEY, http_client=http) as client:
        with pytest.raises(BagNotReadable):
            client.ingest(plain)
        no_bagit = registry.work / "no-bagit"
        (no_bagit / "data").mkdir(parents=True)
        (no_bagit / "data" / "a.txt").write_text("a")
        with pytest.raises(BagNotReadable):
            client.ingest(no_bagit)
    assert requests == []


def _health_until(client: ArchiveClient, status: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        health = client.health()
        if health.status == status:
            return health
        assert time.monotonic() < deadline, health
        time.sleep(0.5)


def test_the_health_reads_the_scheduled_audits_and_names_a_changed_file(
    registry: Registry,
) -> None:
    with registry.owner() as client:
        stored = client.ingest(_bag(registry, "audited", 档号="J001-WS·2024-Y-BGS-0501"))
        healthy = _health_until(client, "ok")
        assert healthy.last_audit is not None and healthy.findings == []
        changed = registry.store / stored.package_id / "v1" / "bag" / "data" / "0004.txt"
        assert changed.is_file()
        changed.chmod(0o644)
        changed.write_bytes(changed.read_bytes() + b"x")
        failed = _health_until(client, "fixity_failed")
        assert any("0004.txt" in str(finding) for finding in failed.findings), failed.findings


def _large_tar(path: Path, mib: int) -> Path:
    """A tar holding one file of ``mib`` MiB, written block by block."""
    block = bytes(range(256)) * (MIB // 256)

    class Blocks:
        def __init__(self) -> None:
            self.left = mib * MIB

        def read(self, size: int = -1) -> bytes:
            size = min(self.left, MIB if size < 0 else size)
            self.left -= size
            return (block * (size // MIB + 1))[:size]

    info = tarfile.TarInfo("bag/data/large.bin")
    info.size = mib * MIB
    with tarfile.open(path, "w") as archive:
        archive.addfile(info, Blocks())
    return path


def test_a_200_mb_upload_stays_flat_in_the_clients_memory(registry: Registry) -> None:
    large = _large_tar(registry.work / "large.tar", LARGE_UPLOAD_MIB)
    with registry.owner() as client:
        tracemalloc.start()
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            upload = client.upload(large)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert upload.size == large.stat().st_size > LARGE_UPLOAD_MIB * MIB
    assert peak - baseline < MEMORY_BOUND, (peak - baseline) / MIB
    large.unlink()


def test_an_upload_over_the_cap_and_too_many_uploads_are_typed(registry: Registry) -> None:
    over = _large_tar(registry.work / "over.tar", UPLOAD_CAP_MIB + 1)
    with registry.owner(retries=0) as client:
        with pytest.raises(UploadTooLarge) as too_large:
            client.upload(over)
        assert too_large.value.status_code == 413
        over.unlink()
    small = _zip(_bag(registry, "pending", 档号="J001-WS·2024-Y-BGS-0601"))
    with registry.other() as other, pytest.raises(PackageConflict) as conflict:
        for _ in range(20):
            other.upload(small)
        assert conflict.value.status_code == 409


def test_a_bag_the_archive_cannot_take_is_rejected_and_nothing_stored(registry: Registry) -> None:
    code = "J001-WS·2024-Y-BGS-0701"
    bag = _bag(registry, "classified", 档号=code, 密级="机密")
    contents = read_bag_contents(bag)
    with registry.owner() as client:
        with pytest.raises(BagRejected) as rejected:
            client.ingest(bag)
        assert rejected.value.status_code == 422
        assert rejected.value.code == "classified_material"
        assert client.search(archival_code=code) == []
        with pytest.raises(PackageNotFound) as missing:
            client.package(contents.package_id)
        assert missing.value.status_code == 404
        changed = _bag(registry, "changed", 档号=code)
        payload = changed / "data" / "0004.txt"
        payload.write_bytes(payload.read_bytes().replace("通知".encode(), "通告".encode()))
        with pytest.raises(IngestRefused) as refused:
            client.ingest(changed)
        assert any("0004.txt" in str(item) for item in refused.value.failed_items)
        assert client.search(archival_code=code) == []


class LosesOneAnswer(httpx.HTTPTransport):
    """Sends every request; the registry's answer to the first ``path`` POST is lost on
    the way back (a read error after the registry did the work)."""

    def __init__(self, path_end: str) -> None:
        super().__init__()
        self.path_end = path_end
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith(self.path_end) and not self.lost:
            self.lost += 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        return response


def test_an_ingest_and_a_migration_whose_answer_was_lost_find_what_they_stored(
    registry: Registry,
) -> None:
    code = "J001-WS·2024-Y-BGS-0801"
    bag = _bag(registry, "lost-answer", 档号=code)
    ingest_loses = LosesOneAnswer("/v1/archives/packages")
    http = httpx.Client(base_url=registry.base, transport=ingest_loses, timeout=120.0)
    with ArchiveClient(registry.base, registry.owner_id, CLIENT_KEY, http_client=http) as client:
        stored = client.ingest(bag)
        assert ingest_loses.lost == 1
        assert stored.version == 1 and stored.root == read_bag_contents(bag).root
        assert stored.report["stage"] == "ingest"
        assert [e["eventType"] for e in stored.events][:2] == ["ingestion", "validation"]
    files = standard_files()
    files["0004.txt"] = "关于印发某区档案工作要点的通知（UTF-8）\n".encode()
    migrated = _bag(registry, "lost-migration", files, 档号=code)
    migration_loses = LosesOneAnswer("/migrations")
    http = httpx.Client(base_url=registry.base, transport=migration_loses, timeout=120.0)
    with ArchiveClient(registry.base, registry.owner_id, CLIENT_KEY, http_client=http) as client:
        second = client.migrate(stored.package_id, migrated, tool="iconv", tool_version="2.36")
        assert migration_loses.lost == 1
        assert second.version == 2 and second.lineage is not None
        assert [v.version for v in client.package(stored.package_id).versions] == [1, 2]
