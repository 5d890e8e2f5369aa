"""A 双公示 table streamed to ``POST /v1/credit/imports`` (:mod:`registry.streamed_requests`):
a sender that declares the file's SM3 in ``X-Lianxin-Content-SM3`` has its signature checked
before the body is read, and the file goes to disk block by block, bounded by
``max_import_bytes`` rather than ``max_upload_bytes``, so that a department's file of a
million rows is imported without the registry ever holding it whole in memory. A sender that
declares nothing is read whole, within ``max_upload_bytes``, as before."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.types import Scope

from credit.importing import ImportMode, TableFormat
from registry.credit.imports import ImportOutcome, import_path
from registry.credit.store import Publisher
from registry.deps import RegistryState
from registry.streamed_requests import (
    CONTENT_SM3_HEADER,
    declares_content_sm3,
    receive_to_file,
)
from registry.threads import run_blocking

IMPORTS_PATH = "/v1/credit/imports"
"""The import's route."""

SPOOL_DIR = "credit-imports"
"""Directory under the registry's data directory where streamed tables are written while
they are imported (each in a directory of its own, removed afterwards)."""


IMPORT_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": CONTENT_SM3_HEADER,
            "in": "header",
            "required": False,
            "description": "hex SM3 of the file: declared, the file is streamed to disk "
            "(up to max_import_bytes) and checked against it; the signature is the same",
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}
            },
        },
    },
}
"""What the OpenAPI document says of the import's request."""


def streams_credit_import(scope: Scope) -> bool:
    """Whether the boundary passes this request's body to its route unread: an import that
    declares its body's SM3 (its route bounds the body itself)."""
    return (
        scope.get("method") == "POST"
        and scope.get("path") == IMPORTS_PATH
        and declares_content_sm3(scope.get("headers", []))
    )


def is_streamed(request: Request) -> bool:
    """Whether this import declared its body's SM3 (and so reaches its route unread)."""
    return streams_credit_import(request.scope)


async def import_streamed(
    request: Request,
    state: RegistryState,
    run_import: Callable[[Path], ImportOutcome],
) -> ImportOutcome:
    """Write the request's body to a file of its own under the data directory (413 past
    ``max_import_bytes``, 422 ``body_digest_mismatch``), run ``run_import`` on it, and
    remove it whatever happens."""
    spool = Path(state.settings.data_dir) / SPOOL_DIR
    await run_blocking(spool.mkdir, mode=0o700, parents=True, exist_ok=True)
    folder = await run_blocking(tempfile.mkdtemp, prefix="import-", dir=spool)
    try:
        path = Path(folder) / "upload"
        await receive_to_file(request, path, max_bytes=state.settings.max_import_bytes)
        return await run_blocking(run_import, path)
    finally:
        await run_blocking(_remove, Path(folder))


def import_runner(
    state: RegistryState, publisher: Publisher, table_format: TableFormat, mode: ImportMode
) -> Callable[[Path], ImportOutcome]:
    """The import of a file at a path, as :func:`import_streamed` runs it."""

    def run(path: Path) -> ImportOutcome:
        return import_path(state.db, publisher, path, table_format=table_format, mode=mode)

    return run


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    folder.rmdir()


__all__ = [
    "IMPORTS_PATH",
    "IMPORT_OPENAPI",
    "SPOOL_DIR",
    "import_runner",
    "import_streamed",
    "is_streamed",
    "streams_credit_import",
]
