"""A validator process and its consensus WAL across restarts: a graceful stop and a torn tail
(an append cut short by a crash) both restart normally; damage in the middle of the log makes
the node refuse to start with a message naming the file and offset, and the file is left as
it was."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import run_cli, wait_for_rpc
from net_harness import Net, free_port_block, wait_until

from chain.consensus import Vote, VoteType
from node.wal import MAGIC, Wal

pytestmark = pytest.mark.e2e

STOP_TIMEOUT_S = 20


@pytest.fixture
def lone_validator(tmp_path: Path) -> Iterator[tuple[Net, int]]:
    """A two-validator network of which only node 0 is ever started (it signs at height 1,
    and no block commits, so its WAL keeps what it signed)."""
    rpc_base, p2p_base = free_port_block(2), free_port_block(2)
    root = tmp_path / "net"
    result = run_cli(
        "net", "init", str(root), "--validators", "2", "--dev",
        "--rpc-port", str(rpc_base), "--p2p-port", str(p2p_base), "--json",
    )  # fmt: skip
    assert result.code == 0, result
    yield Net(root, rpc_base, p2p_base, 2), int(result.json()["chain_id"])


def start_node(net: Net, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "node.daemon", "--config", str(net.folder(0) / "node.toml")],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )


def stop_node(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT_S) == 0


def test_torn_tail_restarts_and_mid_file_damage_refuses_to_start(
    lone_validator: tuple[Net, int], tmp_path: Path
) -> None:
    net, chain_id = lone_validator
    wal = net.folder(0) / "data" / "consensus.wal"
    log = tmp_path / "node.log"

    node = start_node(net, log)
    try:
        wait_for_rpc(net.url(0), node)
        wait_until("a signed message in the WAL", lambda: wal.stat().st_size > len(MAGIC))
    finally:
        stop_node(node)
    # One more record after the node's own: a vote of a later height by the same key.
    key = net.key(0)
    vote = Vote(VoteType.PREVOTE, 2, 0, None, key.public_key.address)
    log_file = Wal.open(wal)
    log_file.append(vote.with_signature(key.sign(vote.sign_bytes(chain_id))))
    log_file.close()
    signed = wal.read_bytes()

    with open(wal, "ab") as handle:
        handle.write(b"\x00\x00\x02\x00\x7f")  # an append cut short after 5 bytes
    node = start_node(net, log)
    try:
        wait_for_rpc(net.url(0), node)
    finally:
        stop_node(node)
    assert "cutting a torn tail of 5 bytes" in log.read_text()
    assert wal.read_bytes().startswith(signed)

    damaged = bytearray(wal.read_bytes())
    damaged[len(MAGIC) + 12 + 3] ^= 0x01  # inside the first record's payload
    wal.write_bytes(bytes(damaged))
    before = log.stat().st_size
    node = start_node(net, log)
    try:
        assert node.wait(timeout=STOP_TIMEOUT_S) == 2
    finally:
        node.kill()
    output = log.read_text()[before:]
    assert f"error: consensus WAL {wal.resolve()} is damaged at byte offset {len(MAGIC)}" in output
    assert "fails its CRC" in output
    assert wal.read_bytes() == damaged
