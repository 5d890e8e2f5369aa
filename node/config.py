"""Node configuration: one frozen dataclass, loaded from a TOML file.

Example ``node.toml``::

    data_dir = "devchain/node"
    genesis = "devchain/genesis.toml"
    validator_keystore = "devchain/validator.json"
    rpc_host = "127.0.0.1"
    rpc_port = 8545
    block_interval_ms = 0        # 0: a block only when transactions arrive
    max_block_txs = 500

A chain with more than one validator also reads the p2p settings (see :class:`PeerConfig`)::

    p2p_host = "127.0.0.1"
    p2p_port = 26656
    [[peers]]
    public_key = "04..."         # the peer's validator (node) key, uncompressed SM2
    host = "127.0.0.1"
    port = 26657

A node whose JSON-RPC serves other hosts names itself and the pages allowed to call it, and
keeps the per-client limits (defaults shown; the file is at most 256 KiB, nested at most 16
levels, see :mod:`chain.limits`)::

    rpc_host = "10.1.2.3"
    rpc_allowed_hosts = ["node-a.gov.example", "localhost", "127.0.0.1", "::1"]
    rpc_allowed_origins = ["explorer.gov.example"]
    gas_cap = 10000000             # gas allowance of eth_call and the like
    call_timeout_ms = 5000         # wall clock of one eth_call and the like
    rate_limit_per_s = 50.0        # expensive requests per client address
    rate_limit_burst = 100
    rate_limit_exempt = ["127.0.0.1", "::1"]   # empty it behind a local reverse proxy
    rpc_max_connections = 4096     # within the open-file limit less 256
    rpc_max_connections_per_client = 64
    rpc_head_timeout_s = 10.0      # first request head, from the connection's opening
    rpc_keepalive_timeout_s = 75.0 # after an answer, until the next request's head is in
    rpc_body_idle_timeout_s = 10.0     # a request body without a byte, while it is read
    rpc_body_min_rate_bytes_s = 1024   # its least average rate after that allowance (0: none)
    ws_max_connections = 256
    ws_max_connections_per_client = 16
    ws_max_subscriptions = 32

Relative paths are resolved against the directory that holds the TOML file. The keystore
password never sits in the file: it comes from the environment variable named by
``validator_password_env`` or from the file named by ``validator_password_file``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from chain import limits
from chain.bounded_toml import TomlLimitError, loads_toml_bounded


class ConfigError(Exception):
    """A configuration file that is missing, malformed, or holds an unusable value."""


@dataclass(frozen=True)
class PeerConfig:
    """A validator this node connects to over p2p."""

    public_key: bytes
    """The peer's node key (its validator key): uncompressed SM2 public key, 65 bytes."""
    host: str
    """Host the peer's p2p listener is reachable at."""
    port: int
    """TCP port of the peer's p2p listener."""
    name: str = ""
    """A label for logs and status output."""
    observer: bool = False
    """A non-voting node allowed to connect although its key is outside the validator set
    (the others are allowed while the on-chain validator set holds them)."""


