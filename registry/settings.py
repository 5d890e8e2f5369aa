"""Configuration of the registry service: one pydantic settings object, read from the
environment (prefix ``LIANXIN_REGISTRY_``) or built in code and passed down."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FILE_FORBIDDEN_BITS = stat.S_IRWXG | stat.S_IRWXO
"""Permission bits a password file must not have: any access by its group or by others."""


class InsecureSecretFile(ValueError):
    """A password file that its group or other users may read or write."""


def check_private_file(path: Path) -> None:
    """Raise :class:`InsecureSecretFile` unless ``path`` is accessible to its owner only
    (mode 0600 or 0400), and FileNotFoundError if it does not exist."""
    mode = path.stat().st_mode
    if mode & SECRET_FILE_FORBIDDEN_BITS:
        raise InsecureSecretFile(
            f"{path} is mode {stat.S_IMODE(mode):04o}: a password file must be readable by "
            f"its owner only (chmod 600 {path})"
        )


DEFAULT_MAX_UPLOAD_BYTES = 8 * 1024 * 1024
"""Largest request body accepted by default (a base64 document of about 6 MiB)."""

DEFAULT_MAX_IMPORT_BYTES = 1024 * 1024 * 1024
"""Largest 双公示 table streamed to ``POST /v1/credit/imports`` by default (about three
million rows of CSV); it goes to disk, never whole into memory."""


class RegistrySettings(BaseSettings):
    """Everything the registry needs to run. Paths are taken as given (relative to the
    working directory)."""

    model_config = SettingsConfigDict(env_prefix="LIANXIN_REGISTRY_", extra="ignore")

    data_dir: Path = Path("registry-data")
    """Where the embedded SQLite database lives when ``database_url`` is not set."""
    database_url: str | None = None
    """SQLAlchemy URL, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/registry``;
    default ``sqlite:///<data_dir>/registry.db``."""
    node_url: str = "http://127.0.0.1:8545"
    """JSON-RPC endpoint of the lianxin node."""
    signer_keystore: Path | None = None
    """SM4 keystore of the registry's own chain account (a registered issuer key)."""
    signer_password_file: Path | None = None
    """File holding the keystore password (first line)."""
    batch_interval: float = Field(default=1.0, gt=0)
    """Seconds between two sealing rounds."""
    batch_size: int = Field(default=100_000, ge=1)
    """Most records sealed into one batch."""
    max_upload_bytes: int = Field(default=DEFAULT_MAX_UPLOAD_BYTES, ge=1024)
    """Largest request body accepted; larger ones get 413."""
    max_import_bytes: int = Field(default=DEFAULT_MAX_IMPORT_BYTES, ge=1024)
    """Largest 双公示 table a credit import streams to disk (declaring its SM3); larger ones
    get 413. An import sent without declaring its SM3 is read whole and bounded by
    ``max_upload_bytes``."""
    timestamp_skew: int = Field(default=300, ge=1)
    """Seconds a signed request's timestamp may differ from the registry's clock."""
    anchor_gas_limit: int = Field(default=400_000, ge=21_000)
    """Gas limit of an anchoring transaction (fixed, so a signed transaction never needs
    the node before it is stored)."""
    chain_timeout: float = Field(default=5.0, gt=0)
    """Seconds to wait for one answer from the node."""
    run_workers: bool = True
    """Run the batcher and anchorer inside the web application's lifespan."""
    workers: int = Field(default=1, ge=1, le=64)
    """API processes served on the one port; exactly one of them runs the batcher and
    anchorer at any time."""
    max_bulk_records: int = Field(default=1_000, ge=1, le=100_000)
    """Most records in one ``POST /v1/records/bulk`` request."""
    public_base_url: str | None = None
    """Scheme, host and optional path prefix under which citizens reach this service (e.g.
    ``https://zx.example.gov.cn``): QR codes and verify links use it. Default: the address
    the server itself listens on (scheme, IP and port of the connection) — never the Host
    header a caller sent (see :class:`registry.boundary.BoundedRequests`)."""
    metrics_allowed_networks: tuple[IPvAnyNetwork, ...] | None = None
    """Networks besides loopback whose clients may read ``GET /metrics`` (e.g.
    ``["10.1.2.3/32"]`` for a Prometheus server on another host; a JSON list in the
    environment). None: loopback clients only."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds a connection has to send a request's line and headers, from its opening or
    from its previous response; then it is closed (:mod:`serving.connection_guard`). The
    body is not under it."""
    body_idle_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds a request body may go without a byte arriving while the registry reads it;
    then the connection is closed. Also the allowance before ``body_min_rate_bytes_s``
    applies. Time the registry does not read (the application has not taken what came) is
    not counted (:mod:`serving.connection_guard`)."""
    body_min_rate_bytes_s: int = Field(default=1_024, ge=0)
    """Least average rate, in bytes per second, of a request body after the first
    ``body_idle_timeout_s``: at ``t`` seconds after its head it must hold
    ``(t - body_idle_timeout_s) * body_min_rate_bytes_s`` bytes, else the connection is
    closed. 0: no minimum rate (the idle deadline still applies)."""
    max_connections_per_client: int = Field(default=64, ge=1)
    """Most connections one IP address holds open at once in one API process; a further one
    is closed as it is accepted. Loopback addresses are exempt (a proxy on the same host)."""
    max_connections: int = Field(default=4_096, ge=1)
    """Most connections one API process holds open at once, and less when its open-file
    soft limit is lower: that limit less 256 descriptors kept for the database, logs and the
    node connection. A further one is closed as it is accepted."""
    nonce_purge_interval: float = Field(default=300.0, gt=0)
    """Seconds between two purges of request nonces whose timestamps can no longer pass."""
    issuer_registry_address: str | None = None
    """IssuerRegistry address (0x hex); default: the one recorded by bootstrap."""
    notary_address: str | None = None
    """Notary address; default: the one recorded by bootstrap."""
    license_registry_address: str | None = None
    """LicenseRegistry address; default: the one recorded by bootstrap."""

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str | None) -> str | None:
        """An http(s) URL with a host and no query, fragment or credentials; given back
        without its trailing slash (a path prefix is kept)."""
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            host, _ = parts.hostname, parts.port  # .port raises ValueError for a bad port
        except ValueError as exc:
            raise ValueError(f"public_base_url is not a URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not host:
            raise ValueError("public_base_url must be an http or https URL with a host")
        if "?" in value or "#" in value or "@" in parts.netloc:
            raise ValueError("public_base_url must have no query, fragment or credentials")
        if any(character.isspace() for character in value):
            raise ValueError("public_base_url must not contain white space")
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        """``database_url``, or the SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.db').resolve()}"

    def signer_password(self) -> bytes:
        """The keystore password from ``signer_password_file`` (its first line). Raises
        ValueError if the setting is missing and :class:`InsecureSecretFile` if the file is
        readable or writable by its group or by others."""
        if self.signer_password_file is None:
            raise ValueError("signer_password_file is not set")
        check_private_file(self.signer_password_file)
        return self.signer_password_file.read_bytes().strip()

    def check_secret_files(self) -> None:
        """Raise :class:`InsecureSecretFile` if ``signer_password_file`` is set and open to
        its group or others (checked at startup, before anything is served)."""
        if self.signer_password_file is not None:
            check_private_file(self.signer_password_file)
