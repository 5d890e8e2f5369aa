"""Genesis documents: the examples in tests/vectors/genesis parse or fail naming the field,
and writing then parsing gives back the same value."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import encoding as enc
from chain.crypto.sm3 import sm3
from chain.errors import GenesisError
from chain.execution import account_at, code_at, storage_at
from chain.genesis import (
    ALLOWED_ROLES,
    GOVERNANCE_ROLE,
    MAX_BALANCE,
    MAX_INT64,
    MAX_NAME_LENGTH,
    Genesis,
    GenesisAccount,
    GenesisFieldError,
    GenesisValidator,
    SystemContract,
    genesis_block,
    genesis_to_toml,
    parse_genesis,
)
from chain.primitives import ZERO_HASH, Address, Hash32

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "genesis"
VALID = sorted(VECTORS.glob("valid_*.toml"))
INVALID = sorted(VECTORS.glob("invalid_*.toml"))


def expectation(path: Path) -> tuple[str, str]:
    """The ``# field:`` and ``# reason:`` header lines of an invalid example."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# field:") and lines[1].startswith("# reason:"), path.name
    return lines[0].removeprefix("# field:").strip(), lines[1].removeprefix("# reason:").strip()


def test_vectors_exist() -> None:
    assert len(VALID) >= 2
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_parses_and_round_trips(path: Path) -> None:
    genesis = parse_genesis(path.read_text(encoding="utf-8"))
    assert genesis.validators
    assert any(GOVERNANCE_ROLE in account.roles for account in genesis.accounts)
    assert parse_genesis(genesis_to_toml(genesis)) == genesis


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_names_the_field(path: Path) -> None:
    field, reason = expectation(path)
    with pytest.raises(GenesisFieldError) as caught:
        parse_genesis(path.read_text(encoding="utf-8"))
    assert isinstance(caught.value, GenesisError)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{field}: " if field else reason)


def test_district_example_values() -> None:
    genesis = parse_genesis((VECTORS / "valid_district.toml").read_text(encoding="utf-8"))
    assert genesis.chain_id == 310104
    assert [v.name for v in genesis.validators] == ["审批局", "市场监管局", "档案馆", "大数据中心"]
    assert genesis.governance == Address(bytes.fromhex("00" * 18 + "1001"))
    auditor = genesis.accounts[2]
    assert auditor.roles == frozenset({"auditor"})
    assert auditor.balance == 2**128
    governance_contract = genesis.system_contracts[0]
    assert governance_contract.storage[0][1] == Hash32((3).to_bytes(32, "big"))
    assert genesis.system_contracts[1].storage == ()


