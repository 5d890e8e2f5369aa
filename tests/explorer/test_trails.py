"""Credit record and archive package histories on a dev chain with a real registry process:
every event the registry reports is proven against the explorer's own index (batch root
anchored in block N by department D, the leaf's path, the leaf recomputed from its parts,
the department's signature and key), with a verdict per event; an event not signed yet,
or not indexed yet, is never shown as proven; a registry answer doctored in any part is
refused event by event, and no change anywhere in its answer (hypothesis) makes a fact
proven that the chain does not hold; the search box finds both pages; the evidence export
verifies offline with ``lianxin verify-evidence``, leaves included."""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from explorer_client import admin, explorer_client, login
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_activity import (
    ARCHIVAL_CODE,
    AUTHORITY_USCC,
    DECISION,
    RegistryScene,
    registry_scene,
)

from explorer.indexer import Indexer
from explorer.node_feed import NodeFeed
from explorer.settings import settings_for_chain_dir
from explorer.store import Store
from explorer.trail_evidence import verify_trail_leaves
from explorer.trails import archive_trail, credit_trail
from sdk.evidence import (
    Evidence,
    EvidenceInvalid,
    read_evidence_zip,
    verify_evidence,
    verify_evidence_zip,
)

CREDIT_URL = "/credit?" + urlencode({"decision": DECISION, "authority": AUTHORITY_USCC})
ARCHIVE_URL = "/archive?" + urlencode({"code": ARCHIVAL_CODE})


@pytest.fixture(scope="module")
def scene() -> RegistryScene:
    return registry_scene()


def _index(scene: RegistryScene, url: str, stop_at: int | None = None) -> None:
    store = Store.open(url)
    feed = NodeFeed(scene.chain.url)
    try:
        genesis = settings_for_chain_dir(scene.chain.root).genesis()
        Indexer(store, feed, genesis).catch_up(stop_at=stop_at)
    finally:
        feed.close()
        store.close()


@pytest.fixture(scope="module")
def indexed(scene: RegistryScene, module_index_url: str) -> str:
    _index(scene, module_index_url)
    return module_index_url


@pytest.fixture(scope="module")
def auditor(scene: RegistryScene, indexed: str) -> Iterator[TestClient]:
    with explorer_client(scene.chain, indexed, **scene.explorer_settings()) as client:
        assert login(client, admin(scene.chain)).status_code == 200
        yield client


def _rows(html: str) -> list[tuple[str, str]]:
    """(kind, verdict) of each event row of a history page, in order."""
    rows = re.findall(
        r'<tr class="trail-event" data-kind="([^"]+)">.*?data-verdict="([^"]+)"', html, re.S
    )
    return [(kind, verdict) for kind, verdict in rows]


def test_the_credit_page_proves_each_signed_event_and_not_the_unsigned_one(
    auditor: TestClient, scene: RegistryScene
) -> None:
    answer = auditor.get(CREDIT_URL)
    assert answer.status_code == 200, answer.text
    rows = _rows(answer.text)
    assert rows == [(k, "proven") for k in scene.signed_kinds] + [
        (k, "pending") for k in scene.unsigned_kinds
    ]
    assert "信用记录" in answer.text and "上链区块" in answer.text
    assert "签名部门" in answer.text and "区行政审批局" in answer.text
    assert "已证明事件: <strong>3</strong> / 4" in answer.text.replace("：", ": ")


def test_the_archive_page_proves_both_versions_and_every_custody_event_to_disposal(
    auditor: TestClient,
) -> None:
    answer = auditor.get(ARCHIVE_URL)
    assert answer.status_code == 200, answer.text
    rows = _rows(answer.text)
    assert rows[:2] == [("archive-version", "proven")] * 2
    kinds = [kind for kind, _ in rows[2:]]
    assert kinds[0] == "ingestion"
    assert {"virus check", "migration", "fixity check"} <= set(kinds)
    assert kinds[-1] == "deletion" and answer.text.count("已销毁") == 2
    assert all(verdict == "proven" for _, verdict in rows)
    assert "档案包" in answer.text and "接收入库" in answer.text


