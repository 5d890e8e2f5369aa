"""Rewinding the dev chain (evm_revert across blocks): the store deletes every record of the
discarded blocks in one write (every index as it was at the target height), the ledger goes
on from the target (new blocks at the discarded heights), a chain that is not a
single-validator dev chain refuses and keeps everything, and random sequences of transfers,
blocks, snapshots and reverts keep the balances a model of them expects."""

from __future__ import annotations

import dataclasses
import importlib.util
import random
from pathlib import Path
from types import ModuleType

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_harness import DevChain, make_chain, signed_tx

from chain.crypto import PrivateKey
from chain.errors import StorageError
from chain.genesis import GenesisValidator
from chain.primitives import Address
from chain.types import Transaction
from node.dev_rewind import DevSnapshots, RewindRefused, Snapshot
from node.ledger import Ledger
from node.log_index import LogQuery
from node.storage import LmdbBlockStore, keys

CLOCK_MS = 1_800_000_000_000


def _load_writer() -> ModuleType:
    path = Path(__file__).with_name("crash_writer.py")
    spec = importlib.util.spec_from_file_location("crash_writer_for_rewind", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cw = _load_writer()


def _dump(path: Path) -> dict[bytes, list[tuple[bytes, bytes]]]:
    """Every entry of every sub-database but the state, read with lmdb directly."""
    env = lmdb.open(str(path), readonly=True, max_dbs=len(keys.SUB_DATABASES), lock=True)
    try:
        with env.begin() as txn:
            return {
                name: list(txn.cursor(env.open_db(name, txn=txn, create=False)))
                for name in keys.SUB_DATABASES
                if name != keys.STATE
            }
    finally:
        env.close()


def _extend(store: LmdbBlockStore, rng: random.Random, count: int) -> None:
    head = store.head()
    certificate = None if head is None else store.commit_certificate(head.height)
    for _ in range(count):
        commit = cw.synthetic_commit(rng, head, certificate)
        store.commit_block(commit)
        head, certificate = commit.block.header, commit.certificate


def test_store_rewind_leaves_every_index_as_it_was(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "store"
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        _extend(store, rng, 6)
        target = store.head()
        assert target is not None
        discarded = [store.block_by_height(h) for h in range(6, 14)]
    before = _dump(path)
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        _extend(store, rng, 8)
        discarded = [store.block_by_height(h) for h in range(6, 14)]
    assert _dump(path) != before
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        assert store.rewind_to(target.height) == target
    assert _dump(path) == before
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        assert store.head() == target
        for block in discarded:
            assert block is not None
            assert store.block_by_hash(block.hash) is None
            for tx in block.transactions:
                assert store.tx_location(tx.hash) is None
                assert store.nonce_height(tx.nonce) is None
        everything = LogQuery(0, 100)
        assert {e.height for e in store.find_logs(everything, 1000)} == set(range(6))
        # The chain goes on from the target: new blocks at the discarded heights.
        _extend(store, random.Random(8), 3)
        head = store.head()
        assert head is not None and head.height == target.height + 3
        replaced = store.block_by_height(target.height + 1)
        assert replaced is not None and discarded[0] is not None
        assert replaced.hash != discarded[0].hash
        assert replaced.header.parent_hash == target.hash


def test_store_refuses_a_rewind_above_the_head_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        _extend(store, random.Random(1), 3)
    before = _dump(path)
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        for height in (3, 99, -1):
            with pytest.raises(StorageError, match="rewind"):
                store.rewind_to(height)
    assert _dump(path) == before


def _transfer(key: PrivateKey, to: Address, value: int) -> Transaction:
    return signed_tx(key, to=to, data=b"", value=value, gas_limit=21_000)


def test_ledger_rewinds_several_blocks_then_continues(tmp_path: Path) -> None:
    chain = make_chain()
    receiver = chain.outsider.public_key.address
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    seen: list[int] = []
    ledger.rewind_listeners.append(seen.append)
    try:
        ledger.produce_block([_transfer(chain.deployer, receiver, 5)], CLOCK_MS)
        snapshot = ledger.head
        sent = [_transfer(chain.deployer, receiver, 7) for _ in range(4)]
        discarded = [ledger.produce_block([tx], CLOCK_MS + i) for i, tx in enumerate(sent)]
        assert ledger.account(ledger.head, receiver).balance == 5 + 4 * 7
        # A block executed ahead and not yet written is discarded too.
        ahead = ledger.execute_ahead([_transfer(chain.deployer, receiver, 1)], CLOCK_MS + 9)

        rewound = ledger.rewind_dev(snapshot.height)

        assert rewound.head == snapshot and rewound.unwritten == (ahead.block,)

        assert seen == [snapshot.height]
        assert ledger.head == ledger.tip == snapshot and ledger.pending_count == 0
        assert ledger.account(ledger.head, receiver).balance == 5
        for committed in discarded:
            assert ledger.height_of(committed.block.hash) is None
            assert ledger.block(committed.block.header.height) is None
            assert ledger.lookup_transaction(committed.block.transactions[0].hash) is None
            assert not ledger.nonce_committed(committed.block.transactions[0].nonce)
        # The same signed transaction commits again, in a block with another hash.
        again = ledger.produce_block([sent[0]], CLOCK_MS + 100)
        assert again.block.header.height == discarded[0].block.header.height
        assert again.block.hash != discarded[0].block.hash
        assert ledger.lookup_transaction(sent[0].hash) is not None
        assert ledger.account(ledger.head, receiver).balance == 12
    finally:
        ledger.close()
    # Reopened, the ledger resumes from the rewound chain.
    reopened = Ledger.open(tmp_path, chain.genesis, chain.validator)
    try:
        assert reopened.head == again.block.header
    finally:
        reopened.close()


def _refused_and_unchanged(ledger: Ledger, match: str) -> None:
    head = ledger.head
    stored = ledger.store.head()
    with pytest.raises(RewindRefused, match=match):
        ledger.rewind_dev(0)
    assert ledger.head == head and ledger.store.head() == stored
    assert ledger.block(head.height) is not None


def test_a_chain_of_several_validators_or_another_node_refuses(tmp_path: Path) -> None:
    chain = make_chain()
    ledger = Ledger.open(tmp_path / "dev", chain.genesis, chain.validator)
    try:
        ledger.produce_block([], CLOCK_MS)
        with pytest.raises(RewindRefused, match="head is 1"):
            ledger.rewind_dev(2)
    finally:
        ledger.close()
    # The same chain opened by a node that does not hold its validator key.
    observer = Ledger.open(tmp_path / "dev", chain.genesis, None)
    try:
        _refused_and_unchanged(observer, "not the chain's validator")
    finally:
        observer.close()
    second = PrivateKey.generate()
    validators = (
        *chain.genesis.validators,
        GenesisValidator(name="two", public_key=second.public_key.to_bytes(), power=1),
    )
    network = dataclasses.replace(chain.genesis, validators=validators)
    ledger = Ledger.open(tmp_path / "net", network, chain.validator)
    try:
        _refused_and_unchanged(ledger, "2 validators")
    finally:
        ledger.close()


def test_snapshots_follow_hardhat() -> None:
    snapshots = DevSnapshots()
    ids = [snapshots.take(Snapshot(h, bytes(32), 0, None)) for h in range(4)]  # type: ignore[arg-type]
    assert ids == [1, 2, 3, 4]
    assert snapshots.use(99) is None and len(snapshots) == 4
    used = snapshots.use(2)
    assert used is not None and used.height == 1
    # That one and every later one are gone; the earlier one stays.
    assert snapshots.use(3) is None and snapshots.use(2) is None
    assert len(snapshots) == 1 and snapshots.take(Snapshot(9, bytes(32), 0, None)) == 5  # type: ignore[arg-type]


_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 2), st.integers(1, 1000)),
        st.tuples(st.just("mine"), st.just(0), st.just(0)),
        st.tuples(st.just("snapshot"), st.just(0), st.just(0)),
        st.tuples(st.just("revert"), st.integers(0, 7), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture(scope="module")
def model_chain() -> DevChain:
    return make_chain()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=_OPERATIONS)
