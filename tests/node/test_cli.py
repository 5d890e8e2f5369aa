"""The operator CLI: init, keys (with openssl PEM interop) and verify-chain catching a
tampered store."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import lmdb
import pytest
from eth_utils import function_signature_to_4byte_selector
from typer.testing import CliRunner

from chain.crypto import PrivateKey
from chain.primitives import Hash32
from chain.types import Block, Transaction
from chain.validation import sign_transaction
from contracts.artifacts import load_artifact
from node import cli_common
from node.chain_dir import ChainDir, load_key
from node.cli import app
from node.config import load_config
from node.daemon import load_genesis
from node.ledger import Ledger
from node.storage import keys as layout

runner = CliRunner()
ANCHOR = function_signature_to_4byte_selector("anchor(bytes32)")


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def chain_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LIANXIN_KEYSTORE_PASSWORD", raising=False)
    directory = tmp_path / "chain"
    code, output = invoke("init", str(directory), "--dev", "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert set(summary["accounts"]) == {"admin", "dept-a", "dept-b"}
    return directory


def test_init_writes_no_key_in_clear(chain_dir: Path) -> None:
    directory = ChainDir(chain_dir)
    password = directory.password_file.read_bytes().strip()
    for keystore in [directory.validator_keystore, *directory.keys.glob("*.json")]:
        key = load_key(keystore, password)
        text = keystore.read_bytes()
        assert key.to_bytes().hex().encode() not in text
        assert key.to_bytes() not in text
        assert keystore.stat().st_mode & 0o077 == 0


def test_init_refuses_an_existing_chain(chain_dir: Path) -> None:
    code, output = invoke("init", str(chain_dir), "--dev")
    assert code == 2
    assert "already holds a chain" in output
    assert f"lianxin node start --dir {chain_dir}" in " ".join(output.split())


def test_keys_new_list_show(chain_dir: Path) -> None:
    code, output = invoke("keys", "new", "archive", "--dir", str(chain_dir))
    assert code == 0, output
    code, output = invoke("keys", "list", "--dir", str(chain_dir), "--json")
    listed = json.loads(output)
    assert set(listed) == {"admin", "dept-a", "dept-b", "archive"}
    code, output = invoke("keys", "show", "archive", "--dir", str(chain_dir), "--json")
    assert json.loads(output)["address"] == listed["archive"]


def test_wrong_password_is_refused(chain_dir: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    code, _ = invoke(
        "keys", "show", "admin", "--dir", str(chain_dir), "--password-file", str(wrong)
    )
    assert code == 1


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_keys_export_and_import_interoperate_with_openssl(chain_dir: Path, tmp_path: Path):
    code, pem = invoke("keys", "export", "admin", "--dir", str(chain_dir))
    assert code == 0
    exported = tmp_path / "admin.pem"
    exported.write_text(pem)
    text = subprocess.run(
        ["openssl", "pkey", "-in", str(exported), "-noout", "-text"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "SM2" in text
    generated = tmp_path / "openssl.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "SM2", "-out", str(generated)],
        check=True,
        capture_output=True,
    )
    code, output = invoke("keys", "import", "fromssl", str(generated), "--dir", str(chain_dir))
    assert code == 0, output
    expected = PrivateKey.from_pem(generated.read_bytes()).public_key.address.hex()
    assert expected in output


def build_blocks(chain_dir: Path, count: int) -> None:
    """Commit a deploy and ``count`` anchor calls, one block each, through the node's ledger."""
    directory = ChainDir(chain_dir)
    password = directory.password_file.read_bytes().strip()
    config = load_config(directory.config)
    genesis = load_genesis(config.genesis)
    validator = load_key(directory.validator_keystore, password)
    admin = load_key(directory.keystore("admin"), password)
    ledger = Ledger.open(config.data_dir, genesis, validator)
    try:
        artifact = load_artifact("Anchor")
        deploy = make_tx(genesis.chain_id, admin, None, artifact.bytecode)
        created = ledger.produce_block([deploy], int(time.time() * 1000)).receipts[0]
        assert created.status == 1 and created.contract_address is not None
        for n in range(count):
            call = make_tx(
                genesis.chain_id, admin, created.contract_address, ANCHOR + bytes([n]) * 32
            )
            assert ledger.produce_block([call], int(time.time() * 1000)).receipts[0].status == 1
    finally:
        ledger.close()


