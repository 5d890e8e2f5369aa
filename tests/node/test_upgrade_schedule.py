"""A parameter schedule on the node: blocks are produced and judged with the block gas limit
that rules their height, so a transaction above the genesis limit is refused before the agreed
height and included from it; a node whose schedule differs refuses the others' block that
relies on the change, saying why; verify-chain applies the schedule; and a node refuses to
start with a schedule entry at a height it has passed without it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from node_harness import make_chain, signed_tx
from test_cli import build_blocks, invoke

from chain.crypto import PrivateKey
from chain.genesis import Genesis, genesis_block
from chain.primitives import Address
from chain.types import Transaction
from chain.upgrades import NO_UPGRADES, ParameterSchedule, Upgrade
from explorer.reverify import _Execution
from node.backup import backup_node, restore_node
from node.chain_dir import ChainDir
from node.config import load_config
from node.ledger import BlockRejected, Ledger
from node.upgrade_schedule import (
    ADOPTED_FILE,
    UpgradeInPast,
    UpgradeRecordError,
    UpgradeWithdrawn,
    adopt_schedule,
    read_adopted,
)
from node.verify import verify_chain

TIME_MS = 1_800_000_000_000
AGREED_HEIGHT = 3
OLD_LIMIT = 30_000_000
NEW_LIMIT = 40_000_000
BETWEEN = 35_000_000
"""A transaction gas limit valid only under the new block gas limit."""

RAISE = ParameterSchedule((Upgrade(AGREED_HEIGHT, "block_gas_limit", NEW_LIMIT),))


@dataclass
class Network:
    """One chain opened three times: the proposer and a follower load the schedule, the
    lagging node does not."""

    scheduled: Genesis
    sender: PrivateKey
    proposer: Ledger
    follower: Ledger
    lagging: Ledger
    clock: int = TIME_MS

    def now(self) -> int:
        self.clock += 1_000
        return self.clock

    def close(self) -> None:
        for ledger in (self.proposer, self.follower, self.lagging):
            ledger.close()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    chain = make_chain()
    assert chain.genesis.block_gas_limit == OLD_LIMIT
    scheduled = replace(chain.genesis, upgrades=RAISE)
    net = Network(
        scheduled,
        chain.deployer,
        Ledger.open(tmp_path / "proposer", scheduled, chain.validator),
        Ledger.open(tmp_path / "follower", scheduled, None),
        Ledger.open(tmp_path / "lagging", chain.genesis, None),
    )
    yield net
    net.close()


def _transfer(key: PrivateKey, gas_limit: int) -> Transaction:
    return signed_tx(key, to=Address(bytes(20)), data=b"", gas_limit=gas_limit)


def _decide(net: Network, txs: list[Transaction]) -> tuple[int, list[Transaction]]:
    """The proposer prepares a block with ``txs`` and every node that accepts it commits it;
    returns its height and the transactions it holds."""
    prepared = net.proposer.prepare_block(txs, net.now())
    block = prepared.block
    certificate = net.proposer._sign_certificate(block.header)
    for ledger in (net.proposer, net.follower, net.lagging):
        ledger.commit_certified(block, certificate)
    return block.header.height, list(block.transactions)


def test_the_new_limit_rules_from_the_agreed_height(network: Network) -> None:
    big = _transfer(network.sender, BETWEEN)
    # Heights 1 and 2: the genesis limit rules; the proposer leaves the transaction out.
    for expected_height in (1, 2):
        small = _transfer(network.sender, 50_000)
        height, included = _decide(network, [small, big])
        assert (height, included) == (expected_height, [small])
    assert network.proposer.rules.block_gas_limit_at(2) == OLD_LIMIT
    # Height 3: the new limit rules; the proposer includes it, the follower agrees.
    prepared = network.proposer.prepare_block([big], network.now())
    assert prepared.block.header.height == AGREED_HEIGHT
    assert list(prepared.block.transactions) == [big]
    network.follower.process_encoded(prepared.block.encode())
    # The node without the schedule refuses it, naming the limit and where it comes from.
    with pytest.raises(BlockRejected) as caught:
        network.lagging.process_encoded(prepared.block.encode())
    message = str(caught.value)
    assert f"gas limit {BETWEEN} outside" in message and f"{OLD_LIMIT}]" in message
    assert f"at height {AGREED_HEIGHT}" in message
    assert "comes from genesis" in message and "parameter schedule differs" in message
    assert network.lagging.head.height == AGREED_HEIGHT - 1


def test_a_block_relying_on_the_new_limit_before_the_height_is_refused(
    network: Network, tmp_path: Path
) -> None:
    """A proposer whose schedule puts the change earlier makes a block that the nodes
    agreeing on the height refuse."""
    early_genesis = replace(network.scheduled, upgrades=_schedule((1, NEW_LIMIT)))
    early = Ledger.open(tmp_path / "early", early_genesis, network.proposer._validator_key)
    try:
        prepared = early.prepare_block([_transfer(network.sender, BETWEEN)], network.now())
    finally:
        early.close()
    assert prepared.block.header.height == 1 and len(prepared.block.transactions) == 1
    with pytest.raises(BlockRejected, match=f"gas limit {BETWEEN} outside .* at height 1"):
        network.follower.process_encoded(prepared.block.encode())
    assert network.follower.head.height == 0


def test_verify_chain_applies_the_schedule(network: Network) -> None:
    _decide(network, [])
    _decide(network, [])
    big = _transfer(network.sender, BETWEEN)
    # Two of them: together above the old limit and the new one's fit both in gas and rule.
    second = _transfer(network.sender, 4_000_000)
    prepared = network.proposer.prepare_block([big, second], network.now())
    certificate = network.proposer._sign_certificate(prepared.block.header)
    network.proposer.commit_certified(prepared.block, certificate)
    network.follower.commit_certified(prepared.block, certificate)
    assert verify_chain(network.proposer.store, network.scheduled) is None
    without = replace(network.scheduled, upgrades=NO_UPGRADES)
    fault = verify_chain(network.proposer.store, without)
    assert fault is not None and fault.height == AGREED_HEIGHT
    assert "re-execution failed" in fault.reason


# -- adopting a schedule at start ----------------------------------------------------------


def _schedule(*entries: tuple[int, int]) -> ParameterSchedule:
    return ParameterSchedule(tuple(Upgrade(h, "block_gas_limit", v) for h, v in entries))


def test_an_entry_above_the_head_is_adopted_and_stays_valid_after_the_head_passes_it(
    tmp_path: Path,
) -> None:
    schedule = _schedule((100, NEW_LIMIT))
    adopt_schedule(tmp_path, schedule, head=40)
    assert read_adopted(tmp_path / ADOPTED_FILE) == schedule.upgrades
    # Restarted after the height: the node ran with the entry, so it is accepted.
    adopt_schedule(tmp_path, schedule, head=180)
    # A later entry added while the head is below it is accepted too.
    extended = _schedule((100, NEW_LIMIT), (400, 50_000_000))
    adopt_schedule(tmp_path, extended, head=200)
    assert read_adopted(tmp_path / ADOPTED_FILE) == extended.upgrades


def test_an_entry_at_or_below_the_head_not_adopted_before_refuses_the_start(
    tmp_path: Path,
) -> None:
    with pytest.raises(UpgradeInPast) as caught:
        adopt_schedule(tmp_path, _schedule((100, NEW_LIMIT)), head=100)
    assert caught.value.field == "upgrades[0]"
    assert "at or below this node's head 100" in str(caught.value)
    assert not (tmp_path / ADOPTED_FILE).exists()
    adopt_schedule(tmp_path, _schedule((101, NEW_LIMIT)), head=100)


def test_an_entry_in_force_cannot_be_withdrawn_or_changed(tmp_path: Path) -> None:
    adopt_schedule(tmp_path, _schedule((100, NEW_LIMIT), (300, 50_000_000)), head=10)
    record = (tmp_path / ADOPTED_FILE).read_bytes()
    with pytest.raises(UpgradeWithdrawn):
        adopt_schedule(tmp_path, NO_UPGRADES, head=150)
    with pytest.raises((UpgradeWithdrawn, UpgradeInPast)):
        adopt_schedule(tmp_path, _schedule((100, 45_000_000)), head=150)
    assert (tmp_path / ADOPTED_FILE).read_bytes() == record
    # The entry not yet in force may still change.
    adopt_schedule(tmp_path, _schedule((100, NEW_LIMIT), (320, 55_000_000)), head=150)


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"upgrades": 5}',
        b'{"upgrades": [{"height": "1", "parameter": "block_gas_limit", "value": 1}]}',
        json.dumps(
            {
                "upgrades": [
                    {"height": 5, "parameter": "block_gas_limit", "value": 30000000},
                    {"height": 4, "parameter": "block_gas_limit", "value": 30000000},
                ]
            }
        ).encode(),
        b"[" * 100 + b"]" * 100,
    ],
)
def test_a_damaged_record_refuses_the_start(tmp_path: Path, content: bytes) -> None:
    (tmp_path / ADOPTED_FILE).write_bytes(content)
    with pytest.raises(UpgradeRecordError):
        adopt_schedule(tmp_path, _schedule((100, NEW_LIMIT)), head=10)
    assert (tmp_path / ADOPTED_FILE).read_bytes() == content


def test_a_backup_carries_the_adopted_schedule_to_the_restored_node(tmp_path: Path) -> None:
    """Restored past the scheduled height, a node starts only if it knows it ran with the
    entry: the record travels in the backup, checked by digest like every file."""
    directory = tmp_path / "chain"
    code, output = invoke("init", str(directory), "--dev")
    assert code == 0, output
    build_blocks(directory, 1)
    config = load_config(ChainDir(directory).config)
    schedule = _schedule((2, NEW_LIMIT))
    adopt_schedule(config.data_dir, schedule, head=1)
    backup = tmp_path / "backup"
    manifest = backup_node(ChainDir(directory).config, backup)
    assert ADOPTED_FILE in manifest.files
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copyfile(ChainDir(directory).config, fresh / "node.toml")
    restored = load_config(fresh / "node.toml")
    if restored.data_dir == config.data_dir:
        pytest.skip("the configuration names a data directory outside the node folder")
    restore_node(backup, fresh)
    assert read_adopted(restored.data_dir / ADOPTED_FILE) == schedule.upgrades
    adopt_schedule(restored.data_dir, schedule, head=5)


def test_the_explorers_reexecution_applies_the_schedule_as_verify_chain_does(
    network: Network,
) -> None:
    """The auditors' re-verification runs each block with the limit of its height: a block
    after the agreed height whose transactions need the new limit re-executes, and without
    the schedule it fails there, as verify-chain does."""
    test_verify_chain_applies_the_schedule(network)
    store = network.proposer.store

    def first_fault(genesis: Genesis) -> tuple[int, str] | None:
        execution = _Execution(genesis)
        parent = genesis_block(genesis)[0].header
        for height in range(1, store.head().height + 1):  # type: ignore[union-attr]
            block = store.block_by_height(height)
            assert block is not None
            fetched = SimpleNamespace(
                header=block.header,
                transactions=tuple(block.transactions),
                receipts=store.receipts(height),
            )
            last_commit = store.commit_certificate(height - 1) if height > 1 else None
            fault = execution.check(fetched, parent, last_commit)  # type: ignore[arg-type]
            if fault is not None:
                return height, fault
            parent = block.header
        return None

    assert first_fault(network.scheduled) is None
    without = replace(network.scheduled, upgrades=NO_UPGRADES)
    fault = first_fault(without)
    assert fault is not None and fault[0] == AGREED_HEIGHT and "re-execution failed" in fault[1]
