"""The large-chain phase of ``bench_operations.py`` (``--transactions N``): node backup,
restore and verify-chain measured on a chain that really holds N transactions, and the
registry's backup and restore for a registry holding ``--registry-records`` records.

- **Growing the chain**: a single-validator dev chain (``lianxin init --dev``, then
  ``python -m node.daemon``), ``Anchor`` deployed, then N ``Anchor.anchor(bytes32)``
  transactions sent the fastest honest way this project has (``bench_rpc.fill_lianxin``):
  SM2-signed by a dev account in chunks of 500, sent as JSON-RPC batches of 100 over one
  keep-alive connection, at most 5,000 uncommitted; every one committed before the clock
  stops. The time it took and the rate are reported.
- **Node backup, restore, verify-chain**: the real commands, timed from outside with their
  start-up (about a second of Python imports each): ``lianxin node backup DEST --dir CHAIN``
  while the node runs, ``lianxin node restore DEST --dir NEW``, ``lianxin verify-chain
  --dir NEW``. Sizes are the bytes of the backup's files.
- **Registry**: the trust contracts bootstrapped on the same chain, a department client
  registered, ``python -m registry.cli start`` as a process, ``--registry-records`` records
  notarized through ``POST /v1/records/bulk`` (SDK ``notarize_many``, 1,000 a request) and
  anchored; then ``lianxin registry backup`` (``python -m registry.cli backup``) while the
  registry runs, and ``restore`` into a fresh data dir, timed with their start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench_registry
import peers
from bench_rpc import LianxinSigner, fill_lianxin, fill_roots

from chain.crypto import PrivateKey, sm3
from contracts.artifacts import load_artifact
from registry.bootstrap import bootstrap
from registry.chain_gateway import ChainGateway
from registry.cli import add_client
from registry.db import Database
from registry.department_keys import register_department_key
from registry.settings import RegistrySettings
from sdk.account import Sm2Account
from sdk.trust import TrustClient

ROOT = Path(__file__).resolve().parent.parent
BULK = 1_000
ANCHOR_TIMEOUT_S = 600.0


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``command`` to completion; seconds and stdout (raises on failure)."""
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise peers.PeerError(f"{command} failed: {result.stderr[-2000:]}")
    return seconds, result.stdout


