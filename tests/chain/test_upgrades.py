"""The genesis parameter schedule (``[[upgrades]]``): the examples in tests/vectors/upgrades
parse, or fail with the typed error naming the entry; the schedule is not part of the genesis
block; the value ruling a height is the genesis value changed by every entry at or below it;
transaction validation applies it height by height."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain import upgrades as upgrades_module
from chain.crypto import PrivateKey
from chain.errors import GenesisError
from chain.genesis import genesis_block, genesis_to_toml, parse_genesis
from chain.limits import MAX_UPGRADES
from chain.primitives import Hash32
from chain.types import Transaction
from chain.upgrades import (
    MIN_BLOCK_GAS_LIMIT,
    ParameterSchedule,
    ScheduleError,
    ScheduleOutOfOrder,
    Upgrade,
    check_order,
    parse_schedule,
)
from chain.validation import (
    GasLimitOutOfRange,
    sign_transaction,
    tx_rules_of,
    validate_block_transactions,
    validate_transaction,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
BASE = (VECTORS / "genesis" / "valid_minimal.toml").read_text(encoding="utf-8")
UPGRADES = VECTORS / "upgrades"
INVALID = sorted(UPGRADES.glob("invalid_*.toml"))


def with_fragment(path: Path) -> str:
    """The minimal genesis with the example's TOML: tables after it, a bare key before."""
    fragment = path.read_text(encoding="utf-8")
    body = "\n".join(line for line in fragment.splitlines() if not line.startswith("#"))
    return f"{BASE}\n{body}\n" if body.lstrip().startswith("[[") else f"{body}\n{BASE}"


def header(path: Path, name: str) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"# {name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path.name} has no # {name}: line")


def test_vectors_exist() -> None:
    assert len(INVALID) >= 10


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_is_refused_naming_the_entry(path: Path) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_genesis(with_fragment(path))
    assert type(caught.value).__name__ == header(path, "error")
    assert isinstance(caught.value, GenesisError)
    assert caught.value.field == header(path, "field")
    assert header(path, "reason") in caught.value.reason


def test_schedule_is_not_part_of_the_genesis_block() -> None:
    plain = parse_genesis(BASE)
    scheduled = parse_genesis(with_fragment(UPGRADES / "valid_raise_gas_limit.toml"))
    assert scheduled.upgrades.upgrades == (
        Upgrade(100, "block_gas_limit", 40_000_000),
        Upgrade(250, "block_gas_limit", 60_000_000),
    )
    assert dataclasses.replace(scheduled, upgrades=plain.upgrades) == plain
    assert genesis_block(scheduled)[0].hash == genesis_block(plain)[0].hash
    assert parse_genesis(genesis_to_toml(scheduled)) == scheduled


def test_block_gas_limit_changes_at_the_agreed_heights() -> None:
    genesis = parse_genesis(with_fragment(UPGRADES / "valid_raise_gas_limit.toml"))
    assert [genesis.block_gas_limit_at(h) for h in (1, 99, 100, 249, 250, 10**9)] == [
        30_000_000,
        30_000_000,
        40_000_000,
        40_000_000,
        60_000_000,
        60_000_000,
    ]
    rules = tx_rules_of(genesis)
    assert [rules.block_gas_limit_at(h) for h in (99, 100, 250)] == [
        30_000_000,
        40_000_000,
        60_000_000,
    ]


def test_too_many_entries_are_refused() -> None:
    entry = {"height": 1, "parameter": "block_gas_limit", "value": MIN_BLOCK_GAS_LIMIT}
    entries = [dict(entry, height=h) for h in range(1, MAX_UPGRADES + 2)]
    with pytest.raises(ScheduleError, match=f"more than {MAX_UPGRADES}"):
        parse_schedule(entries)
    assert len(parse_schedule(entries[:MAX_UPGRADES]).upgrades) == MAX_UPGRADES


entries = st.lists(
    st.tuples(st.integers(1, 400), st.integers(MIN_BLOCK_GAS_LIMIT, 10**9)),
    max_size=12,
    unique_by=lambda e: e[0],
).map(sorted)


@given(entries, st.integers(0, 500))
def test_value_at_is_the_last_entry_at_or_below(
    changes: list[tuple[int, int]], height: int
) -> None:
    raw = [{"height": h, "parameter": "block_gas_limit", "value": v} for h, v in changes]
    schedule = parse_schedule(raw)
    expected = 30_000_000
    for since, value in changes:
        if since <= height:
            expected = value
    assert schedule.value_at("block_gas_limit", height, 30_000_000) == expected
    assert parse_schedule(raw).digest() == schedule.digest()


@given(st.lists(st.integers(1, 50), min_size=2, max_size=8))
def test_order_rule_refuses_exactly_the_unsorted_or_repeated(heights: list[int]) -> None:
    schedule = [Upgrade(h, "block_gas_limit", MIN_BLOCK_GAS_LIMIT) for h in heights]
    ordered = all(a < b for a, b in itertools.pairwise(heights))
    if ordered:
        check_order(schedule)
    else:
        with pytest.raises(ScheduleOutOfOrder):
            check_order(schedule)


def test_digest_differs_for_a_different_schedule() -> None:
    one = ParameterSchedule((Upgrade(10, "block_gas_limit", 40_000_000),))
    other = ParameterSchedule((Upgrade(11, "block_gas_limit", 40_000_000),))
    assert one.digest() != other.digest()
    assert upgrades_module.NO_UPGRADES.digest() != one.digest()


def _tx(key: PrivateKey, gas_limit: int, chain_id: int) -> Transaction:
    unsigned = Transaction(
        chain_id=chain_id,
        nonce=Hash32(bytes(range(32))),
        block_limit=150,
        to=None,
        value=0,
        data=b"",
        gas_limit=gas_limit,
        public_key=key.public_key.to_bytes(),
    )
    return sign_transaction(unsigned, key)


def test_a_transaction_above_the_old_limit_is_valid_only_from_the_height() -> None:
    genesis = parse_genesis(with_fragment(UPGRADES / "valid_raise_gas_limit.toml"))
    rules = tx_rules_of(genesis)
    tx = _tx(PrivateKey.generate(), 35_000_000, genesis.chain_id)
    with pytest.raises(GasLimitOutOfRange) as caught:
        validate_transaction(tx, rules, height=99, nonce_seen=lambda _: False)
    assert (caught.value.maximum, caught.value.height) == (30_000_000, 99)
    assert "at height 99" in str(caught.value)
    with pytest.raises(GasLimitOutOfRange):
        validate_block_transactions([tx], rules, 99, lambda _: False)
    validate_transaction(tx, rules, height=100, nonce_seen=lambda _: False)
    validate_block_transactions([tx], rules, 100, lambda _: False)
    # Without the schedule the genesis limit rules at every height.
    plain = tx_rules_of(dataclasses.replace(genesis, upgrades=upgrades_module.NO_UPGRADES))
    with pytest.raises(GasLimitOutOfRange):
        validate_transaction(tx, plain, height=100, nonce_seen=lambda _: False)