BLOCK_HASHES = json.loads((VECTORS / "block_hashes.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_genesis_block_hash_is_pinned(path: Path) -> None:
    genesis = parse_genesis(path.read_text(encoding="utf-8"))
    block, _ = genesis_block(genesis)
    assert block.hash.hex() == BLOCK_HASHES[path.name]
    assert genesis_block(genesis)[0] == block


def test_genesis_block_holds_the_initial_state() -> None:
    genesis = parse_genesis((VECTORS / "valid_district.toml").read_text(encoding="utf-8"))
    block, writes = genesis_block(genesis)
    header = block.header
    assert header.height == 0 and header.parent_hash == ZERO_HASH
    assert header.timestamp_ms == genesis.timestamp_ms
    assert header.validator_set_hash == genesis.validator_set_hash()
    assert block.transactions == () and block.last_commit is None
    for account in genesis.accounts:
        assert account_at(writes, header.state_root, account.address).balance == account.balance
    for contract in genesis.system_contracts:
        assert code_at(writes, header.state_root, contract.address) == contract.code
        for slot, value in contract.storage:
            stored = storage_at(writes, header.state_root, contract.address, int.from_bytes(slot))
            assert stored == int.from_bytes(value)


def test_validator_address_is_sm3_of_the_key() -> None:
    genesis = parse_genesis((VECTORS / "valid_minimal.toml").read_text(encoding="utf-8"))
    validator = genesis.validators[0]
    assert validator.address == sm3(validator.public_key[1:])[-20:]
    assert validator.address == genesis.accounts[0].address


def test_validator_set_hash_is_order_independent_and_canonical() -> None:
    genesis = parse_genesis((VECTORS / "valid_district.toml").read_text(encoding="utf-8"))
    reordered = Genesis(**{**genesis.__dict__, "validators": genesis.validators[::-1]})
    assert reordered.validator_set_hash() == genesis.validator_set_hash()
    entries = sorted(genesis.validators, key=lambda v: v.address)
    expected = sm3(
        enc.encode([[v.address, v.public_key, enc.encode_int(v.power)] for v in entries])
    )
    assert genesis.validator_set_hash() == expected
    more_power = GenesisValidator(
        genesis.validators[0].name, genesis.validators[0].public_key, power=11
    )
    changed = Genesis(**{**genesis.__dict__, "validators": (more_power, *genesis.validators[1:])})
    assert changed.validator_set_hash() != genesis.validator_set_hash()


# -- round trip --------------------------------------------------------------------------------

KEY_POOL = tuple(
    validator
    for path in VALID
    for validator in parse_genesis(path.read_text(encoding="utf-8")).validators
)
"""Valid SM2 public keys, taken from the valid examples."""

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=MAX_NAME_LENGTH
)
addresses = st.binary(min_size=20, max_size=20).map(Address)
words = st.binary(min_size=32, max_size=32).map(Hash32)


@st.composite
def geneses(draw: st.DrawFn) -> Genesis:
    pool = {v.public_key: v for v in KEY_POOL}
    keys = draw(
        st.lists(st.sampled_from(sorted(pool)), min_size=1, max_size=len(pool), unique=True)
    )
    validator_names = draw(st.lists(names, min_size=len(keys), max_size=len(keys), unique=True))
    validators = tuple(
        GenesisValidator(name=name, public_key=key, power=draw(st.integers(1, MAX_INT64)))
        for name, key in zip(validator_names, keys, strict=True)
    )
    account_addresses = draw(st.lists(addresses, min_size=1, max_size=4, unique=True))
    keyed = draw(st.sampled_from([None, *pool]))
    accounts = []
    for index, address in enumerate(account_addresses):
        roles = draw(st.frozensets(st.sampled_from(sorted(ALLOWED_ROLES))))
        public_key = None
        if index == 0:
            roles |= {GOVERNANCE_ROLE}
            if keyed is not None:
                public_key, address = keyed, pool[keyed].address
        accounts.append(
            GenesisAccount(
                address=address,
                roles=roles,
                balance=draw(st.integers(0, MAX_BALANCE)),
                public_key=public_key,
            )
        )
    used = {a.address for a in accounts}
    contract_addresses = draw(
        st.lists(addresses.filter(lambda a: a not in used), max_size=3, unique=True)
    )
    contract_names = draw(
        st.lists(
            names, min_size=len(contract_addresses), max_size=len(contract_addresses), unique=True
        )
    )
    contracts = tuple(
        SystemContract(
            name=name,
            address=address,
            code=draw(st.binary(min_size=1, max_size=64)),
            storage=tuple(sorted(draw(st.dictionaries(words, words, max_size=4)).items())),
        )
        for name, address in zip(contract_names, contract_addresses, strict=True)
    )
    governance = draw(st.sampled_from([None, *contract_addresses]))
    return Genesis(
        chain_id=draw(st.integers(1, MAX_INT64)),
        timestamp_ms=draw(st.integers(0, MAX_INT64)),
        validators=validators,
        accounts=tuple(accounts),
        system_contracts=contracts,
        block_gas_limit=draw(st.integers(1, MAX_INT64)),
        governance=governance,
    )


@settings(max_examples=150, deadline=None)
@given(geneses())
def test_toml_round_trip(genesis: Genesis) -> None:
    assert parse_genesis(genesis_to_toml(genesis)) == genesis


DISTRICT_LINES = (VECTORS / "valid_district.toml").read_text(encoding="utf-8").splitlines()


@given(
    st.lists(st.integers(0, len(DISTRICT_LINES) - 1), unique=True, max_size=8),
    st.sampled_from(["", "x", "0x", "true", "-1", "[1]", "{}", '"0x00"', "1.5"]),
)
def test_damaged_document_raises_only_genesis_errors(damaged: list[int], value: str) -> None:
    """Damage some lines (drop them, or replace their value): the result parses or raises a
    GenesisError, never anything else."""
    lines = list(DISTRICT_LINES)
    for position, index in enumerate(damaged):
        key, sep, _ = lines[index].partition(" = ")
        lines[index] = f"{key} = {value}" if sep and position % 2 else ""
    with contextlib.suppress(GenesisError):
        parse_genesis("\n".join(lines))