def grow_chain(workdir: Path, group: peers.ProcessGroup, transactions: int) -> dict[str, Any]:
    """A dev chain of ``transactions`` anchor transactions, left running."""
    chain = workdir / "chain"
    port = peers.free_port()
    lianxin = peers.lianxin_command()
    subprocess.run(
        [*lianxin, "init", str(chain), "--dev", "--rpc-port", str(port)],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    # Bootstrapping the trust contracts is dry-run by eth_estimateGas, stopped after
    # call_timeout_ms (5 s): too short on a shared machine, and not what is measured here.
    config = chain / "node.toml"
    config.write_text(config.read_text() + "call_timeout_ms = 60000\n")
    log = workdir / "node.log"
    process = group.start(
        [sys.executable, "-m", "node.daemon", "--config", str(config), "--log-level", "WARNING"],
        cwd=ROOT,
        log=log,
    )
    peers.wait_until_serving(port, process, log)
    client = peers.RpcClient(port)
    password = (chain / "keystore-password").read_bytes().strip()
    account = Sm2Account.from_keystore((chain / "keys" / "admin.json").read_bytes(), password)
    signer = LianxinSigner(client, account)
    anchor = bytes.fromhex(signer.deploy(load_artifact("Anchor").bytecode)[2:])
    started = time.monotonic()

    def progress(done: int) -> None:
        elapsed = time.monotonic() - started
        print(
            f"  {done:>9,} transactions committed, {elapsed:7.1f} s, {done / elapsed:6.0f} tx/s",
            flush=True,
        )

    fill_lianxin(
        client,
        signer,
        anchor,
        fill_roots(transactions),
        on_progress=progress,
        progress_every=max(transactions // 10, 1),
    )
    fill_s = time.monotonic() - started
    height = int(client.call("eth_blockNumber"), 16)
    client.close()
    return {
        "chain": chain,
        "port": port,
        "transactions": transactions,
        "fill_s": fill_s,
        "fill_tx_per_s": transactions / fill_s,
        "head_height": height,
        "node_data_bytes": _du(chain / "node"),
    }


def node_backup_figures(workdir: Path, grown: dict[str, Any]) -> dict[str, Any]:
    lianxin = peers.lianxin_command()
    backup = workdir / "node-backup"
    backup_s, out = _timed(
        [*lianxin, "node", "backup", str(backup), "--dir", str(grown["chain"]), "--json"]
    )
    summary = json.loads(out)
    restored = workdir / "restored-chain"
    restore_s, _ = _timed(
        [*lianxin, "node", "restore", str(backup), "--dir", str(restored), "--json"]
    )
    verify_s, verify_out = _timed([*lianxin, "verify-chain", "--dir", str(restored), "--json"])
    return {
        "backup_s": backup_s,
        "backup_bytes": _du(backup),
        "backup_head_height": summary["headHeight"],
        "restore_s": restore_s,
        "verify_chain_s": verify_s,
        "verify_chain": json.loads(verify_out),
    }


def registry_backup_figures(workdir: Path, grown: dict[str, Any], records: int) -> dict[str, Any]:
    chain: Path = grown["chain"]
    settings = RegistrySettings(
        data_dir=workdir / "registry",
        node_url=f"http://127.0.0.1:{grown['port']}",
        signer_keystore=chain / "keys" / "dept-a.json",
        signer_password_file=chain / "keystore-password",
        batch_interval=1.0,
    )
    db = Database.open(settings)
    gateway = ChainGateway(settings, db)
    governance = Sm2Account.from_keystore(
        (chain / "keys" / "admin.json").read_bytes(), settings.signer_password()
    )
    bootstrap(
        gateway, governance, uscc=bench_registry.DEPARTMENT_USCC, department_name="某区大数据管理局"
    )
    key = PrivateKey.generate()
    register_department_key(
        gateway,
        governance,
        uscc=bench_registry.CLIENT_USCC,
        department_name="bench",
        public_key=key.public_key.to_bytes(),
    )
    gateway.close()
    client = add_client(
        db,
        name="bench",
        uscc=bench_registry.CLIENT_USCC,
        public_key_pem=key.public_key.to_pem(),
        roles=["notarize", "verify"],
    )
    port = peers.free_port()
    with bench_registry.registry_server(settings, port, workdir / "registry.log") as base:
        started = time.monotonic()
        with TrustClient(base, client.id, key, timeout=120) as trust:
            for start in range(0, records, BULK):
                count = min(BULK, records - start)
                trust.notarize_many(
                    [{"digest": sm3(b"bench record %d" % (start + i))} for i in range(count)]
                )
        notarize_s = time.monotonic() - started
        if not bench_registry.wait_until_anchored(db, ANCHOR_TIMEOUT_S):
            raise peers.PeerError("records not anchored in time")
        anchored_s = time.monotonic() - started
        env = dict(os.environ)
        for name, value in settings.model_dump().items():
            if value is not None:
                env[f"LIANXIN_REGISTRY_{name.upper()}"] = str(value)
        command = [sys.executable, "-m", "registry.cli"]
        backup = workdir / "registry-backup"
        backup_s, out = _timed([*command, "backup", str(backup)], env)
    db.close()
    summary = json.loads(out)
    env["LIANXIN_REGISTRY_DATA_DIR"] = str(workdir / "registry-restored")
    restore_s, _ = _timed([*command, "restore", str(backup)], env)
    return {
        "records": records,
        "notarize_s": notarize_s,
        "anchored_s": anchored_s,
        "row_counts": summary["database"]["rowCounts"],
        "backup_s": backup_s,
        "backup_bytes": summary["bytes"],
        "restore_s": restore_s,
        "database_bytes": _du(workdir / "registry"),
    }


def run_large_chain(
    workdir: Path, group: peers.ProcessGroup, transactions: int, registry_records: int
) -> dict[str, Any]:
    """The whole phase; the chain's node is stopped by ``group`` afterwards."""
    print(f"large chain: growing a dev chain to {transactions:,} transactions", flush=True)
    grown = grow_chain(workdir, group, transactions)
    print(
        f"  took {grown['fill_s']:.1f} s ({grown['fill_tx_per_s']:.0f} tx/s), height "
        f"{grown['head_height']}",
        flush=True,
    )
    print("large chain: node backup, restore, verify-chain", flush=True)
    node = node_backup_figures(workdir, grown)
    registry: dict[str, Any] | None = None
    if registry_records > 0:
        print(
            f"large chain: registry with {registry_records:,} records, backup, restore", flush=True
        )
        registry = registry_backup_figures(workdir, grown, registry_records)
    grown = {key: value for key, value in grown.items() if key != "chain"}
    scale = 100_000 / transactions
    return {
        "chain": grown,
        "node": node,
        "per_100k_tx": {
            "backup_s": node["backup_s"] * scale,
            "backup_bytes": node["backup_bytes"] * scale,
            "restore_s": node["restore_s"] * scale,
            "verify_chain_s": node["verify_chain_s"] * scale,
            "exact": transactions == 100_000,
        },
        "registry": registry,
    }


def print_large_chain(results: dict[str, Any]) -> None:
    chain, node, registry = results["chain"], results["node"], results["registry"]
    print()
    print(f"| chain of {chain['transactions']:,} anchor transactions (1 validator) | value |")
    print("|---|---|")
    print(
        f"| grown by pipelined signed JSON-RPC | {chain['fill_s']:.0f} s "
        f"({chain['fill_tx_per_s']:.0f} tx/s), height {chain['head_height']:,} |"
    )
    print(f"| node data directory | {chain['node_data_bytes'] / 1e6:.0f} MB |")
    print(
        f"| `lianxin node backup` (node running) | {node['backup_s']:.1f} s, "
        f"{node['backup_bytes'] / 1e6:.0f} MB |"
    )
    print(f"| `lianxin node restore` | {node['restore_s']:.1f} s |")
    print(f"| `lianxin verify-chain` of the restored copy | {node['verify_chain_s']:.1f} s |")
    if not results["per_100k_tx"]["exact"]:
        p = results["per_100k_tx"]
        print(
            f"| per 100,000 tx, scaled linearly | backup {p['backup_s']:.1f} s, "
            f"{p['backup_bytes'] / 1e6:.0f} MB; restore {p['restore_s']:.1f} s; "
            f"verify-chain {p['verify_chain_s']:.1f} s |"
        )
    if registry is not None:
        print(
            f"| registry: {registry['records']:,} records notarized in bulk, anchored | "
            f"{registry['notarize_s']:.1f} s accepted, {registry['anchored_s']:.1f} s "
            f"anchored |"
        )
        print(
            f"| `lianxin registry backup` (registry running) | {registry['backup_s']:.1f} s, "
            f"{registry['backup_bytes'] / 1e6:.1f} MB |"
        )
        print(f"| `lianxin registry restore` (fresh data dir) | {registry['restore_s']:.1f} s |")
