"""What the ``/v1/archives`` routers share: the archive service of the application, the
role check and the answers every authenticated archive route may give."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from registry.archives.service import ArchiveService
from registry.deps import StateDep
from registry.errors import Forbidden


def archive_service(request: Request, state: StateDep) -> ArchiveService:
    """The application's archive service (made on first use)."""
    service: ArchiveService | None = getattr(request.app.state, "archives", None)
    if service is None:
        service = ArchiveService(state.db, state.chain, state.settings)
        request.app.state.archives = service
    return service


def need_role(client: Any, role: str) -> None:
    """Raise Forbidden unless ``client`` holds ``role``."""
    if role not in client.roles:
        raise Forbidden(f"client {client.id} lacks the {role} role")


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed by a registered client"},
    403: {"description": "the client's roles or department do not allow this"},
}
"""The answers of a route that needs a signed request."""
