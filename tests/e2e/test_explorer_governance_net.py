"""The explorer's governance pages on a live network of four validator processes
(``lianxin net init --validators 4``): validator 3's power is raised from 1 to 2 through
``lianxin validators propose/vote`` while the chain runs; the explorer indexes node 0 (its
certificates checked against the set it follows from genesis) and its pages show the
proposal, each vote with its voter's name and the power voted so far, the execution with
its effective height, the set before and from that height, and the certificate signers of
blocks on each side with their names and the power reached."""

from __future__ import annotations

import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from e2e_harness import run_cli
from fastapi.testclient import TestClient
from net_harness import Net, free_port_block, new_net, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
from chromium_harness import ARTIFACTS, CHROMIUM, VIEWPORTS, chromium, png_size

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "explorer"))

from chain.genesis import parse_genesis
from explorer.app import create_app
from explorer.indexer import Indexer
from explorer.node_feed import NodeFeed
from explorer.settings import settings_for_chain_dir
from explorer.store import Store
from node.rpc_client import rpc_call

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
RAISED = 3
"""The validator whose power the proposal raises."""


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with new_net(tmp_path / "net", VALIDATORS) as network:
        yield network


def validators_cli(net: Net, *args: str) -> dict:  # type: ignore[type-arg]
    result = run_cli("validators", *args, "--dir", str(net.root), "--json")
    assert result.code == 0, result
    answer: dict = result.json()  # type: ignore[type-arg]
    return answer


def _cells(html: str, table: str) -> str:
    found = re.search(rf'<table id="{table}">(.*?)</table>', html, re.S)
    assert found is not None, table
    return found.group(1)


def test_a_governance_change_on_four_validators_is_shown_from_its_effective_height(
    net: Net, tmp_path: Path
) -> None:
    everyone = list(range(VALIDATORS))
    started = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert started.code == 0, started
    wait_until("first blocks on all nodes", lambda: min(net.head(i) for i in everyone) >= 3)

    proposed = validators_cli(
        net, "propose", "--node", "0", "--target-node", str(RAISED), "--power", "2"
    )
    assert proposed["ok"] and not proposed.get("executed"), proposed
    proposal = int(proposed["proposal"])
    voters = [0]
    for voter in (1, 2):
        vote = validators_cli(net, "vote", str(proposal), "--node", str(voter))
        voters.append(voter)
        if vote.get("executed"):
            break
    assert vote["executed"], vote
    effective = int(vote["effectiveHeight"])
    wait_until("the new set rules", lambda: min(net.head(i) for i in everyone) >= effective + 3)

    settings = settings_for_chain_dir(
        net.root,
        node_url=net.url(0),
        database_url=f"sqlite:///{tmp_path / 'explorer.db'}",
        public_subset=True,
    )
    genesis = settings.genesis()
    store = Store.open(settings.index_url())
    feed = NodeFeed(net.url(0))
    try:
        Indexer(store, feed, genesis).catch_up()
    finally:
        feed.close()
        store.close()

    names = {"0x" + bytes(v.address).hex(): v.name for v in genesis.validators}
    address = {i: "0x" + net.key(i).public_key.address.hex() for i in everyone}
    assert all(address[i] in names for i in everyone)
    assert parse_genesis((net.root / "genesis.toml").read_text()).chain_id == genesis.chain_id

    with TestClient(create_app(settings)) as client:
        page = client.get(f"/proposal/{proposal}")
        assert page.status_code == 200, page.text
        rows = re.findall(
            r'<tr class="governance-event" data-name="(\w+)">(.*?)</tr>', page.text, re.S
        )
        kinds = [name for name, _ in rows]
        assert kinds[0] == "Proposed" and kinds[-1] == "Executed", kinds
        votes = [body for name, body in rows if name == "Voted"]
        assert len(votes) >= len(voters) - 1
        for body in votes:
            assert any(address[i] in body for i in voters), body
        for i in voters[1:]:
            assert any(address[i] in body for body in votes), i
            assert names[address[i]] in page.text
        powers = re.findall(r'<span class="voted-power">(\d+) / (\d+)</span>', page.text)
        assert [int(v) for v, _ in powers] == sorted(int(v) for v, _ in powers)
        assert int(powers[-1][0]) * 3 > int(powers[-1][1]) * 2  # passed with more than 2/3
        assert f'class="effective-height">{effective}<' in page.text
        before, after = _cells(page.text, "set-before"), _cells(page.text, "set-after")
        assert names[address[RAISED]] in before and names[address[RAISED]] in after
        raised_before = re.search(
            rf"{re.escape(address[RAISED][:12])}.*?<td>(\d+)</td>", before, re.S
        )
        raised_after = re.search(
            rf"{re.escape(address[RAISED][:12])}.*?<td>(\d+)</td>", after, re.S
        )
        assert raised_before and raised_before.group(1) == "1"
        assert raised_after and raised_after.group(1) == "2"

        validators = client.get("/validators", params={"height": effective - 1}).text
        assert f"<td>{effective}</td>" not in _set_table(validators)
        validators = client.get("/validators", params={"height": effective}).text
        assert f"<td>2</td><td>{effective}</td>" in _set_table(validators)
        assert f'href="/proposal/{proposal}"' in validators

        for height, total in ((effective - 1, VALIDATORS), (effective + 1, VALIDATORS + 1)):
            block = client.get(f"/block/{height}").text
            reached = re.search(r'<strong id="power">(\d+) / (\d+)</strong>', block)
            assert reached is not None, height
            signed, of = int(reached.group(1)), int(reached.group(2))
            assert of == total and signed * 3 > of * 2, (height, signed, of)
            header = rpc_call(net.url(0), "lianxin_getBlockHeader", [hex(height)])
            signers = {s["validator"] for s in header["certificate"]["signatures"]}
            for signer in signers:
                assert names[signer] in block, (height, signer)
            assert block.count('class="badge ok"') == len(signers), height

    # The proposal page in a real headless Chromium, offline, at phone and laptop sizes.
    if CHROMIUM.exists():
        _in_chromium(create_app(settings), f"/proposal/{proposal}", tmp_path)


def _in_chromium(app: object, path: str, tmp_path: Path) -> None:
    """Serve ``app`` on a loopback port and load ``path`` in Chromium with the network cut:
    its Chinese title and the voters' names in the DOM, a screenshot of each viewport kept."""
    port = free_port_block(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until("the explorer server to start", lambda: server.started, 60)
        ARTIFACTS.mkdir(exist_ok=True)
        for viewport in VIEWPORTS:
            tag = f"proposal-{viewport[0]}x{viewport[1]}"
            shot = tmp_path / f"{tag}.png"
            dom = chromium(f"http://127.0.0.1:{port}{path}", shot, tmp_path / tag, viewport)
            assert "治理提案" in dom and "全生命周期" in dom, tag
            assert png_size(shot) == viewport, tag
            shutil.copy(shot, ARTIFACTS / f"explorer-{tag}.png")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _set_table(html: str) -> str:
    found = re.search(r'<h2>[^<]*<span id="set-height">.*?</table>', html, re.S)
    assert found is not None
    return found.group(0)
