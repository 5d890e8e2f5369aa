"""A rolling upgrade of four validators as real processes, under a steady stream of
transactions, that also rolls out a consensus parameter change at an agreed height.

The network runs (``lianxin net init/start``) while client threads send transfers, each
waited for by its receipt. The operator appends a ``[[upgrades]]`` entry to the genesis file
(the block gas limit rises at height H, far enough ahead) and restarts the validators one at
a time, each stopped by SIGTERM (``lianxin net stop --node i``) and started as the new
build (``LIANXIN_BUILD``), waiting for it to rejoin before the next. Then:

- every transaction sent is included exactly once (no loss, no duplicate), and all four
  nodes hold the same blocks;
- every node reports the new build and the same schedule digest;
- a transaction whose gas limit only the new limit allows is refused at admission before H
  and included from H on;
- verify-chain re-verifies a stopped node's chain with the schedule.

And no halt: the longest gap between consecutive commits from the first stop to the last
node signing again is at most the propose timeout. It is measured from the committed blocks'
own timestamps (``timestampMs``: each proposer stamps its block with its clock when it
builds it; one host, one clock), so a round lost to a stopped proposer shows as the time from
one block's building to the next's. This is a liveness property of the protocol, not a
benchmark: a validator whose proposer's connection is down (or who is behind) prevotes nil at
once (:mod:`node.proposer_presence`) and a round with 2/3 nil precommits moves on without the
precommit timeout, so the stopped validator's turn costs one quick failed round instead of
the propose timeout, the nil votes and the precommit timeout (1.8-2.2 s before). Every gap is
printed.

The agreed height is placed by how long this machine takes to start the four nodes (a
restart is a stop and a start under the same load): far enough for four restarts, and no
farther, so the test waits for it only a little after the last restart.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e_harness import cli_environment, lianxin_command, run_cli
from net_harness import Net, assert_agreement, new_net, wait_until

from chain.crypto.sm3 import sm3
from node.config import load_config
from node.rpc_client import RpcError, rpc_call
from sdk.account import Sm2Account
from sdk.transactions import build_transaction, encode_raw

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
NEW_BUILD = "r2"
OLD_LIMIT = 60_000_000
"""The block gas limit ``lianxin net init`` writes into genesis."""
NEW_LIMIT = 80_000_000
BETWEEN = 70_000_000
"""A transaction gas limit valid only under the new block gas limit."""
SENDERS = 3
RECEIPT_DEADLINE_S = 240.0
REJOIN_DEADLINE_S = 180.0
RESTART_BUDGET_MIN_S = 45.0
"""Least time the agreed height is placed ahead of the first restart."""
RESTART_COST_FACTOR = 3.0
"""One restart (stop, start, catch up, sign) is budgeted this many times the time the first
``net start`` of all four nodes took (which loads the machine the same way)."""


@dataclass
class Sent:
    """One transaction of the load: its hash and, once found, its block."""

    tx_hash: str
    block: int | None = None


@dataclass
class Load:
    """Client threads that each send a transfer, wait for its receipt, and send the next;
    a node that does not answer is passed over and the same signed bytes go to another."""

    net: Net
    account: Sm2Account
    chain_id: int
    down: set[int] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for index in range(SENDERS):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(RECEIPT_DEADLINE_S + 30)

    def live(self, first: int) -> list[int]:
        nodes = [(first + k) % VALIDATORS for k in range(VALIDATORS)]
        return [n for n in nodes if n not in self.down]

    def _run(self, worker: int) -> None:
        turn = worker
        while not self.stop.is_set():
            turn += 1
            try:
                self._one(turn)
            except Exception as exc:  # the test fails on any of these
                with self.lock:
                    self.failures.append(f"worker {worker}: {exc!r}")
                return

    def _one(self, turn: int) -> None:
        head = self._ask(turn, "eth_blockNumber", [])
        tx = build_transaction(
            chain_id=self.chain_id,
            to=bytes(20),
            data=b"",
            gas_limit=50_000,
            block_limit=int(head, 16) + 500,
            value=1,
        )
        raw = encode_raw(self.account.sign_transaction(tx))
        record = Sent("0x" + sm3(bytes.fromhex(raw[2:])).hex())
        with self.lock:
            self.sent.append(record)
        try:
            answered = self._ask(turn, "eth_sendRawTransaction", [raw])
            assert answered == record.tx_hash, (answered, record.tx_hash)
        except RpcError as exc:
            # Sent before to a node that went down mid-request and kept it: known already.
            if "known" not in str(exc).lower():
                raise
        deadline = time.monotonic() + RECEIPT_DEADLINE_S
        while time.monotonic() < deadline:
            receipt = self._ask(turn, "eth_getTransactionReceipt", [record.tx_hash])
            if receipt is not None:
                assert receipt["status"] == "0x1", receipt
                record.block = int(receipt["blockNumber"], 16)
                return
            time.sleep(0.1)
        raise AssertionError(f"no receipt for {record.tx_hash} in {RECEIPT_DEADLINE_S} s")

    def _ask(self, turn: int, method: str, params: list[object]) -> object:
        """Call ``method`` on the first node that answers, starting from ``turn``'s."""
        deadline = time.monotonic() + REJOIN_DEADLINE_S
        while time.monotonic() < deadline:
            for node in self.live(turn):
                try:
                    return rpc_call(self.net.url(node), method, params, timeout=5)
                except RpcError as exc:
                    if exc.code is not None:
                        raise
            time.sleep(0.2)
        raise AssertionError(f"no node answered {method}")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with new_net(tmp_path / "net", VALIDATORS) as network:
        yield network


