"""What an auditor proves with the explorer, on a copy of the shared chain whose node this
test starts and stops: evidence exported for a transaction, a record and a license verifies
offline once node and explorer are stopped (and a doctored bundle does not); re-verification
from the explorer agrees with ``lianxin verify-chain`` on a consistently rewritten block and
on a flipped byte in the store (on the untouched chain both pass: here for verify-chain, in
test_pages for the explorer's job)."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import lmdb
import pytest
from chain_activity import Activity, DevChain, free_port, run_lianxin, start_node
from explorer_client import admin, explorer_client, login
from typer.testing import CliRunner

from chain.types import Block, Transaction
from explorer.indexer import Indexer
from explorer.node_feed import NodeFeed
from explorer.reverify import VerifyReport, reverify
from explorer.settings import settings_for_chain_dir
from explorer.store import Store
from node.cli import app as cli_app
from node.storage import keys as layout
from sdk.evidence import (
    Evidence,
    EvidenceInvalid,
    manifest,
    verify_evidence,
    verify_evidence_zip,
)

REWRITTEN_HEIGHT = 9
FLIPPED_HEIGHT = 4


def copy_chain(source: DevChain, root: Path) -> DevChain:
    """The chain directory copied (its idle node's store included) to run a second node."""
    shutil.copytree(
        source.root, root, ignore=shutil.ignore_patterns("explorer", "*.log", "*.pid", "lock.mdb")
    )
    port = free_port()
    config = root / "node.toml"
    config.write_text(re.sub(r"rpc_port = \d+", f"rpc_port = {port}", config.read_text()))
    return DevChain(root=root, port=port, accounts=source.accounts)


def stop(chain: DevChain) -> None:
    for process in chain.foreground:
        process.terminate()
        process.wait(timeout=60)
    chain.foreground.clear()


def verify_chain(chain: DevChain) -> dict[str, object]:
    """``lianxin verify-chain --json`` (in this process: it is the same code as a console run,
    and a process start costs seconds on a busy machine)."""
    result = CliRunner().invoke(cli_app, ["verify-chain", "--dir", str(chain.root), "--json"])
    return dict(json.loads(result.output))


def explorer_reverify(chain: DevChain) -> VerifyReport:
    start_node(chain)
    feed = NodeFeed(chain.url)
    try:
        return reverify(
            feed, settings_for_chain_dir(chain.root).genesis(), first=0, last=None, reexecute=True
        )
    finally:
        feed.close()
        stop(chain)


def blocks_env(chain: DevChain) -> lmdb.Environment:
    return lmdb.open(str(chain.root / "node" / "blocks"), max_dbs=16, subdir=True)


def rewrite_block(chain: DevChain, height: int) -> None:
    """Change a transaction's data and store the block again, checksum and all."""
    env = blocks_env(chain)
    blocks = env.open_db(layout.BLOCKS)
    with env.begin(db=blocks, write=True) as txn:
        block = Block.decode(layout.unframe(bytes(txn.get(layout.height_key(height))), "test"))
        tx = block.transactions[0]
        forged_tx = Transaction(**{**tx.__dict__, "data": tx.data[:-1] + b"\xee"})
        forged = Block(block.header, (forged_tx, *block.transactions[1:]), block.last_commit)
        txn.put(layout.height_key(height), layout.frame(forged.encode()))
    env.close()


def flip_byte(chain: DevChain, height: int) -> None:
    """Flip one byte in the middle of a stored block, in every copy of its page."""
    env = blocks_env(chain)
    with env.begin(db=env.open_db(layout.BLOCKS)) as txn:
        record = bytes(txn.get(layout.height_key(height)))
    env.close()
    data_file = chain.root / "node" / "blocks" / "data.mdb"
    raw = bytearray(data_file.read_bytes())
    offset = raw.find(record)
    assert offset >= 0
    while offset >= 0:
        raw[offset + len(record) // 2] ^= 0x01
        offset = raw.find(record, offset + 1)
    data_file.write_bytes(bytes(raw))


def export(chain: DevChain, activity: Activity, index_url: str, folder: Path) -> list[Path]:
    store = Store.open(index_url)
    feed = NodeFeed(chain.url)
    try:
        Indexer(store, feed, settings_for_chain_dir(chain.root).genesis()).catch_up()
    finally:
        feed.close()
        store.close()
    refs = {
        "tx": "0x" + activity.receipts["anchor"].tx_hash.hex(),
        "record": "0x" + activity.revoked_leaf.hex(),
        "license": "0x" + activity.license_hash.hex(),
    }
    files = []
    with explorer_client(chain, index_url) as client:
        assert login(client, admin(chain)).status_code == 200
        for kind, ref in refs.items():
            answer = client.get(f"/evidence/{kind}/{ref}")
            assert answer.status_code == 200, answer.text
            files.append(folder / f"{kind}.zip")
            files[-1].write_bytes(answer.content)
    return files


def doctored(original: Path, target: Path) -> Path:
    """The evidence with one receipt's last byte changed and the manifest made to match (the
    report's QR digest, in a signed-looking PDF, is left as it was)."""
    with zipfile.ZipFile(original) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    body = json.loads(members["evidence.json"])
    receipt = body["items"][0]["receipt"]
    body["items"][0]["receipt"] = receipt[:-2] + ("00" if receipt[-2:] != "00" else "01")
    members["evidence.json"] = json.dumps(body).encode()
    members["manifest.json"] = manifest({k: members[k] for k in ("evidence.json", "report.pdf")})
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def test_evidence_offline_and_reverification_agree_with_verify_chain(
    audited: tuple[DevChain, Activity], index_url: str, tmp_path: Path
) -> None:
    source, activity = audited
    chain = copy_chain(source, tmp_path / "copy")
    start_node(chain)
    try:
        files = export(chain, activity, index_url, tmp_path)
    finally:
        stop(chain)
    result = run_lianxin("verify-evidence", str(files[0]), "--dir", str(chain.root))
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["validator_set"] == "genesis"
    trusted = settings_for_chain_dir(chain.root).genesis().validator_set()
    subjects = [verify_evidence_zip(p.read_bytes(), trusted=trusted).subject["kind"] for p in files]
    assert subjects == ["transaction", "record", "license"]
    bad = doctored(files[2], tmp_path / "bad.zip")
    with pytest.raises(EvidenceInvalid, match=r"SM3 of evidence\.json"):
        verify_evidence_zip(bad.read_bytes(), trusted=trusted)
    with zipfile.ZipFile(bad) as archive:
        forged = Evidence.from_json_bytes(archive.read("evidence.json"))
    with pytest.raises(EvidenceInvalid, match=r"Merkle proof|receipt"):
        verify_evidence(forged, trusted=trusted)

    assert verify_chain(chain)["ok"] is True

    rewrite_block(chain, REWRITTEN_HEIGHT)
    expected = verify_chain(chain)
    found = explorer_reverify(chain)
    assert expected["first_bad_height"] == found.first_bad_height == REWRITTEN_HEIGHT, found

    flip_byte(chain, FLIPPED_HEIGHT)
    expected = verify_chain(chain)
    found = explorer_reverify(chain)
    assert expected["first_bad_height"] == found.first_bad_height == FLIPPED_HEIGHT, found
