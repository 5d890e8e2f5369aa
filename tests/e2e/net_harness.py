"""Shared pieces of the multi-validator end-to-end tests: a network directory made by
``lianxin net init`` on free ports (with node settings of the test's own), its processes,
and the checks every phase repeats (heads, block hashes, agreement at common heights)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from e2e_harness import run_cli

from chain.crypto import PrivateKey
from node.chain_dir import load_key
from node.rpc_client import RpcError, rpc_call

PHASE_TIMEOUT_S = 60.0
"""Longest one phase of a network test may wait for its condition."""


PORT_RANGE = (20_000, 32_768)
"""Where port blocks are drawn: below Linux's ephemeral range (32768–60999), so that no
outgoing connection of this or another process can take a port between the draw and the
node binding it."""

_handed_out: set[int] = set()
"""Ports this process already handed out: blocks drawn for one network (RPC, p2p, a test's
proxy) are chosen before any is bound, so a probe alone cannot keep them apart."""


def free_port_block(count: int) -> int:
    """A base port such that ``base .. base+count-1`` are free on 127.0.0.1 now and overlap
    no block handed out before in this process."""
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(PORT_RANGE[0], PORT_RANGE[1] - count)
        block = range(base, base + count)
        if _handed_out.intersection(block):
            continue
        try:
            for port in block:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        _handed_out.update(block)
        return base
    raise AssertionError("no block of free ports")


class Net:
    """The network directory and its processes."""

    def __init__(self, root: Path, rpc_base: int, p2p_base: int, size: int) -> None:
        self.root = root
        self.rpc_base = rpc_base
        self.p2p_base = p2p_base
        self.size = size

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.rpc_base + index}"

    def folder(self, index: int) -> Path:
        return self.root / f"node-{index}"

    def pid(self, index: int) -> int:
        return int((self.folder(index) / "node.pid").read_text().strip())

    def status(self, index: int) -> dict[str, Any]:
        return rpc_call(self.url(index), "lianxin_getConsensusStatus", [], timeout=3)

    def head(self, index: int) -> int:
        return int(rpc_call(self.url(index), "eth_blockNumber", [], timeout=3), 16)

    def block_hash(self, index: int, height: int) -> str:
        block = rpc_call(self.url(index), "eth_getBlockByNumber", [hex(height), False], timeout=3)
        return str(block["hash"])

    def certificate_signers(self, index: int, height: int) -> set[str]:
        found = rpc_call(self.url(index), "lianxin_getBlockHeader", [hex(height)], timeout=3)
        return {s["validator"] for s in found["certificate"]["signatures"]}

    @property
    def password(self) -> bytes:
        return (self.root / "keystore-password").read_bytes().strip()

    def key(self, index: int) -> PrivateKey:
        return load_key(self.folder(index) / "validator.json", self.password)

    def log_lines(self, index: int, containing: str) -> list[str]:
        """The lines of node ``index``'s ``node.log`` that contain ``containing``."""
        try:
            text = (self.folder(index) / "node.log").read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return [f"no node.log: {exc}"]
        return [line for line in text.splitlines() if containing in line]

    def kill_all(self) -> None:
        for index in range(self.size):
            with contextlib.suppress(OSError, ValueError):
                pid = self.pid(index)
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)


def set_node_options(net: Net, options: Mapping[str, int | bool]) -> None:
    """Set top-level ``options`` in every node's ``node.toml``: a setting already there
    takes the new value, a missing one is added before the first table (``[[peers]]``)."""
    for index in range(net.size):
        path = net.folder(index) / "node.toml"
        text = path.read_text(encoding="utf-8")
        for name, value in options.items():
            line = f"{name} = {str(value).lower() if isinstance(value, bool) else value}"
            text, found = re.subn(rf"^{re.escape(name)} = .*$", line, text, flags=re.MULTILINE)
            if not found:
                top, table, tables = text.partition("\n[")
                text = f"{top}\n{line}\n{table}{tables}"
        path.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def new_net(
    root: Path,
    validators: int,
    *,
    observers: int = 0,
    options: Mapping[str, int | bool] | None = None,
) -> Iterator[Net]:
    """A network of ``validators`` validators and ``observers`` observers made by ``lianxin
    net init`` in ``root`` on free ports, with ``options`` set in every node's ``node.toml``;
    not started. Every node process is killed when the block ends."""
    size = validators + observers
    rpc_base = free_port_block(size)
    p2p_base = free_port_block(size)
    result = run_cli(
        "net", "init", str(root), "--validators", str(validators),
        *(["--observers", str(observers)] if observers else []), "--dev",
        "--rpc-port", str(rpc_base), "--p2p-port", str(p2p_base), "--json",
    )  # fmt: skip
    assert result.code == 0, result
    assert len(result.json()["observers"]) == observers, result
    net = Net(root, rpc_base, p2p_base, size)
    if options:
        set_node_options(net, options)
    try:
        yield net
    finally:
        net.kill_all()


def start_net(net: Net) -> None:
    """``lianxin net start`` of every node of ``net``."""
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert result.code == 0, result


def wait_until(what: str, condition: Callable[[], bool], timeout: float = PHASE_TIMEOUT_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def assert_agreement(net: Net, nodes: list[int]) -> int:
    """All ``nodes`` hold the same block at every common height (recent heights all, older
    ones sampled); returns the highest common height."""
    common = min(net.head(i) for i in nodes)
    heights = sorted({*range(max(1, common - 30), common + 1), *range(1, common + 1, 7)})
    for height in heights:
        hashes = {net.block_hash(i, height) for i in nodes}
        assert len(hashes) == 1, f"fork at height {height}: {hashes}"
    return common