def start_as_new_build(net: Net, index: int) -> None:
    """``lianxin net start --node INDEX`` with the new build's label in its environment."""
    environment = cli_environment()
    environment["LIANXIN_BUILD"] = NEW_BUILD
    completed = subprocess.run(
        [*lianxin_command(), "net", "start", "--dir", str(net.root), "--node", str(index)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
        check=False,
    )
    assert completed.returncode == 0, completed


def big_transfer(account: Sm2Account, chain_id: int, head: int) -> str:
    """A signed transfer asking for more gas than the old block gas limit allows."""
    tx = build_transaction(
        chain_id=chain_id, to=bytes(20), data=b"", gas_limit=BETWEEN, block_limit=head + 500
    )
    return encode_raw(account.sign_transaction(tx))


def client_version(net: Net, index: int) -> str:
    return str(rpc_call(net.url(index), "web3_clientVersion", [], timeout=3))


def signs_at_or_after(net: Net, address: str, since: int, reader: int) -> bool:
    """Whether ``address`` signed one of the last certificates node ``reader`` holds, at
    ``since`` or above. Only heights the reader holds are asked for: another node's head may
    be ahead of the reader's, and a height the reader lacks has no certificate to read."""
    top = net.head(reader)
    return any(
        address in net.certificate_signers(reader, h) for h in range(max(since, top - 5), top + 1)
    )


def commit_gaps(stamps: dict[int, int], first: int, last: int) -> list[tuple[int, int]]:
    """(height, ms since the previous block) for ``first+1 .. last``, from block
    timestamps (every proposer stamps its block with its clock; one host, one clock)."""
    return [(h, stamps[h] - stamps[h - 1]) for h in range(first + 1, last + 1)]


def test_rolling_upgrade_under_load_with_a_parameter_change(net: Net) -> None:
    started = time.monotonic()
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "INFO")
    assert result.code == 0, result
    everyone = list(range(VALIDATORS))
    wait_until("first blocks", lambda: min(net.head(i) for i in everyone) >= 3)
    start_s = time.monotonic() - started
    config = load_config(net.folder(0) / "node.toml")
    chain_id = int(rpc_call(net.url(0), "eth_chainId", []), 16)
    account = Sm2Account.from_keystore(
        (net.root / "keys" / "dept-a.json").read_bytes(), net.password
    )
    assert all(f"+{NEW_BUILD}/" not in client_version(net, i) for i in everyone)

    load = Load(net, account, chain_id)
    load.start()
    # The block rate under load, to place the agreed height beyond the rolling restart.
    base = net.head(0)
    t0 = time.monotonic()
    wait_until("20 blocks", lambda: net.head(0) >= base + 20)
    block_s = (time.monotonic() - t0) / 20
    # Far enough for four restarts, each budgeted from the time the four nodes took to
    # start: at load 19 here the start took 16 s and a restart 40-45 s.
    budget_s = max(RESTART_BUDGET_MIN_S, VALIDATORS * RESTART_COST_FACTOR * start_s)
    agreed = net.head(0) + int(budget_s / block_s)
    print(f"start {start_s:.1f} s, block time {block_s * 1000:.0f} ms under load; agreed height "
          f"{agreed} ({budget_s:.0f} s ahead)")  # fmt: skip
    with (net.root / "genesis.toml").open("a", encoding="utf-8") as genesis:
        genesis.write(
            f'\n[[upgrades]]\nheight = {agreed}\nparameter = "block_gas_limit"\n'
            f"value = {NEW_LIMIT}\n"
        )

    rolling_from = net.head(0)
    restarts = []
    for index in everyone:
        others = [i for i in everyone if i != index]
        address = "0x" + net.key(index).public_key.address.hex()
        log_size = (net.folder(index) / "node.log").stat().st_size
        stopped_at = time.monotonic()
        load.down.add(index)
        stop = run_cli("net", "stop", "--dir", str(net.root), "--node", str(index))
        assert stop.code == 0, stop
        stop_s = time.monotonic() - stopped_at
        shutdown_log = (net.folder(index) / "node.log").read_bytes()[log_size:].decode()
        assert "Traceback" not in shutdown_log, shutdown_log
        started_at = time.monotonic()
        start_as_new_build(net, index)
        assert client_version(net, index).split("/")[1].endswith(f"+{NEW_BUILD}")
        load.down.discard(index)
        rejoin = max(net.head(i) for i in others)
        wait_until(
            f"node {index} catches up",
            lambda i=index, h=rejoin: net.head(i) >= h,  # type: ignore[misc]
            timeout=REJOIN_DEADLINE_S,
        )
        caught_up_s = time.monotonic() - started_at
        wait_until(
            f"node {index} signs again",
            lambda a=address, h=rejoin, r=others[0]: signs_at_or_after(net, a, h + 1, r),  # type: ignore[misc]
            timeout=REJOIN_DEADLINE_S,
        )
        signing_s = time.monotonic() - started_at
        restarts.append((index, stop_s, caught_up_s, signing_s))
        assert net.head(index) < agreed, "the agreed height came before the restarts ended"
    rolling_to = net.head(0)
    # The stopped validators' proposer turns were cut short: the last one restarted was
    # down while the others (restarted before it, counters fresh) waited on it.
    shortcuts = {
        reason: sum(int(net.status(i)["counters"].get(f"proposer_{reason}", 0)) for i in everyone)
        for reason in ("disconnected", "behind")
    }
    print("rounds whose proposer was found unavailable:", shortcuts)
    assert shortcuts["disconnected"] >= 1, shortcuts
    for index, stop_s, caught_up_s, signing_s in restarts:
        print(
            f"node {index}: stop {stop_s:.1f} s, caught up {caught_up_s:.1f} s, "
            f"signing {signing_s:.1f} s after its start command"
        )

    # Every node runs the new build with the same schedule.
    digests = {
        rpc_call(net.url(i), "lianxin_getNodeVersion", [])["scheduleDigest"] for i in everyone
    }
    assert len(digests) == 1
    # Before the agreed height the old limit rules: refused at admission.
    early = big_transfer(account, chain_id, net.head(0))
    assert net.head(0) + 1 < agreed
    with pytest.raises(RpcError, match=f"gas limit {BETWEEN} outside .*{OLD_LIMIT}"):
        rpc_call(net.url(0), "eth_sendRawTransaction", [early])
    # From the agreed height the new one: included at or above it.
    wait_until(
        "the agreed height",
        lambda: min(net.head(i) for i in everyone) >= agreed - 1,
        timeout=agreed * block_s * 3 + 120,
    )
    big_hash = rpc_call(
        net.url(1), "eth_sendRawTransaction", [big_transfer(account, chain_id, net.head(1))]
    )
    receipt = None
    deadline = time.monotonic() + RECEIPT_DEADLINE_S
    while receipt is None and time.monotonic() < deadline:
        receipt = rpc_call(net.url(2), "eth_getTransactionReceipt", [big_hash])
        time.sleep(0.2)
    assert receipt is not None and receipt["status"] == "0x1"
    assert int(receipt["blockNumber"], 16) >= agreed

    load.finish()
    assert not load.failures, load.failures
    assert all(s.block is not None for s in load.sent)
    # Every transaction sent is in exactly one block, the one its receipt names. A receipt
    # came from whichever node answered: wait until every node holds the last such block.
    highest = max(s.block for s in load.sent if s.block is not None)
    wait_until(
        "every node at the load's last block", lambda: min(map(net.head, everyone)) >= highest
    )
    last = assert_agreement(net, everyone)
    first_sent = min(s.block for s in load.sent if s.block is not None)
    found: dict[str, list[int]] = {}
    stamps: dict[int, int] = {}
    for height in range(min(first_sent, rolling_from), last + 1):
        block = rpc_call(net.url(3), "eth_getBlockByNumber", [hex(height), False], timeout=5)
        stamps[height] = int(block["timestampMs"], 16)
        for tx_hash in block["transactions"]:
            found.setdefault(tx_hash, []).append(height)
    lost = [s.tx_hash for s in load.sent if s.tx_hash not in found]
    twice = {h: blocks for h, blocks in found.items() if len(blocks) > 1}
    assert not lost and not twice, (lost, twice)
    assert all(found[s.tx_hash] == [s.block] for s in load.sent)
    assert found[big_hash] == [int(receipt["blockNumber"], 16)]

    gaps = commit_gaps(stamps, rolling_from, rolling_to)
    longest = max(gaps, key=lambda g: g[1])
    print(f"{len(load.sent)} transactions sent, 0 lost, 0 twice")
    print(f"propose timeout {config.timeout_propose_ms} ms")
    values = sorted(g[1] for g in gaps)
    print(f"commit gaps from block timestamps, heights {rolling_from}..{rolling_to}: median "
          f"{values[len(values) // 2]} ms; the ten longest (height, ms):",
          sorted(gaps, key=lambda g: -g[1])[:10])  # fmt: skip
    print(f"longest commit gap in the rolling restart: {longest[1]} ms before height {longest[0]}")
    assert longest[1] <= config.timeout_propose_ms, (
        f"a halt of {longest[1]} ms before height {longest[0]}, longer than the propose "
        f"timeout of {config.timeout_propose_ms} ms"
    )

    # verify-chain applies the schedule when it re-verifies a stopped node's chain.
    stop = run_cli("net", "stop", "--dir", str(net.root), "--node", "0")
    assert stop.code == 0, stop
    verified = run_cli("verify-chain", "--dir", str(net.folder(0)), "--json")
    assert verified.code == 0, verified
    assert verified.json()["ok"] is True