def test_random_sequences_keep_the_model_balances(
    model_chain: DevChain,
    tmp_path_factory: pytest.TempPathFactory,
    operations: list[tuple[str, int, int]],
) -> None:
    chain = model_chain
    receivers = [
        chain.sender.public_key.address,
        chain.outsider.public_key.address,
        Address(bytes(19) + b"\x77"),
    ]
    ledger = Ledger.open(tmp_path_factory.mktemp("model"), chain.genesis, chain.validator)
    try:
        balances = {address: ledger.account(ledger.head, address).balance for address in receivers}
        snapshots = DevSnapshots()
        model_snapshots: dict[int, tuple[int, dict[Address, int]]] = {}
        committed_txs: list[tuple[int, Transaction]] = []
        discarded_txs: list[Transaction] = []
        clock = CLOCK_MS
        for kind, which, amount in operations:
            clock += 1000
            if kind == "send":
                tx = _transfer(chain.deployer, receivers[which], amount)
                ledger.produce_block([tx], clock)
                balances[receivers[which]] += amount
                committed_txs.append((ledger.head.height, tx))
            elif kind == "mine":
                ledger.produce_block([], clock)
            elif kind == "snapshot":
                head = ledger.head
                snapshot_id = snapshots.take(Snapshot(head.height, head.hash, 0, None))
                model_snapshots[snapshot_id] = (head.height, dict(balances))
            else:
                snapshot_id = which + 1
                snapshot = snapshots.use(snapshot_id)
                expected = model_snapshots.get(snapshot_id)
                assert (snapshot is None) == (expected is None)
                for later in [i for i in model_snapshots if i >= snapshot_id]:
                    del model_snapshots[later]
                if snapshot is None or expected is None:
                    continue
                ledger.rewind_dev(snapshot.height)
                height, kept = expected
                balances = dict(kept)
                assert ledger.head.height == height == snapshot.height
                assert ledger.head.hash == snapshot.block_hash
                discarded_txs += [tx for h, tx in committed_txs if h > height]
                committed_txs = [(h, tx) for h, tx in committed_txs if h <= height]
            for address in receivers:
                assert ledger.account(ledger.head, address).balance == balances[address]
        for height, tx in committed_txs:
            found = ledger.lookup_transaction(tx.hash)
            assert found is not None and found.block.header.height == height
        for tx in discarded_txs:
            assert ledger.lookup_transaction(tx.hash) is None
            assert not ledger.nonce_committed(tx.nonce)
    finally:
        ledger.close()
