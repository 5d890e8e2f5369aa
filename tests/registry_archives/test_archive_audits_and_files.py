"""Against a real registry process (uvicorn, on the session's dev chain): a fixity audit of
one package asked for now, run by the registry's audit worker: answered 202 with where to
poll; a byte flipped on disk named by its exact path (a Chinese name with spaces) in the
findings and the 四性 report; asked again while it is held, the same audit; 404, 403,
bounded bodies. A package's files listed a page at a time: paged to the end with any page
size, every stored file once, its path as stored, size, SM3 and anchoring; bounded pages
and cursors. The SDK clients (sync and async) do both."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_samples import make_sample_bag, standard_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_harness import (
    CLIENT_KEY,
    DEPARTMENT_USCC,
    TrustChain,
    free_port,
    new_client,
    registry_environment,
    registry_settings,
    signed,
)
from test_license_e2e import registry_process

from chain.crypto import PrivateKey
from registry.archives.auditing import LOCK_NAME
from registry.db import Database
from sdk.archive_calls import AuditState, NotPackageOwner, PackageFile, PackageNotFound
from sdk.archive_client import ArchiveClient
from sdk.archive_client_async import AsyncArchiveClient
from sdk.archive_entries import read_bag_contents

pytestmark = pytest.mark.no_database

MIB = 1024 * 1024
AUDIT_TIMEOUT_S = 120.0
FLIPPED = "data/第 2 件 关于 档案 的 批复.txt"


@dataclass
class Registry:
    base: str
    owner_id: str
    other_id: str
    other_key: PrivateKey
    auditor_id: str
    auditor_key: PrivateKey
    store: Path
    work: Path

    def owner(self) -> ArchiveClient:
        return ArchiveClient(self.base, self.owner_id, CLIENT_KEY, timeout=120.0)

    def request(
        self, method: str, path: str, payload: Any = None, *, who: str = "owner"
    ) -> httpx.Response:
        key, client = {
            "owner": (CLIENT_KEY, self.owner_id),
            "other": (self.other_key, self.other_id),
            "auditor": (self.auditor_key, self.auditor_id),
        }[who]
        body, headers = signed(key, client, method, path, payload)
        return httpx.request(method, self.base + path, content=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def registry(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("archive-audits")
    settings = registry_settings(trust_chain, work / "registry", None, max_upload_bytes=MIB)
    db = Database.open(settings)
    owner, _ = new_client(db)
    other_key = PrivateKey.generate()
    other, _ = new_client(db, key=other_key, uscc=DEPARTMENT_USCC, name="另一部门")
    auditor_key = PrivateKey.generate()
    auditor, _ = new_client(
        db, ("verify", "archive_audit"), key=auditor_key, uscc=DEPARTMENT_USCC, name="审计局"
    )
    db.close()
    store = work / "store"
    environment = registry_environment(settings) | {
        "LIANXIN_ARCHIVES_STORE_DIR": str(store),
        "LIANXIN_ARCHIVES_PROCESSES": "1",
    }
    with registry_process(environment, free_port(), work / "registry.log") as base:
        yield Registry(base, owner.id, other.id, other_key, auditor.id, auditor_key, store, work)


def _files() -> dict[str, bytes]:
    files = standard_files()
    files["第 2 件 关于 档案 的 批复.txt"] = "关于档案工作的批复\n".encode()
    return files


def _ingest(registry: Registry, name: str, code: str) -> str:
    bag = make_sample_bag(registry.work / name / "bag", _files(), 档号=code, 件数="5")
    with registry.owner() as client:
        return client.ingest(bag).package_id


def _flip(registry: Registry, package_id: str, path: str) -> None:
    target = registry.store / package_id / "v1" / "bag" / path
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[0] ^= 0x01
    target.write_bytes(bytes(data))


def _until_settled(registry: Registry, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + AUDIT_TIMEOUT_S
    while True:
        answer = registry.request("GET", location)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in ("finished", "failed"):
            return answer.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, answer.json()
        time.sleep(0.2)


def test_an_audit_asked_for_names_the_file_flipped_on_disk(registry: Registry) -> None:
    package_id = _ingest(registry, "flipped", "J001-WS·2025-Y-BGS-0001")
    _flip(registry, package_id, FLIPPED)
    path = f"/v1/archives/packages/{package_id}/audits"
    asked = registry.request("POST", path, {"reason": "档案馆抽检"})
    assert asked.status_code == 202, asked.text
    body = asked.json()
    location = f"{path}/{body['auditId']}"
    assert body["location"] == location == asked.headers["Location"]
    assert body["created"] is True and body["status"] in ("queued", "running")
    assert body["reason"] == "档案馆抽检"

    result = _until_settled(registry, location)
    assert result["status"] == "finished" and result["ok"] is False
    assert [(f["path"], f["kind"], f["version"]) for f in result["findings"]] == [
        (FLIPPED, "changed", 1)
    ]
    [version] = result["versions"]
    report = version["report"]
    assert version["version"] == 1 and version["ok"] is False
    assert report["stage"] == "preservation" and report["verdict"] == "FAIL"
    items = {item["code"]: item for item in report["items"]}
    assert items["authenticity.digests"]["verdict"] == "FAIL"
    assert items["authenticity.digests"]["evidence"][0].startswith(f"{FLIPPED}: changed")
    assert items["integrity.counts"]["verdict"] == "PASS"
    assert items["usability.opens"]["verdict"] == "NOT_CHECKED"

    with registry.owner() as client:
        events = client.custody(package_id)
    fixity = [event for event in events if event["eventType"] == "fixity check"]
    assert fixity[-1]["outcome"] == "failure"
    assert fixity[-1]["detail"]["audit"] == body["auditId"]
    assert [f["path"] for f in fixity[-1]["detail"]["findings"]] == [FLIPPED]

    untouched = _ingest(registry, "untouched", "J001-WS·2025-Y-BGS-0002")
    with registry.owner() as client:
        clean = client.audit_package(untouched, timeout=AUDIT_TIMEOUT_S)
    assert clean.status == "finished" and clean.ok is True and clean.findings == []
    items = {item["code"]: item for item in clean.versions[0]["report"]["items"]}
    assert items["authenticity.digests"]["verdict"] == "PASS"


def test_asked_again_while_it_is_held_the_same_audit_answers(registry: Registry) -> None:
    package_id = _ingest(registry, "held", "J001-WS·2025-Y-BGS-0003")
    path = f"/v1/archives/packages/{package_id}/audits"
    lock = os.open(registry.store / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # The store's audit lock, as another audit (the command line's) holds it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        first = registry.request("POST", path, {})
        assert first.status_code == 202, first.text
        audit_id = first.json()["auditId"]
        for who in ("owner", "auditor", "owner"):
            again = registry.request("POST", path, {"reason": "再次要求"}, who=who)
            assert again.status_code == 202, again.text
            assert again.json()["auditId"] == audit_id and again.json()["created"] is False
        time.sleep(1.5)  # the worker has looked, found the store busy, and waits
        held = registry.request("GET", f"{path}/{audit_id}", who="auditor").json()
        assert held["status"] in ("queued", "running") and held["finishedAt"] is None
    finally:
        os.close(lock)
    done = _until_settled(registry, f"{path}/{audit_id}")
    assert done["status"] == "finished" and done["ok"] is True
    with registry.owner() as client:
        fresh = client.request_audit(package_id)
    assert fresh.created is True and fresh.audit_id != audit_id


def test_refusals_are_typed_and_bodies_bounded(registry: Registry) -> None:
    package_id = _ingest(registry, "refused", "J001-WS·2025-Y-BGS-0004")
    path = f"/v1/archives/packages/{package_id}/audits"
    unknown = registry.request("POST", f"/v1/archives/packages/{'0' * 32}/audits", {})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "package_not_found"
    other = registry.request("POST", path, {}, who="other")
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_package_owner"
    too_long = registry.request("POST", path, {"reason": "因" * 501})
    assert too_long.status_code == 422
    extra = registry.request("POST", path, {"reason": "抽检", "priority": 9})
    assert extra.status_code == 422
    oversized = registry.request("POST", path, {"reason": "x" * (2 * MIB)})
    assert oversized.status_code == 413
    assert oversized.json()["error"]["code"] == "payload_too_large"
    unsigned = httpx.post(registry.base + path, json={}, timeout=30)
    assert unsigned.status_code == 401
    missing = registry.request("GET", f"{path}/{'f' * 32}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "audit_not_found"

    asked = registry.request("POST", path, {}).json()
    stranger_read = registry.request("GET", f"{path}/{asked['auditId']}", who="other")
    assert stranger_read.status_code == 403
    elsewhere = registry.request(
        "GET", f"/v1/archives/packages/{'0' * 32}/audits/{asked['auditId']}"
    )
    assert elsewhere.status_code == 404
    _until_settled(registry, asked["location"])

    stranger = ArchiveClient(registry.base, registry.other_id, registry.other_key)
    with stranger, pytest.raises(NotPackageOwner):
        stranger.request_audit(package_id)
    with registry.owner() as client:
        with pytest.raises(PackageNotFound):
            client.request_audit("0" * 32)
        with pytest.raises(PackageNotFound):
            client.audit(package_id, "f" * 32)


def test_the_async_client_asks_waits_and_reads(registry: Registry) -> None:
    package_id = _ingest(registry, "async", "J001-WS·2025-Y-BGS-0005")
    _flip(registry, package_id, "data/0004.txt")

    async def scenario() -> tuple[AuditState, AuditState, AuditState]:
        async with AsyncArchiveClient(
            registry.base, registry.auditor_id, registry.auditor_key, timeout=120.0
        ) as client:
            asked = await client.request_audit(package_id, reason="审计抽查")
            waited = await client.wait_for_audit(
                package_id, asked.audit_id, timeout=AUDIT_TIMEOUT_S, poll=0.2
            )
            read = await client.audit(package_id, asked.audit_id)
            return asked, waited, read

    asked, waited, read = asyncio.run(scenario())
    assert asked.created is True and asked.location.endswith(asked.audit_id)
    assert waited.status == "finished" and waited.changed_paths == ["data/0004.txt"]
    assert read == waited
    with registry.owner() as client:
        state = client.wait_for_audit(package_id, asked.audit_id, timeout=5.0)
        assert state.changed_paths == ["data/0004.txt"]


LISTED_FILES = 150
"""Payload files of the package listed (with its tag files, over a page of 100)."""


@dataclass
class Listed:
    package_id: str
    expected: dict[str, tuple[int, str]]
    """Every stored path → (size, SM3), as the SDK computes the stored bag."""


@pytest.fixture(scope="module")
def listed(registry: Registry) -> Listed:
    files = {
        f"第{n:03d}件 {'通知' if n % 2 else '批复 附件'}.txt": f"第{n}件 文书 {n * 'x'}\n".encode()
        for n in range(1, LISTED_FILES + 1)
    }
    bag = make_sample_bag(
        registry.work / "listed" / "bag", files, 档号="J001-WS·2025-Y-BGS-0100", 件数="150"
    )
    contents = read_bag_contents(bag)
    with registry.owner() as client:
        stored = client.ingest(bag)
    expected = {entry.path: (entry.size, entry.sm3) for entry in contents.entries}
    return Listed(stored.package_id, expected)


def _page_through(registry: Registry, package_id: str, limit: int) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = f"limit={limit}" + ("" if cursor is None else f"&cursor={cursor}")
        answer = registry.request("GET", f"/v1/archives/packages/{package_id}/files?{query}")
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["packageId"] == package_id and page["version"] == 1
        assert 1 <= len(page["files"]) <= limit
        files.extend(page["files"])
        cursor = page["next"]
        if cursor is None:
            return files
        assert len(files) < 10 * LISTED_FILES, "the listing never ends"


def test_a_listing_paged_to_its_end_holds_every_file_once(
    registry: Registry, listed: Listed
) -> None:
    assert len(listed.expected) > 100  # more than one page at the default size
    files = _page_through(registry, listed.package_id, 100)
    paths = [item["path"] for item in files]
    assert paths == sorted(paths) and len(set(paths)) == len(paths)
    assert {item["path"]: (item["size"], item["sm3"]) for item in files} == listed.expected
    assert "data/第002件 批复 附件.txt" in paths
    anchoring = files[0]["anchoring"]
    assert anchoring["proof"] == f"/v1/records/{anchoring['recordId']}"
    first = f"/v1/archives/packages/{listed.package_id}/files?limit=1"
    deadline = time.monotonic() + AUDIT_TIMEOUT_S
    while anchoring["status"] != "anchored":
        assert time.monotonic() < deadline, anchoring
        time.sleep(0.5)
        anchoring = registry.request("GET", first).json()["files"][0]["anchoring"]
    assert isinstance(anchoring["batch"], int) and isinstance(anchoring["leafIndex"], int)
    assert len(anchoring["txHash"]) == 64 and anchoring["blockNumber"] > 0
    record = registry.request("GET", anchoring["proof"])
    assert record.status_code == 200, record.text
    assert record.json()["digest"] == files[0]["sm3"]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(limit=st.integers(min_value=1, max_value=1_000))
def test_any_page_size_lists_every_file_once(
    registry: Registry, listed: Listed, limit: int
) -> None:
    limit = limit if limit > 40 else limit + 40  # at most a few dozen requests an example
    paths = [item["path"] for item in _page_through(registry, listed.package_id, limit)]
    assert len(paths) == len(set(paths)) and set(paths) == set(listed.expected)


def test_pages_and_cursors_are_bounded(registry: Registry, listed: Listed) -> None:
    base = f"/v1/archives/packages/{listed.package_id}/files"
    for query in ("limit=0", "limit=1001", "version=0", f"cursor={'A' * 6001}"):
        answer = registry.request("GET", f"{base}?{query}")
        assert answer.status_code == 422, (query, answer.text)
    bad = registry.request("GET", f"{base}?cursor=AA")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
    version = registry.request("GET", f"{base}?version=9")
    assert version.status_code == 404 and version.json()["error"]["code"] == "version_not_found"
    unknown = registry.request("GET", f"/v1/archives/packages/{'0' * 32}/files")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "package_not_found"
    unsigned = httpx.get(registry.base + base, timeout=30)
    assert unsigned.status_code == 401


def _stored(files: list[PackageFile]) -> list[tuple[str, int, str, str]]:
    return [(f.path, f.size, f.sm3, f.anchoring["recordId"]) for f in files]


def test_the_clients_list_the_files(registry: Registry, listed: Listed) -> None:
    with registry.owner() as client:
        first = client.files(listed.package_id, limit=60)
        assert len(first.files) == 60 and first.next_cursor is not None
        second = client.files(listed.package_id, limit=60, cursor=first.next_cursor)
        assert first.files[-1].path < second.files[0].path
        every = client.all_files(listed.package_id, page_size=37)
        with pytest.raises(ValueError):
            client.files(listed.package_id, limit=0)
        with pytest.raises(PackageNotFound):
            client.files("0" * 32)
    assert {f.path: (f.size, f.sm3) for f in every} == listed.expected
    # Compared by what does not change: a file's anchoring moves on as its batch anchors.
    assert _stored(every[:120]) == _stored(first.files + second.files)

    async def scenario() -> list[PackageFile]:
        async with AsyncArchiveClient(
            registry.base, registry.owner_id, CLIENT_KEY, timeout=120.0
        ) as client:
            page = await client.files(listed.package_id, version=1, limit=5)
            assert [f.path for f in page.files] == [f.path for f in every[:5]]
            return await client.all_files(listed.package_id, version=1, page_size=1_000)

    assert _stored(asyncio.run(scenario())) == _stored(every)


def test_the_openapi_document_lists_both_routes(registry: Registry) -> None:
    paths = httpx.get(registry.base + "/openapi.json", timeout=30).json()["paths"]
    assert "post" in paths["/v1/archives/packages/{package_id}/audits"]
    assert "get" in paths["/v1/archives/packages/{package_id}/audits/{audit_id}"]
    assert "get" in paths["/v1/archives/packages/{package_id}/files"]
