"""The genesis block size in bytes: optional, defaulting to DEFAULT_MAX_BLOCK_BYTES, bounded
by MIN_BLOCK_BYTES and MAX_BLOCK_BYTES_CEILING (out-of-range documents are refused in
tests/vectors/genesis/invalid_max_block_bytes_*.toml), and written back only when it is not
the default, so that existing genesis files read and write unchanged."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chain.genesis import genesis_block, genesis_to_toml, parse_genesis
from chain.limits import DEFAULT_MAX_BLOCK_BYTES, MAX_BLOCK_BYTES_CEILING, MIN_BLOCK_BYTES

MINIMAL = Path(__file__).resolve().parents[1] / "vectors" / "genesis" / "valid_minimal.toml"


def test_a_genesis_without_the_field_gets_the_default_and_writes_back_unchanged() -> None:
    text = MINIMAL.read_text(encoding="utf-8")
    genesis = parse_genesis(text)
    assert genesis.max_block_bytes == DEFAULT_MAX_BLOCK_BYTES
    assert "max_block_bytes" not in genesis_to_toml(genesis)


@given(st.integers(MIN_BLOCK_BYTES, MAX_BLOCK_BYTES_CEILING))
def test_any_size_in_range_round_trips_and_leaves_the_genesis_block_alone(size: int) -> None:
    text = MINIMAL.read_text(encoding="utf-8")
    sized = text.replace(
        "block_gas_limit = 30000000", f"block_gas_limit = 30000000\nmax_block_bytes = {size}"
    )
    genesis = parse_genesis(sized)
    assert genesis.max_block_bytes == size
    assert parse_genesis(genesis_to_toml(genesis)) == genesis
    # A protocol parameter, not part of the height-0 block.
    assert genesis_block(genesis)[0].hash == genesis_block(parse_genesis(text))[0].hash