@dataclass(frozen=True)
class NodeConfig:
    """Everything the daemon reads at start-up."""

    data_dir: Path
    """Directory holding the LMDB block store and the node's derived indexes."""
    genesis: Path
    """The genesis TOML file that defines the chain."""
    validator_keystore: Path | None = None
    """Encrypted SM2 keystore of this node's validator key (required to produce blocks)."""
    validator_password_env: str = "LIANXIN_KEYSTORE_PASSWORD"
    """Environment variable holding the keystore password."""
    validator_password_file: Path | None = None
    """File holding the keystore password (used when the environment variable is unset)."""
    rpc_host: str = "127.0.0.1"
    """Interface the JSON-RPC server binds to."""
    rpc_port: int = 8545
    """TCP port of the JSON-RPC server (HTTP and WebSocket); 0 picks a free port."""
    block_interval_ms: int = 0
    """In dev mode, produce an empty block this often; 0 produces blocks only for txs."""
    max_block_txs: int = 500
    """Most transactions taken from the mempool into one block."""
    mempool_size: int = 10_000
    """Most transactions waiting in the mempool; admission beyond it is refused."""
    max_request_bytes: int = 1 << 20
    """Largest JSON-RPC request body accepted (HTTP body or WebSocket message)."""
    max_batch: int = 100
    """Most calls in one JSON-RPC batch."""
    max_log_results: int = 100_000
    """Most logs one eth_getLogs / eth_getFilterLogs call returns."""
    max_block_range: int = 1_000_000
    """Widest fromBlock..toBlock range one log query may cover."""
    max_filters: int = 1_000
    """Most installed eth_newFilter / eth_newBlockFilter filters."""
    filter_timeout_s: float = 300.0
    """A filter not polled for this long is uninstalled."""
    receipt_wait_ms: int = 2_000
    """eth_getTransactionReceipt for a transaction still in the mempool waits this long for
    its block before answering ``null`` (0: answer at once)."""
    gas_cap: int = 10_000_000
    """Largest gas allowance for eth_call, eth_estimateGas and eth_createAccessList, and for
    all the calls of one eth_simulateV1 together. 10M gas is about 5 s of the
    cheapest-per-gas EVM loop on a busy 2-core machine (about 2M gas/s measured), which
    matches ``call_timeout_ms``; the calls the SDK and registry make use well under 1M."""
    call_timeout_ms: int = 5_000
    """Wall-clock limit of one eth_call, eth_estimateGas (the whole search),
    eth_createAccessList or eth_simulateV1 (the whole simulation), counted from the request's
    arrival; past it the EVM work is stopped and the call answers -32007."""
    rate_limit_per_s: float = 50.0
    """Expensive requests (eth_call, eth_estimateGas, eth_createAccessList, eth_simulateV1,
    log queries) one client address may make per second, on average; beyond it they answer
    -32006 until tokens refill."""
    rate_limit_burst: int = 100
    """Expensive requests one client address may make at once before the rate applies."""
    rate_limit_exempt: tuple[str, ...] = ("127.0.0.1", "::1")
    """Client addresses not rate-limited: the node's own host (registry, explorer). Behind a
    reverse proxy on the same host every client looks local: empty this list there."""
    rpc_max_connections: int = 4_096
    """Most open RPC connections (HTTP and WebSocket); a new one beyond it is closed at once.
    Never more than the process's open-file limit less 256 (:mod:`node.rpc.connections`)."""
    rpc_max_connections_per_client: int = 64
    """Most open RPC connections from one client address (an IPv6 /64 counts as one); a new
    one beyond it is closed at once. The ``rate_limit_exempt`` addresses are not counted."""
    rpc_head_timeout_s: float = 10.0
    """A connection whose first request head has not arrived this long after it opened is
    closed (half-open connections held to use up the node's descriptors)."""
    rpc_keepalive_timeout_s: float = 75.0
    """A kept-alive connection whose next request head has not arrived this long after its
    previous answer is closed, however the head's bytes trickle in (aiohttp's keep-alive
    deadline, which is not reset by incoming bytes; aiohttp's own default is an hour)."""
    rpc_body_idle_timeout_s: float = 10.0
    """A connection whose request body has had no byte for this long while the node read it
    is closed (a body trickled or never sent, held to use up connections); also the allowance
    before ``rpc_body_min_rate_bytes_s`` applies (:mod:`node.rpc.connections`)."""
    rpc_body_min_rate_bytes_s: int = 1_024
    """Least average rate of a request body, bytes per second: ``t`` seconds after the node
    began reading it, it must hold ``(t - rpc_body_idle_timeout_s)`` times this, else the
    connection is closed. 0: no minimum rate (the idle deadline still applies)."""
    ws_max_connections: int = 256
    """Most open WebSocket connections; more are refused with HTTP 503."""
    ws_max_connections_per_client: int = 16
    """Most open WebSocket connections from one client address; more get HTTP 429."""
    ws_max_subscriptions: int = 32
    """Most eth_subscribe subscriptions one WebSocket connection may hold."""
    rpc_allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    """Host names the RPC server answers to (the ``Host`` header, port ignored), besides the
    ``rpc_host`` address it is bound to; ``"*"`` accepts any. A request naming another host
    (DNS rebinding) is refused with HTTP 403."""
    rpc_allowed_origins: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    """Host names of the web origins whose pages may call the RPC server (the ``Origin``
    header); ``"*"`` accepts any. A request without ``Origin`` (not from a browser) passes."""
    p2p_host: str = "127.0.0.1"
    """Interface the p2p listener binds to (multi-validator chains only)."""
    p2p_port: int = 26656
    """TCP port of the p2p listener; 0 picks a free port."""
    peers: tuple[PeerConfig, ...] = ()
    """The other validators' p2p endpoints and node keys; only these may connect."""
    max_frame_bytes: int = 4 * 1024 * 1024 + 65_536
    """Largest p2p frame accepted; a larger one drops the connection. Leaves room for a
    proposal carrying a block of the 4 MiB maximum."""
    timeout_propose_ms: int = 3000
    """Consensus: wait for the round's proposal, at round 0."""
    timeout_prevote_ms: int = 1000
    """Consensus: wait after 2/3 of prevotes for anything, at round 0."""
    timeout_precommit_ms: int = 1000
    """Consensus: wait after 2/3 of precommits for anything, at round 0."""
    timeout_delta_ms: int = 500
    """Consensus: added to every timeout per round."""
    commit_delay_ms: int = 200
    """Consensus: wait after a commit before starting the next height (``timeout_commit``),
    so that late precommits still reach the node and transactions gather."""
    gossip_interval_ms: int = 500
    """Period of re-sending own votes of the current height and status to peers."""
    skip_absent_proposers: bool = True
    """Consensus: pass over, as proposer, a validator that signed none of the recent commit
    certificates carried by blocks (:mod:`node.proposer_liveness`), instead of waiting out
    the propose timeout at each of its turns. It decides which proposals are valid, so every
    validator of a network must use the same value; ``false`` exists to measure the old
    behaviour (``bench/bench_consensus_net.py --one-down``)."""
    wal: Path | None = None
    """The consensus write-ahead log; defaults to ``consensus.wal`` in ``data_dir``."""
    p2p_encryption: bool = True
    """Encrypt and authenticate every p2p frame after the handshake. Turning it off is for
    benchmarks and tests only and needs ``p2p_allow_plaintext_dev``."""
    p2p_allow_plaintext_dev: bool = False
    """Development flag: permit ``p2p_encryption = false``; a production node refuses it."""
    p2p_ping_interval_ms: int = 1000
    """Period of p2p heartbeats on every connection."""
    p2p_peer_timeout_ms: int = 5000
    """A p2p connection on which nothing arrived for this long is closed (a silent link)."""
    dev_accounts_dir: Path | None = None
    """Dev chains only (``lianxin init --dev`` writes it): the folder of account keystores
    the node holds unlocked, signing ``eth_sendTransaction`` and the ``eth_sign*`` methods
    on their behalf with the keystore password; a chain with several validators refuses
    it (see :mod:`node.dev_accounts`)."""

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (0 <= self.rpc_port <= 65535, "rpc_port must be within 0..65535"),
            (self.block_interval_ms >= 0, "block_interval_ms must be >= 0"),
            (self.max_block_txs >= 1, "max_block_txs must be >= 1"),
            (self.mempool_size >= 1, "mempool_size must be >= 1"),
            (self.max_request_bytes >= 1024, "max_request_bytes must be >= 1024"),
            (self.max_batch >= 1, "max_batch must be >= 1"),
            (self.max_log_results >= 1, "max_log_results must be >= 1"),
            (self.max_block_range >= 1, "max_block_range must be >= 1"),
            (self.max_filters >= 1, "max_filters must be >= 1"),
            (self.filter_timeout_s > 0, "filter_timeout_s must be > 0"),
            (self.receipt_wait_ms >= 0, "receipt_wait_ms must be >= 0"),
            (self.gas_cap >= 21_000, "gas_cap must be >= 21000"),
            (self.call_timeout_ms >= 1, "call_timeout_ms must be >= 1"),
            (self.rate_limit_per_s > 0, "rate_limit_per_s must be > 0"),
            (self.rate_limit_burst >= 1, "rate_limit_burst must be >= 1"),
            (self.rpc_max_connections >= 1, "rpc_max_connections must be >= 1"),
            (
                self.rpc_max_connections_per_client >= 1,
                "rpc_max_connections_per_client must be >= 1",
            ),
            (self.rpc_head_timeout_s > 0, "rpc_head_timeout_s must be > 0"),
            (self.rpc_keepalive_timeout_s > 0, "rpc_keepalive_timeout_s must be > 0"),
            (self.rpc_body_idle_timeout_s > 0, "rpc_body_idle_timeout_s must be > 0"),
            (self.rpc_body_min_rate_bytes_s >= 0, "rpc_body_min_rate_bytes_s must be >= 0"),
            (self.ws_max_connections >= 1, "ws_max_connections must be >= 1"),
            (self.ws_max_connections_per_client >= 1, "ws_max_connections_per_client must be >= 1"),
            (self.ws_max_subscriptions >= 1, "ws_max_subscriptions must be >= 1"),
            (bool(self.rpc_host), "rpc_host must not be empty"),
            (0 <= self.p2p_port <= 65535, "p2p_port must be within 0..65535"),
            (self.max_frame_bytes >= 65_536, "max_frame_bytes must be >= 65536"),
            (self.timeout_propose_ms >= 1, "timeout_propose_ms must be >= 1"),
            (self.timeout_prevote_ms >= 1, "timeout_prevote_ms must be >= 1"),
            (self.timeout_precommit_ms >= 1, "timeout_precommit_ms must be >= 1"),
            (self.timeout_delta_ms >= 0, "timeout_delta_ms must be >= 0"),
            (self.commit_delay_ms >= 0, "commit_delay_ms must be >= 0"),
            (self.gossip_interval_ms >= 10, "gossip_interval_ms must be >= 10"),
            (
                self.p2p_encryption or self.p2p_allow_plaintext_dev,
                "p2p_encryption = false needs p2p_allow_plaintext_dev (benchmarks and tests only)",
            ),
            (self.p2p_ping_interval_ms >= 10, "p2p_ping_interval_ms must be >= 10"),
            (
                self.p2p_peer_timeout_ms > self.p2p_ping_interval_ms,
                "p2p_peer_timeout_ms must exceed p2p_ping_interval_ms",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def wal_path(self) -> Path:
        """Where the consensus write-ahead log lives."""
        return self.wal if self.wal is not None else self.data_dir / "consensus.wal"

    def keystore_password(self) -> str:
        """Return the validator keystore password from the environment or the password file;
        raises ConfigError when neither provides one."""
        from_env = os.environ.get(self.validator_password_env)
        if from_env is not None:
            return from_env
        if self.validator_password_file is not None:
            try:
                return self.validator_password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"cannot read validator_password_file: {exc}") from exc
        raise ConfigError(
            f"no keystore password: set ${self.validator_password_env} or validator_password_file"
        )


