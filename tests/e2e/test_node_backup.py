"""Operating a validator on four real validator processes (``lianxin net``), one per
address (127.0.0.2 - 127.0.0.5, the same ports on each, as on four hosts): per-host bundles,
metrics, health, and backup and restore.

Metrics are scraped from ``/metrics`` and parsed with prometheus-client's own parser, and
move as the chain moves; ``node status`` / ``net status`` give a monitoring exit code that
says when a peer is missing or a node does not answer.

node-2 is backed up while transactions keep arriving, then lost (SIGKILL, its directory
wiped) and restored from the backup. The restore checks every file's SM3 digest, the
restored store passes ``verify-chain``, the validator refuses to start until its operator
confirms the double-sign risk, and once confirmed it rejoins by block sync: every node holds
the same blocks and every transaction that got a receipt is still there.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_harness import run_cli
from net_harness import Net, assert_agreement, free_port_block, wait_until
from prometheus_client.parser import text_string_to_metric_families

from chain.crypto import PrivateKey
from chain.primitives import Address, Hash32
from chain.types import Transaction
from chain.validation import sign_transaction
from node.chain_dir import load_key
from node.restore_guard import RESTORED_MARKER
from node.rpc_client import RpcError, rpc_call

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
RESTORED = 2
CATCH_UP_TIMEOUT_S = 120.0


HOSTS = [f"127.0.0.{2 + index}" for index in range(VALIDATORS)]


class HostNet(Net):
    """Node ``i`` on its own address, every node on the same ports."""

    def url(self, index: int) -> str:
        return f"http://{HOSTS[index]}:{self.rpc_base}"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    rpc_port = free_port_block(1)
    p2p_port = free_port_block(1)
    root = tmp_path_factory.mktemp("backup") / "net"
    result = run_cli(
        "net", "init", str(root), "--validators", str(VALIDATORS), "--dev",
        "--rpc-port", str(rpc_port), "--p2p-port", str(p2p_port), "--hosts", ",".join(HOSTS),
        "--json",
    )  # fmt: skip
    assert result.code == 0, result
    assert [v["p2p"] for v in result.json()["validators"]] == [f"{h}:{p2p_port}" for h in HOSTS]
    network = HostNet(root, rpc_port, p2p_port, VALIDATORS)
    result = run_cli("net", "start", "--dir", str(root), "--log-level", "WARNING")
    assert result.code == 0, result
    try:
        yield network
    finally:
        network.kill_all()


class Load:
    """Value-less transactions sent one after another to node 0 until stopped."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.key: PrivateKey = load_key(net.root / "keys" / "admin.json", net.password)
        self.chain_id = int(rpc_call(net.url(0), "eth_chainId", []), 16)
        self.sent: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            unsigned = Transaction(
                chain_id=self.chain_id,
                nonce=Hash32(os.urandom(32)),
                block_limit=self.net.head(0) + 900,
                to=Address(bytes(20)),
                value=0,
                data=b"",
                gas_limit=30_000,
                public_key=self.key.public_key.to_bytes(),
            )
            raw = "0x" + sign_transaction(unsigned, self.key).encode().hex()
            try:
                self.sent.append(str(rpc_call(self.net.url(0), "eth_sendRawTransaction", [raw])))
            except RpcError:
                continue
            self.stop.wait(0.05)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def scrape(net: Net, index: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of node ``index``'s /metrics, by (name, sorted labels)."""
    response = httpx.get(net.url(index) + "/metrics", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _committed(net: Net, tx_hash: str, index: int) -> bool:
    return rpc_call(net.url(index), "eth_getTransactionReceipt", [tx_hash]) is not None


def test_each_host_bundle_holds_its_own_validator_key_and_no_other(
    net: Net, tmp_path: Path
) -> None:
    result = run_cli("net", "bundle", str(tmp_path / "bundles"), "--dir", str(net.root), "--json")
    assert result.code == 0, result
    bundles = [Path(b) for b in result.json()["bundles"]]
    assert [b.name for b in bundles] == [f"node-{i}" for i in range(VALIDATORS)]
    for index, bundle in enumerate(bundles):
        files = sorted(str(f.relative_to(bundle)) for f in bundle.rglob("*") if f.is_file())
        name = f"node-{index}"
        assert files == ["genesis.toml", f"{name}/node.toml", f"{name}/validator.json"]
        own = (net.folder(index) / "validator.json").read_bytes()
        assert (bundle / name / "validator.json").read_bytes() == own
        text = (bundle / name / "node.toml").read_text(encoding="utf-8")
        assert f'p2p_host = "{HOSTS[index]}"' in text
        others = [h for i, h in enumerate(HOSTS) if i != index]
        assert [line.split('"')[1] for line in text.splitlines() if line.startswith("host =")] == (
            others
        )


def test_a_validator_backed_up_under_load_is_restored_and_rejoins(net: Net, tmp_path: Path) -> None:
    wait_until("the first blocks", lambda: min(net.head(i) for i in range(VALIDATORS)) >= 2)
    folder = net.folder(RESTORED)
    backup = tmp_path / "node-2-backup"
    first = scrape(net, 0)
    with Load(net) as load:
        wait_until("transactions committed", lambda: len(load.sent) >= 10)
        second = scrape(net, 0)
        assert second["lianxin_head_height", ()] > first["lianxin_head_height", ()]
        assert second["lianxin_peers", (("state", "connected"),)] == VALIDATORS - 1
        sent = ("lianxin_rpc_request_seconds_count", (("method", "eth_sendRawTransaction"),))
        assert second[sent] >= 10
        blocks_in = ("lianxin_p2p_frames_total", (("direction", "in"), ("kind", "CONSENSUS")))
        assert second[blocks_in] > first.get(blocks_in, 0)
        assert second["lianxin_commit_latency_seconds_count", ()] > first.get(
            ("lianxin_commit_latency_seconds_count", ()), 0
        )
        assert second["lianxin_wal_bytes", ()] > 0 and second["lianxin_store_bytes", ()] > 0
        result = run_cli("node", "backup", str(backup), "--dir", str(folder), "--json")
        assert result.code == 0, result
        summary = result.json()
        assert summary["validator"] is True
        assert summary["headHeight"] >= 2
        backed_up_at = net.head(RESTORED)
        wait_until("blocks after the backup", lambda: net.head(0) >= backed_up_at + 3)
        # The node is lost: killed, its whole directory gone.
        os.kill(net.pid(RESTORED), signal.SIGKILL)
        shutil.rmtree(folder)
        wait_until("the others go on", lambda: net.head(0) >= backed_up_at + 6)
        # Health: the lost node does not answer (3, unknown); its peers miss it (1, warning).
        lost = run_cli("node", "status", "--dir", str(net.folder(0)), "--rpc", net.url(RESTORED))
        assert lost.code == 3, lost
        missing = run_cli("node", "status", "--dir", str(net.folder(0)), "--json")
        assert missing.code == 1, missing
        assert missing.json()["health"] == "warning"
        assert any("node-2" in reason for reason in missing.json()["reasons"]), missing
    others = [i for i in range(VALIDATORS) if i != RESTORED]
    receipted = [h for h in load.sent if _committed(net, h, 0)]
    assert receipted

    # A copy altered after the backup is refused before anything is written.
    altered = tmp_path / "altered"
    shutil.copytree(backup, altered)
    with open(altered / "consensus.wal", "ab") as wal:
        wal.write(b"\0")
    refused = run_cli("node", "restore", str(altered), "--dir", str(tmp_path / "elsewhere"))
    assert refused.code != 0 and "consensus.wal" in refused.stderr, refused
    assert not (tmp_path / "elsewhere" / "node").exists()

    result = run_cli("node", "restore", str(backup), "--dir", str(folder), "--json")
    assert result.code == 0, result
    # A second restore onto the same, no longer fresh, directory is refused.
    again = run_cli("node", "restore", str(backup), "--dir", str(folder))
    assert again.code != 0 and "already holds a chain" in again.stderr, again

    verified = run_cli("verify-chain", "--dir", str(folder), "--json")
    assert verified.code == 0, verified
    assert verified.json()["ok"] is True

    # The restored validator waits for its operator: the double-sign risk is stated.
    unconfirmed = run_cli("node", "start", "--background", "--dir", str(folder))
    assert unconfirmed.code != 0, unconfirmed
    assert "double sign" in unconfirmed.stderr + unconfirmed.stdout, unconfirmed
    assert not (folder / "node.pid").exists()
    marker = next(folder.rglob(RESTORED_MARKER))

    started = run_cli(
        "node", "start", "--background", "--confirm-restored-wal", "--dir", str(folder),
        "--log-level", "INFO",
    )  # fmt: skip
    assert started.code == 0, started
    assert not marker.exists()
    target = max(net.head(i) for i in others)
    wait_until(
        "the restored validator catches up",
        lambda: net.head(RESTORED) >= target,
        timeout=CATCH_UP_TIMEOUT_S,
    )
    base = max(net.head(i) for i in range(VALIDATORS))
    try:
        wait_until(
            "all four commit together",
            lambda: min(net.head(i) for i in range(VALIDATORS)) >= base + 3,
        )
    except AssertionError:
        raise AssertionError(
            f"base {base}; " + "; ".join(str(net.status(i)) for i in range(VALIDATORS))
        ) from None
    assert_agreement(net, list(range(VALIDATORS)))
    wait_until(
        "every validator healthy",
        lambda: run_cli("net", "status", "--dir", str(net.root), "--json").code == 0,
    )
    for tx_hash in receipted:
        assert _committed(net, tx_hash, RESTORED), tx_hash