def test_english_pages(auditor: TestClient) -> None:
    auditor.get("/lang/en?next=/")
    try:
        credit = auditor.get(CREDIT_URL).text
        archive = auditor.get(ARCHIVE_URL).text
    finally:
        auditor.get("/lang/zh")
    assert "Credit record" in credit and "Publishing stopped" in credit
    assert "not on chain yet" in credit
    assert "Archive package" in archive and "Ingest" in archive


def test_the_search_box_finds_a_decision_number_and_an_archival_code(
    auditor: TestClient,
) -> None:
    for text, page in ((DECISION, "/credit?"), (ARCHIVAL_CODE, "/archive?")):
        answer = auditor.get("/search", params={"q": text}, follow_redirects=False)
        assert answer.status_code == 303, text
        assert answer.headers["location"].startswith(page)
        assert auditor.get(answer.headers["location"]).status_code == 200
    assert auditor.get("/search", params={"q": "榕市监罚〔1999〕0号"}).status_code == 404


def test_an_index_behind_the_anchoring_shows_nothing_as_proven(
    scene: RegistryScene, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    _index(scene, url, stop_at=3)
    with explorer_client(scene.chain, url, **scene.explorer_settings()) as client:
        assert login(client, admin(scene.chain)).status_code == 200
        rows = _rows(client.get(CREDIT_URL).text) + _rows(client.get(ARCHIVE_URL).text)
    assert rows and all(verdict == "pending" for _, verdict in rows)


@pytest.fixture(scope="module")
def answers(scene: RegistryScene) -> tuple[dict[str, Any], dict[str, Any]]:
    feed = scene.feed()
    try:
        return feed.credit_history(AUTHORITY_USCC, DECISION), feed.archive_history(ARCHIVAL_CODE)
    finally:
        feed.close()


def _credit_verdicts(indexed: str, answer: dict[str, Any], chain_id: int) -> list[str]:
    store = Store.open(indexed)
    try:
        with store.read() as c:
            return [e.proof.verdict for e in credit_trail(c, answer, chain_id=chain_id)]
    finally:
        store.close()


def _chain_id(scene: RegistryScene) -> int:
    return settings_for_chain_dir(scene.chain.root).genesis().chain_id


DOCTORINGS = {
    "metadata kind": lambda r: r["metadata"].__setitem__("kind", "repair"),
    "digest": lambda r: r.__setitem__("digest", "00" * 32),
    "department key": lambda r: r.__setitem__("departmentKey", "04" + "11" * 64),
    "signature": lambda r: r.__setitem__("departmentSignature", "3006020101020101"),
    "sibling": lambda r: r["batch"].__setitem__("siblings", "ab" * 64),
    "leaf index": lambda r: r["batch"].__setitem__("leafIndex", r["batch"]["leafIndex"] ^ 1),
    "leaf count": lambda r: r["batch"].__setitem__("leafCount", 7),
    "root": lambda r: r["batch"].__setitem__("root", "cd" * 32),
    "field hashes": lambda r: r.__setitem__("fieldHashes", {"x": "ee" * 32}),
}


@pytest.mark.parametrize("doctored", sorted(DOCTORINGS))
def test_a_doctored_credit_event_is_refused_and_the_others_stay_proven(
    doctored: str,
    answers: tuple[dict[str, Any], dict[str, Any]],
    indexed: str,
    scene: RegistryScene,
) -> None:
    answer = copy.deepcopy(answers[0])
    DOCTORINGS[doctored](answer["events"][1]["record"])
    verdicts = _credit_verdicts(indexed, answer, _chain_id(scene))
    assert verdicts[1] == "failed", doctored
    assert verdicts[0] == verdicts[2] == "proven"


def test_a_registry_account_that_differs_from_the_leaf_is_refused(
    answers: tuple[dict[str, Any], dict[str, Any]],
    indexed: str,
    scene: RegistryScene,
) -> None:
    for field, value in (("kind", "repair"), ("version", 9), ("changedFields", ["name"])):
        answer = copy.deepcopy(answers[0])
        answer["events"][1][field] = value
        assert _credit_verdicts(indexed, answer, _chain_id(scene))[1] == "failed", field
    answer = copy.deepcopy(answers[0])
    answer["events"][0]["metadataSalt"] = "00" * 16
    assert _credit_verdicts(indexed, answer, _chain_id(scene))[0] == "failed"


@pytest.mark.parametrize("value", [True, 7, "name", {"name": 1}, [1], ["name", None]])
def test_changed_fields_of_another_type_are_refused_not_raised(
    value: Any,
    answers: tuple[dict[str, Any], dict[str, Any]],
    indexed: str,
    scene: RegistryScene,
) -> None:
    """A registry answer's ``changedFields`` that is not a list of names (once found by the
    hypothesis test below as a TypeError) fails that event, and only that one."""
    answer = copy.deepcopy(answers[0])
    answer["events"][1]["changedFields"] = value
    verdicts = _credit_verdicts(indexed, answer, _chain_id(scene))
    assert verdicts[1] == "failed"
    assert verdicts[0] == verdicts[2] == "proven"
    answer = copy.deepcopy(answers[0])
    answer["events"][1]["record"]["metadata"] = value
    assert _credit_verdicts(indexed, answer, _chain_id(scene))[1] == "failed"


def test_a_doctored_custody_event_breaks_its_link_and_is_refused(
    answers: tuple[dict[str, Any], dict[str, Any]],
    indexed: str,
    scene: RegistryScene,
) -> None:
    answer = copy.deepcopy(answers[1])
    answer["events"][1]["event"]["outcome"] = "failure"
    answer["versions"][0]["root"] = "ab" * 32
    store = Store.open(indexed)
    try:
        with store.read() as c:
            verdicts = [
                e.proof.verdict for e in archive_trail(c, answer, chain_id=_chain_id(scene))
            ]
    finally:
        store.close()
    assert verdicts[0] == "failed"  # the version's root record commits another root
    assert verdicts[1] == "proven"  # version 2, untouched
    assert verdicts[2] == "proven"  # ingestion, untouched
    assert verdicts[3] == "failed"  # its hash is not the one anchored
    assert verdicts[4] == "failed"  # it does not follow the event shown before it


def _export(auditor: TestClient, url: str) -> bytes:
    answer = auditor.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    return bytes(answer.content)


@pytest.mark.parametrize("page", ["credit", "archive"])
def test_the_evidence_export_verifies_offline_leaves_included(
    page: str, auditor: TestClient, scene: RegistryScene, tmp_path: Path
) -> None:
    html = auditor.get(CREDIT_URL if page == "credit" else ARCHIVE_URL).text
    link = re.search(r'id="export" href="([^"]+)"', html)
    assert link is not None
    data = _export(auditor, link.group(1).replace("&amp;", "&"))
    target = tmp_path / "evidence.zip"
    target.write_bytes(data)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "explorer",
            "verify-evidence",
            str(target),
            "--dir",
            str(scene.chain.root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    evidence, _ = read_evidence_zip(data)
    proven = sum(len(e["leaves"]) for e in evidence.events)
    assert verdict["ok"] and verdict["leaves"] == proven
    assert proven == (3 if page == "credit" else len(_rows(html)))
    # The SDK alone checks the leaves too, as a department's or a court's tool would.
    assert verify_evidence_zip(data).leaves == proven
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["evidence.json", "report.pdf", "manifest.json"]


def test_a_doctored_leaf_in_an_export_is_refused(auditor: TestClient) -> None:
    evidence, _ = read_evidence_zip(
        _export(auditor, "/evidence/credit?" + urlencode({"decision": DECISION}))
    )
    assert verify_trail_leaves(evidence) == 3
    doctors: tuple[Callable[[Any], None], ...] = (
        lambda leaf: leaf["record"]["batch"].__setitem__("siblings", "ab" * 64),
        lambda leaf: leaf["record"].__setitem__("digest", "00" * 32),
        lambda leaf: leaf.__setitem__("metadataSalt", "11" * 16),
    )
    for doctor in doctors:
        events = copy.deepcopy([dict(e) for e in evidence.events])
        doctor(events[0]["leaves"][0])
        doctored = Evidence(
            chain_id=evidence.chain_id,
            subject=evidence.subject,
            items=evidence.items,
            events=tuple(events),
            exported_at=evidence.exported_at,
        )
        with pytest.raises(EvidenceInvalid):
            verify_trail_leaves(doctored)
        with pytest.raises(EvidenceInvalid, match="leaf"):
            verify_evidence(doctored)


EVIDENCE_DOCTORINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "chain id null": lambda body: body.__setitem__("chainId", None),
    "chain id text": lambda body: body.__setitem__("chainId", "x"),
    "subject true": lambda body: body.__setitem__("subject", True),
    "subject text": lambda body: body.__setitem__("subject", "x"),
    "events true": lambda body: body.__setitem__("events", True),
    "an event true": lambda body: body["events"].__setitem__(0, True),
    "power 2**300": lambda body: body["items"][0]["validators"][0].__setitem__("power", 2**300),
}


@pytest.mark.parametrize("doctored", sorted(EVIDENCE_DOCTORINGS))
def test_an_export_with_a_member_of_another_type_is_refused(
    doctored: str, auditor: TestClient
) -> None:
    """Each of these once raised TypeError, ValueError, AttributeError or the validator
    set's EncodingError out of parsing or verifying, instead of EvidenceInvalid."""
    evidence, _ = read_evidence_zip(
        _export(auditor, "/evidence/credit?" + urlencode({"decision": DECISION}))
    )
    body = json.loads(evidence.to_json_bytes())
    EVIDENCE_DOCTORINGS[doctored](body)
    with pytest.raises(EvidenceInvalid):
        verify_evidence(Evidence.from_json_bytes(json.dumps(body).encode()))


def test_without_a_registry_the_pages_say_so(scene: RegistryScene, indexed: str) -> None:
    with explorer_client(scene.chain, indexed) as client:
        assert login(client, admin(scene.chain)).status_code == 200
        answer = client.get(CREDIT_URL)
        assert answer.status_code == 503 and "未配置登记服务" in answer.text
        assert client.get("/search", params={"q": DECISION}).status_code == 404


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=20)
    | st.sampled_from(["", "00" * 32, "ab" * 32, "04" + "11" * 64, "2026-12-06T00:00:00"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _replace_somewhere(value: Any, position: int, replacement: Any) -> Any:
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any, parent: Any, key: Any) -> None:
        nodes.append((parent, key))
        if isinstance(node, dict):
            for k in list(node):
                walk(node[k], node, k)
        elif isinstance(node, list):
            for i in range(len(node)):
                walk(node[i], node, i)

    walk(value, None, None)
    parent, key = nodes[position % len(nodes)]
    if parent is None:
        return replacement
    parent[key] = replacement
    return value


def _facts(events: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (e.kind, e.at, e.subject, e.proof.height, e.proof.root, e.proof.leaf, e.proof.leaf_index)
        for e in events
        if e.proof.proven
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    page=st.sampled_from(["credit", "archive"]),
    position=st.integers(min_value=0, max_value=100_000),
    replacement=JSON_VALUES,
)
def test_no_change_to_the_registry_answer_makes_a_false_fact_proven(
    page: str,
    position: int,
    replacement: Any,
    answers: tuple[dict[str, Any], dict[str, Any]],
    indexed: str,
    scene: RegistryScene,
) -> None:
    honest = answers[0] if page == "credit" else answers[1]
    trail = credit_trail if page == "credit" else archive_trail
    doctored = _replace_somewhere(copy.deepcopy(honest), position, replacement)
    store = Store.open(indexed)
    try:
        with store.read() as c:
            truth = set(_facts(trail(c, honest, chain_id=_chain_id(scene))))
            if not isinstance(doctored, dict) or not all(
                isinstance(doctored.get(k), list) and all(isinstance(v, dict) for v in doctored[k])
                for k in ("events", *(("records",) if page == "credit" else ("versions",)))
            ):
                return  # the feed refuses an answer of another shape (RegistryUnavailable)
            shown = _facts(trail(c, doctored, chain_id=_chain_id(scene)))
    finally:
        store.close()
    assert set(shown) <= truth
