"""Settings of the archive service, from ``LIANXIN_ARCHIVES_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from archives.reading_process import READ_BUDGET_SECONDS


class ArchiveSettings(BaseSettings):
    """Where packages are stored and what checks them."""

    model_config = SettingsConfigDict(env_prefix="LIANXIN_ARCHIVES_")

    store_dir: Path | None = Field(
        default=None, description="the archive store (default: <registry data_dir>/archives)"
    )
    clamd: str | None = Field(
        default=None,
        description="ClamAV daemon: a UNIX socket path or host:port (unset: "
        "the virus check is NOT_CHECKED)",
    )
    webhook_url: str | None = Field(
        default=None, description="POSTed the JSON findings of a failed fixity audit"
    )
    processes: int = Field(default=2, ge=1, le=64, description="hashing worker processes")
    read_budget_s: float = Field(
        default=READ_BUDGET_SECONDS,
        gt=0,
        description="seconds a package's files may take to open in all at ingest and "
        "migration (the usability check); files left unread are NOT_CHECKED",
    )
    max_bag_bytes: int = Field(
        default=16 * 1024**3, ge=1, description="largest unpacked bag accepted"
    )
    max_upload_bytes: int = Field(
        default=4 * 1024**3,
        ge=1,
        description="largest bag (zip or tar) streamed to POST /v1/archives/uploads",
    )
    upload_ttl_s: float = Field(
        default=6 * 3600.0, gt=0, description="how long an unused upload is kept in the spool"
    )
    max_pending_uploads: int = Field(
        default=8, ge=1, description="unused uploads kept at a time for one department"
    )
    audit_interval_s: float | None = Field(
        default=None,
        gt=0,
        description="seconds between scheduled fixity audits, counted from the end of the "
        "last one (unset: audits run on demand only)",
    )
