"""Reading a chain's genesis file, bounded: what the node and every ``lianxin`` command that
opens a chain directory share, without importing the node's runtime (consensus, EVM)."""

from __future__ import annotations

from pathlib import Path

from chain.genesis import Genesis, parse_genesis
from chain.limits import MAX_GENESIS_BYTES
from node.config import ConfigError

__all__ = ["load_genesis"]


def load_genesis(path: Path) -> Genesis:
    """Read and parse the genesis file; raises ConfigError if it cannot be read, is larger
    than :data:`~chain.limits.MAX_GENESIS_BYTES` (nothing past that is read) or is not
    UTF-8, and GenesisError if its content is refused."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_GENESIS_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read genesis {path}: {exc}") from exc
    if len(raw) > MAX_GENESIS_BYTES:
        raise ConfigError(f"genesis {path} is larger than {MAX_GENESIS_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"genesis {path} is not UTF-8: {exc.reason}") from exc
    return parse_genesis(text)
