"""SIGKILL of a real dev node (``lianxin node start``) while it answers ``evm_revert`` over a
few hundred blocks: restarted, the node serves either the old head or the snapshot's head,
the stored chain verifies from genesis, and the dev chain goes on from there (a revert to a
fresh snapshot still works).

Each node process is forked from one process that imported ``node.daemon`` once
(``tests/support/fork_server.py``) and runs what ``lianxin node start`` runs in the foreground
(``python -m node.daemon --config ...``, into which the command execs itself): the imports
were most of a start's CPU, and the forked node opens its store and its ports only after the
fork, as a freshly started one does.

The kill moments come from a seeded generator; the seed is printed (set
``LIANXIN_CRASH_SEED`` to replay a run) and ``LIANXIN_REWIND_KILLS`` sets how many kills.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import fork_server as fs
import pytest

from chain.genesis import Genesis
from node.chain_dir import ChainDir, init_chain_dir
from node.genesis_file import load_genesis
from node.rpc_client import RpcError, rpc_call
from node.storage import LmdbBlockStore
from node.verify import verify_chain

KILLS = int(os.environ.get("LIANXIN_REWIND_KILLS", "3"))
BLOCKS = 200
"""Blocks mined after each snapshot: what each revert discards."""
KILL_WITHIN_S = 0.06
"""The kill comes this long at most after the revert was sent: around the rewind's write."""
START_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _node(server: fs.ForkServer, root: Path, url: str) -> Iterator[fs.Child]:
    """The node of ``root`` (``python -m node.daemon``, as ``lianxin node start --dir root``
    runs it) forked by ``server`` in a session of its own, answering at ``url``; killed on
    exit if still running."""
    process = server.start(
        "module",
        "node.daemon",
        ["--config", str(ChainDir(root).config), "--log-level", "INFO"],
        output=root / "node.log",
        new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, (root / "node.log").read_text()
            try:
                rpc_call(url, "eth_blockNumber", timeout=1)
                break
            except RpcError:
                assert time.monotonic() < deadline, "the node did not answer"
                time.sleep(0.1)
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


def _head(url: str) -> tuple[int, str]:
    block = rpc_call(url, "eth_getBlockByNumber", ["latest", False])
    return int(block["number"], 16), block["hash"]


@pytest.mark.slow
def test_sigkill_while_the_node_reverts_leaves_either_head(tmp_path: Path) -> None:
    seed = int(os.environ.get("LIANXIN_CRASH_SEED", random.SystemRandom().randrange(2**32)))
    print(f"node rewind crash seed: {seed} (rerun with LIANXIN_CRASH_SEED={seed})")
    rng = random.Random(seed)
    port = _free_port()
    root = tmp_path / "chain"
    init_chain_dir(
        root,
        password=None,
        dev=True,
        rpc_port=port,
        timestamp_ms=int(time.time() * 1000),
        iterations=1024,
    )
    url = f"http://127.0.0.1:{port}"
    genesis = load_genesis(root / "genesis.toml")
    outcomes = {"old head": 0, "snapshot": 0}
    environment = {k: v for k, v in os.environ.items() if k != "LIANXIN_KEYSTORE_PASSWORD"}
    server = fs.ForkServer(["node.daemon"], environment, tmp_path / "fork-server.log")
    try:
        _kill_while_reverting(server, root, url, genesis, rng, outcomes)
    finally:
        server.close()
    print(f"{KILLS} kills during a {BLOCKS}-block revert: {outcomes}")


def _kill_while_reverting(
    server: fs.ForkServer,
    root: Path,
    url: str,
    genesis: Genesis,
    rng: random.Random,
    outcomes: dict[str, int],
) -> None:
    """``KILLS`` rounds: mine ``BLOCKS`` blocks past a snapshot, kill the node while it
    reverts to it, check the stored chain and what the restarted node serves (counted in
    ``outcomes``)."""
    for _ in range(KILLS):
        with _node(server, root, url) as process:
            (admin, *_) = rpc_call(url, "eth_accounts", [])
            snapshot = rpc_call(url, "evm_snapshot", [])
            kept = _head(url)
            for number in range(BLOCKS):
                if number % 5 == 0:
                    rpc_call(url, "eth_sendTransaction", [{"from": admin, "to": admin}])
                else:
                    rpc_call(url, "evm_mine", [])
            old = _head(url)
            reverting = threading.Thread(
                target=_quietly, args=(url, "evm_revert", snapshot), daemon=True
            )
            reverting.start()
            time.sleep(rng.uniform(0.0, KILL_WITHIN_S))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            reverting.join(timeout=30)
        with LmdbBlockStore.open(root / "node" / "blocks") as store:
            assert verify_chain(store, genesis) is None
        with _node(server, root, url):
            head = _head(url)
            assert head in (old, kept), (head, old, kept)
            outcomes["old head" if head == old else "snapshot"] += 1
            # The dev chain goes on: a fresh snapshot, a block, a revert.
            again = rpc_call(url, "evm_snapshot", [])
            rpc_call(url, "evm_mine", [])
            assert rpc_call(url, "evm_revert", [again]) is True
            assert _head(url) == head


def _quietly(url: str, method: str, *params: object) -> None:
    """Call ``method``; the node may be killed before it answers."""
    with suppress(RpcError, OSError):
        rpc_call(url, method, list(params), timeout=60)