def make_tx(chain_id: int, key: PrivateKey, to: bytes | None, data: bytes) -> Transaction:
    unsigned = Transaction(
        chain_id=chain_id,
        nonce=Hash32(PrivateKey.generate().to_bytes()),
        block_limit=500,
        to=None if to is None else to,  # type: ignore[arg-type]
        value=0,
        data=data,
        gas_limit=3_000_000,
        public_key=key.public_key.to_bytes(),
    )
    return sign_transaction(unsigned, key)


def verify(chain_dir: Path) -> tuple[int, dict[str, object]]:
    code, output = invoke("verify-chain", "--dir", str(chain_dir), "--json")
    return code, json.loads(output)


def blocks_env(chain_dir: Path) -> lmdb.Environment:
    data_dir = load_config(ChainDir(chain_dir).config).data_dir / "blocks"
    return lmdb.open(str(data_dir), max_dbs=16, subdir=True)


def test_verify_chain_passes_on_an_untouched_chain(chain_dir: Path) -> None:
    build_blocks(chain_dir, 3)
    code, result = verify(chain_dir)
    assert code == 0, result
    assert result == {"ok": True, "head": 4}


def test_verify_chain_finds_a_flipped_byte_in_a_stored_block(chain_dir: Path) -> None:
    build_blocks(chain_dir, 3)
    env = blocks_env(chain_dir)
    with env.begin(db=env.open_db(layout.BLOCKS)) as txn:
        record = bytes(txn.get(layout.height_key(3)))
    env.close()
    data_file = load_config(ChainDir(chain_dir).config).data_dir / "blocks" / "data.mdb"
    raw = bytearray(data_file.read_bytes())
    # Copy-on-write leaves stale copies of the page in free space; flip the byte in each, so
    # the live copy is hit whichever it is.
    offset = raw.find(record)
    assert offset >= 0
    while offset >= 0:
        raw[offset + len(record) // 2] ^= 0x01
        offset = raw.find(record, offset + 1)
    data_file.write_bytes(bytes(raw))
    code, result = verify(chain_dir)
    assert code == 1
    assert result["first_bad_height"] == 3


def test_verify_chain_finds_a_consistently_rewritten_block(chain_dir: Path) -> None:
    """A tamperer who also fixes the record checksum is caught by the hashes."""
    build_blocks(chain_dir, 3)
    env = blocks_env(chain_dir)
    blocks = env.open_db(layout.BLOCKS)
    with env.begin(db=blocks, write=True) as txn:
        block = Block.decode(layout.unframe(bytes(txn.get(layout.height_key(2))), "test"))
        tx = block.transactions[0]
        forged_tx = Transaction(**{**tx.__dict__, "data": ANCHOR + b"\xee" * 32})
        forged = Block(block.header, (forged_tx,), block.last_commit)
        txn.put(layout.height_key(2), layout.frame(forged.encode()))
    env.close()
    code, result = verify(chain_dir)
    assert code == 1
    assert result["first_bad_height"] == 2


def test_init_with_validators_makes_a_local_network(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    code, output = invoke("init", str(directory), "--validators", "4", "--dev", "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert len(summary["validators"]) == 4
    assert len({v["rpc"] for v in summary["validators"]}) == 4
    assert len({v["p2p"] for v in summary["validators"]}) == 4
    assert sorted(p.name for p in directory.glob("node-*")) == [f"node-{i}" for i in range(4)]


def test_messages_reach_a_narrow_terminal_unbroken(
    chain_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command to copy, a path or an address is never split by a line break at a narrow
    terminal's width (tables still fit it)."""
    monkeypatch.setattr(cli_common.console, "width", 30)
    monkeypatch.setattr(cli_common.errors, "width", 30)
    code, output = invoke("init", str(chain_dir), "--dev")
    assert code == 2
    assert f"lianxin node start --dir {chain_dir}" in output
    code, output = invoke("keys", "list", "--dir", str(chain_dir), "--json")
    assert code == 0
    for address in json.loads(output).values():
        assert address in output
