"""The explorer's pages over an index of the shared chain: who may read what (SM2 challenge
login, the public subset by setting, every answer logged), each page type in Chinese and
English, and the search box."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chain_activity import DEPARTMENT_NAME, DEPARTMENT_USCC, LICENSE_ID, Activity, DevChain
from explorer_client import admin, explorer_client, login
from fastapi.testclient import TestClient
from sqlalchemy import select

from explorer import store_schema as t
from explorer.indexer import Indexer
from explorer.node_feed import NodeFeed
from explorer.settings import settings_for_chain_dir
from explorer.store import Store
from sdk.account import Sm2Account


@pytest.fixture(scope="module")
def indexed(audited: tuple[DevChain, Activity], module_index_url: str) -> str:
    chain, _ = audited
    store = Store.open(module_index_url)
    feed = NodeFeed(chain.url)
    try:
        Indexer(store, feed, settings_for_chain_dir(chain.root).genesis()).catch_up()
    finally:
        feed.close()
        store.close()
    return module_index_url


@pytest.fixture(scope="module")
def auditor(audited: tuple[DevChain, Activity], indexed: str) -> Iterator[TestClient]:
    chain, _ = audited
    with explorer_client(chain, indexed) as client:
        assert login(client, admin(chain)).status_code == 200
        yield client


def pages(chain: DevChain, activity: Activity) -> dict[str, str]:
    """Page type -> a URL of it and a text it must show."""
    return {
        "/": "最新区块",
        "/blocks": "区块",
        "/block/6": "提交证书",
        f"/tx/0x{activity.receipts['anchor'].tx_hash.hex()}": "批次上链",
        f"/department/{DEPARTMENT_USCC}": DEPARTMENT_NAME,
        f"/address/{chain.accounts['admin'].lower()}": "账户",
        "/validators": "签名参与度",
        "/permissions": "账户冻结状态变更",
        f"/record/0x{activity.batch_root.hex()}": "记录撤销",
        f"/license/0x{activity.license_hash.hex()}": "已撤销",
        "/departments": DEPARTMENT_NAME,
        "/verify": "链上复核",
    }


def test_each_page_type_renders_in_chinese(
    auditor: TestClient, audited: tuple[DevChain, Activity]
) -> None:
    for url, text in pages(*audited).items():
        answer = auditor.get(url)
        assert answer.status_code == 200, url
        assert text in answer.text, url
        assert "http://" not in answer.text and "https://" not in answer.text, url


def test_the_english_toggle(auditor: TestClient, audited: tuple[DevChain, Activity]) -> None:
    auditor.get("/lang/en?next=/")
    try:
        answer = auditor.get(f"/license/0x{audited[1].license_hash.hex()}")
        assert "Full lifecycle" in answer.text and "revoked" in answer.text
    finally:
        auditor.get("/lang/zh")


def test_block_shows_signers_by_name_and_power(
    auditor: TestClient, audited: tuple[DevChain, Activity]
) -> None:
    chain, _ = audited
    genesis = settings_for_chain_dir(chain.root).genesis()
    answer = auditor.get("/block/6").text
    assert genesis.validators[0].name in answer
    assert 'id="power">1 / 1<' in answer


def test_transaction_names_the_signers_department_and_proves_itself(
    auditor: TestClient, audited: tuple[DevChain, Activity]
) -> None:
    tx_hash = "0x" + audited[1].receipts["anchor"].tx_hash.hex()
    answer = auditor.get(f"/tx/{tx_hash}").text
    assert DEPARTMENT_NAME in answer and 'id="call-name">anchor<' in answer
    proof = auditor.get(f"/tx/{tx_hash}/proof").json()
    assert proof["txHash"] == tx_hash and proof["certificate"]


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("6", "/block/6"),
        (DEPARTMENT_USCC, f"/department/{DEPARTMENT_USCC}"),
        (LICENSE_ID, "/license/"),
    ],
)
def test_search_box(auditor: TestClient, query: str, target: str) -> None:
    answer = auditor.get("/search", params={"q": query}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith(target)


def test_search_by_hashes_and_address(
    auditor: TestClient, audited: tuple[DevChain, Activity]
) -> None:
    activity = audited[1]
    cases = {
        "0x" + activity.receipts["issue"].tx_hash.hex(): "/tx/",
        "0x" + activity.batch_root.hex(): "/record/",
        "0x" + activity.issuer.hex(): f"/address/0x{activity.issuer.hex()}",
        "0x" + activity.license_hash.hex(): "/license/",
        activity.changed_license_hash.hex().upper(): "/license/0x",
        auditor.get("/block/3").text.split('<dd class="mono">')[1][:66]: "/block/",
    }
    for query, target in cases.items():
        answer = auditor.get("/search", params={"q": query}, follow_redirects=False)
        assert answer.headers["location"].startswith(target), query
    assert auditor.get("/search", params={"q": "no such thing"}).status_code == 404
    assert auditor.get("/search", params={"q": "0x" + "ab" * 32}).status_code == 404


def test_reading_needs_an_auditor_and_every_answer_is_logged(
    audited: tuple[DevChain, Activity], indexed: str
) -> None:
    chain, _ = audited
    with explorer_client(chain, indexed) as client:
        assert client.get("/validators", follow_redirects=False).status_code == 303
        stranger = login(client, Sm2Account.generate())
        assert stranger.status_code == 403
        challenge = client.post("/auth/challenge").json()
        forged = client.post(
            "/auth/login",
            data={
                "nonce": challenge["nonce"],
                "public_key": admin(chain).public_key_bytes.hex(),
                "signature": "3044" + "01" * 68,
            },
        )
        assert forged.status_code == 403
        ticket = login(client, admin(chain)).json()["ticket"]
        client.cookies.clear()
        entered = client.get(
            f"/auth/enter?ticket={ticket}&next=/validators", follow_redirects=False
        )
        assert entered.status_code == 303 and entered.headers["location"] == "/validators"
        assert client.get("/validators").status_code == 200
        client.cookies.clear()
        assert (
            client.get(f"/auth/enter?ticket={ticket}", follow_redirects=False)
            .headers["location"]
            .startswith("/login")
        )
    store = Store.open(indexed)
    try:
        with store.read() as c:
            logged = c.execute(
                select(t.accesses.c.path, t.accesses.c.status, t.accesses.c.auditor)
            ).all()
    finally:
        store.close()
    assert ("/validators", 303, None) in [(p, s, a) for p, s, a in logged]
    assert any(p == "/validators" and s == 200 and a for p, s, a in logged)


def test_the_public_subset_by_setting(audited: tuple[DevChain, Activity], indexed: str) -> None:
    chain, activity = audited
    with explorer_client(chain, indexed, public_subset=True) as client:
        for url in ("/", "/blocks", "/block/3", "/validators"):
            assert client.get(url).status_code == 200, url
        tx = f"/tx/0x{activity.receipts['anchor'].tx_hash.hex()}"
        assert client.get(tx, follow_redirects=False).status_code == 303
        assert client.get("/departments", follow_redirects=False).status_code == 303


def test_a_reverification_job_from_the_page(auditor: TestClient) -> None:
    started = auditor.post(
        "/verify", data={"first": "0", "reexecute": "true"}, follow_redirects=False
    )
    assert started.status_code == 303
    job_url = started.headers["location"]
    jobs = auditor.app.state.jobs  # type: ignore[attr-defined]
    jobs.wait(300)
    job = auditor.get(job_url + ".json").json()
    assert job["state"] == "passed", job
    assert job["report"]["ok"] and job["report"]["verified_to"] == job["to_height"]
    assert "通过" in auditor.get(job_url).text