_STRING_LIST_FIELDS = {"rate_limit_exempt", "rpc_allowed_hosts", "rpc_allowed_origins"}
_PATH_FIELDS = {
    "data_dir",
    "genesis",
    "validator_keystore",
    "validator_password_file",
    "wal",
    "dev_accounts_dir",
}
_FIELD_TYPES: dict[str, type] = {
    "validator_password_env": str,
    "rpc_host": str,
    "rpc_port": int,
    "block_interval_ms": int,
    "max_block_txs": int,
    "mempool_size": int,
    "max_request_bytes": int,
    "max_batch": int,
    "max_log_results": int,
    "max_block_range": int,
    "max_filters": int,
    "filter_timeout_s": float,
    "receipt_wait_ms": int,
    "gas_cap": int,
    "call_timeout_ms": int,
    "rate_limit_per_s": float,
    "rate_limit_burst": int,
    "rpc_max_connections": int,
    "rpc_max_connections_per_client": int,
    "rpc_head_timeout_s": float,
    "rpc_keepalive_timeout_s": float,
    "rpc_body_idle_timeout_s": float,
    "rpc_body_min_rate_bytes_s": int,
    "ws_max_connections": int,
    "ws_max_connections_per_client": int,
    "ws_max_subscriptions": int,
    "p2p_host": str,
    "p2p_port": int,
    "max_frame_bytes": int,
    "timeout_propose_ms": int,
    "timeout_prevote_ms": int,
    "timeout_precommit_ms": int,
    "timeout_delta_ms": int,
    "commit_delay_ms": int,
    "gossip_interval_ms": int,
    "skip_absent_proposers": bool,
    "p2p_encryption": bool,
    "p2p_allow_plaintext_dev": bool,
    "p2p_ping_interval_ms": int,
    "p2p_peer_timeout_ms": int,
}


