"""``node.toml`` is read only up to its size limit and parsed only once its nesting is
bounded; a refused file raises a typed :class:`ConfigLimitError` naming the reason, and the
RPC allow-lists and caps load from the file like every other setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain import limits
from chain.errors import GenesisError
from node.config import ConfigError, ConfigLimitError, load_config
from node.daemon import load_genesis

BOMB_LEVELS = 100_000
"""Levels of ``[`` in the bomb: 200 KB, under the size limit, so only depth refuses it."""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text('data_dir = "data"\ngenesis = "genesis.toml"\n' + text, encoding="utf-8")
    return path


def test_a_deep_file_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = "x = " + "[" * BOMB_LEVELS + "]" * BOMB_LEVELS + "\n"
    assert len(bomb) < limits.MAX_CONFIG_BYTES
    with pytest.raises(ConfigLimitError) as caught:
        load_config(_write(tmp_path, bomb))
    assert caught.value.reason == "too_deep"


def test_an_oversize_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    with pytest.raises(ConfigLimitError) as caught:
        load_config(_write(tmp_path, "# pad\n" * (limits.MAX_CONFIG_BYTES // 6 + 1)))
    assert caught.value.reason == "too_large"


def test_not_toml_and_not_utf8_are_typed_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigLimitError) as caught:
        load_config(_write(tmp_path, "rpc_port = = 1\n"))
    assert caught.value.reason == "not_toml"
    path = tmp_path / "node.toml"
    path.write_bytes(b'data_dir = "\xff"\n')
    with pytest.raises(ConfigLimitError) as caught:
        load_config(path)
    assert caught.value.reason == "not_utf8"


def test_rpc_caps_and_allow_lists_load_from_the_file(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            'rpc_allowed_hosts = ["node.gov.example"]\n'
            'rpc_allowed_origins = ["*"]\n'
            "rate_limit_exempt = []\n"
            "rate_limit_per_s = 5\n"
            "ws_max_subscriptions = 4\n"
            "call_timeout_ms = 1500\n",
        )
    )
    assert config.rpc_allowed_hosts == ("node.gov.example",)
    assert config.rpc_allowed_origins == ("*",)
    assert config.rate_limit_exempt == ()
    assert config.rate_limit_per_s == 5.0
    assert config.ws_max_subscriptions == 4
    assert config.call_timeout_ms == 1500
    with pytest.raises(ConfigError, match="rpc_allowed_hosts"):
        load_config(_write(tmp_path, 'rpc_allowed_hosts = "localhost"\n'))


def test_a_request_body_s_pace_loads_from_the_file(tmp_path: Path) -> None:
    defaults = load_config(_write(tmp_path, ""))
    assert defaults.rpc_body_idle_timeout_s == 10.0
    assert defaults.rpc_body_min_rate_bytes_s == 1_024
    config = load_config(
        _write(tmp_path, "rpc_body_idle_timeout_s = 3\nrpc_body_min_rate_bytes_s = 0\n")
    )
    assert config.rpc_body_idle_timeout_s == 3.0
    assert config.rpc_body_min_rate_bytes_s == 0
    with pytest.raises(ConfigError, match="rpc_body_idle_timeout_s"):
        load_config(_write(tmp_path, "rpc_body_idle_timeout_s = 0\n"))
    with pytest.raises(ConfigError, match="rpc_body_min_rate_bytes_s"):
        load_config(_write(tmp_path, "rpc_body_min_rate_bytes_s = -1\n"))
    with pytest.raises(ConfigError, match="rpc_body_min_rate_bytes_s"):
        load_config(_write(tmp_path, "rpc_body_min_rate_bytes_s = 1.5\n"))


def test_the_node_reads_a_genesis_file_only_up_to_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "genesis.toml"
    with path.open("wb") as file:
        file.truncate(limits.MAX_GENESIS_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ConfigError, match="larger than"):
        load_genesis(path)
    path.write_text("chain_id = [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]\n", encoding="utf-8")
    with pytest.raises(GenesisError):
        load_genesis(path)
