"""``lianxin node start --background`` reports "started" only for a node of its own that
answers; a node that cannot start is reported with its reason, a non-zero exit, no pid file
and no process left behind."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import DevChain, free_port, run_cli

from node.rpc_client import rpc_call

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev chain directory, copied by each test (init is the slow part)."""
    root = tmp_path_factory.mktemp("template") / "chain"
    result = run_cli("init", str(root), "--dev", "--rpc-port", "1", "--json")
    assert result.code == 0, result
    return root


@pytest.fixture
def chain(template: Path, tmp_path: Path) -> Iterator[DevChain]:
    """A copy of the template on a free port."""
    root = tmp_path / "chain"
    shutil.copytree(template, root)
    port = free_port()
    config = root / "node.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("rpc_port = 1\n", f"rpc_port = {port}\n"),
        encoding="utf-8",
    )
    dev_chain = DevChain(root=root, port=port, accounts={})
    try:
        yield dev_chain
    finally:
        dev_chain.kill_leftovers()


def test_a_port_another_node_serves_is_refused(chain: DevChain, tmp_path: Path) -> None:
    chain.start_background()
    other_root = tmp_path / "other"
    shutil.copytree(
        chain.root, other_root, ignore=shutil.ignore_patterns("node", "node.pid", "node.log")
    )
    other = DevChain(root=other_root, port=chain.port, accounts={})
    try:
        result = other.cli("node", "start", "--background")
        assert result.code != 0, result
        assert "started" not in result.stdout
        assert "in use" in result.stderr, result
        assert not (other_root / "node.pid").exists()
        assert other.background_pid() is None
        # The node that had the port still serves.
        assert rpc_call(chain.url, "eth_blockNumber") is not None
    finally:
        other.kill_leftovers()
        chain.stop_background()


def test_a_port_a_plain_listener_holds_is_refused(chain: DevChain) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", chain.port))
        listener.listen()
        result = chain.cli("node", "start", "--background")
    assert result.code != 0, result
    assert f"127.0.0.1:{chain.port}" in result.stderr and "in use" in result.stderr, result
    assert not (chain.root / "node.pid").exists()


def test_a_node_that_exits_at_start_is_reported_with_its_error(chain: DevChain) -> None:
    (chain.root / "keystore-password").write_text("not the password\n", encoding="utf-8")
    result = chain.cli("node", "start", "--background")
    assert result.code != 0, result
    assert "node exited" in result.stderr, result
    assert "error" in result.stderr.split("node exited", 1)[1], result
    assert not (chain.root / "node.pid").exists()


def test_a_started_node_answers_and_stops(chain: DevChain) -> None:
    result = chain.cli("node", "start", "--background")
    assert result.code == 0, result
    assert "node started" in result.stdout
    pid = chain.background_pid()
    assert pid is not None
    assert rpc_call(chain.url, "eth_blockNumber") is not None
    chain.stop_background()
    assert not (chain.root / "node.pid").exists()
