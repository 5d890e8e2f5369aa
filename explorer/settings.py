"""The explorer's settings: one pydantic settings object, from ``LIANXIN_EXPLORER_*``
environment variables or built from a chain directory (:func:`settings_for_chain_dir`)."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain import limits
from chain.bounded_toml import loads_toml_bounded
from chain.genesis import Genesis, parse_genesis
from explorer.store import sqlite_url


class ExplorerSettings(BaseSettings):
    """Where the explorer reads the chain, where it keeps its index, and who may read it."""

    model_config = SettingsConfigDict(env_prefix="LIANXIN_EXPLORER_")

    node_url: str = "http://127.0.0.1:8545"
    """The node's HTTP JSON-RPC endpoint (its WebSocket is ``/ws`` next to it)."""
    genesis_file: Path = Path("devchain/genesis.toml")
    """The chain's genesis: the trusted start of every check."""
    data_dir: Path = Path("devchain/explorer")
    """Where the SQLite index lives unless ``database_url`` names another database."""
    database_url: str | None = None
    """SQLAlchemy URL of the index (PostgreSQL in production); SQLite in ``data_dir`` if
    unset."""
    host: str = "127.0.0.1"
    port: int = 8700
    header_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds a connection has to send a whole request head, from its opening or its last
    answer; then it is closed (:mod:`serving.connection_guard`)."""
    body_idle_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds a request body may go without a byte arriving while it is read; then the
    connection is closed. Also the allowance before ``body_min_rate_bytes_s`` applies."""
    body_min_rate_bytes_s: int = Field(default=1_024, ge=0)
    """Least average rate of a request body (bytes per second) after that allowance; 0:
    none."""
    max_connections_per_client: int = Field(default=64, ge=1)
    """Most connections open at once from one non-loopback address; more are closed."""
    max_connections: int = Field(default=4_096, ge=1)
    """Most connections open at once (never more than the open-file limit less 256)."""
    public_subset: bool = False
    """Serve the overview, block and validator pages without login."""
    auditor_keys: list[str] = Field(default_factory=list)
    """Uncompressed SM2 public keys (``04…`` hex) that may log in as auditors."""
    auditor_key_files: list[Path] = Field(default_factory=list)
    """PEM public keys (SPKI) that may log in as auditors."""
    session_secret: str = Field(default_factory=lambda: secrets.token_hex(32))
    """Key of the session cookies' MAC (a fresh one per start unless set)."""
    session_seconds: int = 8 * 3600
    batch_blocks: int = 25
    """Blocks read per batch of JSON-RPC requests while catching up."""
    registry_url: str | None = None
    """The registry whose credit records and archive packages the explorer proves against
    its index (``/v1/audit``); unset: those pages say the registry is not configured."""
    registry_client_id: str | None = None
    """The explorer's client id at the registry (a client with the ``verify`` role)."""
    registry_key_file: Path | None = None
    """That client's SM2 private key (PEM), which signs each request to the registry."""

    def index_url(self) -> str:
        """The index database's URL."""
        return self.database_url or sqlite_url(self.data_dir / "explorer.db")

    def genesis(self) -> Genesis:
        """The parsed genesis file."""
        return parse_genesis(self.genesis_file.read_text(encoding="utf-8"))


def settings_for_chain_dir(directory: Path, **overrides: object) -> ExplorerSettings:
    """Settings for the chain in ``directory`` (as made by ``lianxin init``): its genesis, its
    node's RPC address from ``node.toml``, the index in ``<directory>/explorer``, and the
    dev chain's auditor key (``keys/admin.pub.pem`` when present)."""
    node_toml = directory / "node.toml"
    if not node_toml.exists():
        node_toml = directory / "node-0" / "node.toml"
    config = loads_toml_bounded(
        node_toml.read_text(encoding="utf-8"),
        max_bytes=limits.MAX_CONFIG_BYTES,
        max_depth=limits.MAX_TOML_DEPTH,
    )
    host = str(config.get("rpc_host", "127.0.0.1"))
    port = int(config.get("rpc_port", 8545))
    values: dict[str, object] = {
        "node_url": f"http://{host}:{port}",
        "genesis_file": directory / "genesis.toml",
        "data_dir": directory / "explorer",
    }
    values.update(overrides)
    return ExplorerSettings(**values)  # type: ignore[arg-type]