def _peers_from(value: Any) -> tuple[PeerConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError("peers must be an array of tables")
    peers = []
    for index, entry in enumerate(value):
        where = f"peers[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(entry) - {"public_key", "host", "port", "name", "observer"})
        if unknown:
            raise ConfigError(f"{where}: unknown keys: {', '.join(unknown)}")
        try:
            public_key = bytes.fromhex(str(entry["public_key"]).removeprefix("0x"))
            host, port = entry["host"], entry["port"]
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{where}: needs public_key (hex), host and port") from exc
        if len(public_key) != 65 or public_key[0] != 4:
            raise ConfigError(f"{where}: public_key must be an uncompressed SM2 key")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"{where}: host must be a non-empty string")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"{where}: port must be within 1..65535")
        observer = entry.get("observer", False)
        if not isinstance(observer, bool):
            raise ConfigError(f"{where}: observer must be true or false")
        peers.append(PeerConfig(public_key, host, port, str(entry.get("name", "")), observer))
    return tuple(peers)


def config_from_mapping(values: dict[str, Any], base_dir: Path) -> NodeConfig:
    """Build a NodeConfig from parsed TOML ``values``; relative paths resolve against
    ``base_dir``. Raises ConfigError naming the offending key."""
    known = {f.name for f in fields(NodeConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    for required in ("data_dir", "genesis"):
        if required not in values:
            raise ConfigError(f"missing required key {required!r}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name == "peers":
            kwargs[name] = _peers_from(value)
            continue
        if name in _STRING_LIST_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{name} must be an array of non-empty strings")
            kwargs[name] = tuple(value)
            continue
        if name in _PATH_FIELDS:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a non-empty path string")
            path = Path(value).expanduser()
            kwargs[name] = path if path.is_absolute() else base_dir / path
            continue
        expected = _FIELD_TYPES[name]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            raise ConfigError(f"{name} must be of type {expected.__name__}, got {value!r}")
        kwargs[name] = value
    return NodeConfig(**kwargs)


class ConfigLimitError(ConfigError):
    """A configuration file refused before it is parsed: larger than
    :data:`~chain.limits.MAX_CONFIG_BYTES`, nested deeper than
    :data:`~chain.limits.MAX_TOML_DEPTH`, not UTF-8 or not TOML. ``reason`` says which
    (``too_large``, ``too_deep``, ``not_utf8``, ``not_toml``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def load_config(path: Path) -> NodeConfig:
    """Read and check the TOML configuration file at ``path``; raises ConfigError (a
    ConfigLimitError for a file too large, too deep or not TOML)."""
    try:
        with path.open("rb") as file:
            raw = file.read(limits.MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    if len(raw) > limits.MAX_CONFIG_BYTES:
        raise ConfigLimitError("too_large", f"{path}: larger than {limits.MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigLimitError("not_utf8", f"{path}: not UTF-8: {exc.reason}") from exc
    try:
        values = loads_toml_bounded(
            text, max_bytes=limits.MAX_CONFIG_BYTES, max_depth=limits.MAX_TOML_DEPTH
        )
    except TomlLimitError as exc:
        detail = f"invalid TOML: {exc.__cause__}" if exc.reason == "not_toml" else str(exc)
        raise ConfigLimitError(exc.reason, f"{path}: {detail}") from exc
    node_table = values.get("node", values)
    if not isinstance(node_table, dict):
        raise ConfigError(f"{path}: [node] must be a table")
    return config_from_mapping(node_table, path.resolve().parent)


def with_overrides(config: NodeConfig, **changes: Any) -> NodeConfig:
    """Return a copy of ``config`` with ``changes`` applied (checked like a loaded file)."""
    return replace(config, **changes)
