"""What the credit routers share (:mod:`registry.routers.credit`, ``credit_checks``,
``credit_pages``): the time of a request, the registry's credit keys, the role check and the
answers of the routes that need a signed request.

Time comes from ``app.state.credit_clock`` (a callable returning an aware datetime) when
set — tests set a fixed one — and from the system clock otherwise."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from fastapi import Request

from registry.credit.keys import CreditKeys
from registry.deps import StateDep
from registry.errors import Forbidden
from registry.models import Client
from registry.threads import run_blocking

__all__ = ["ACT_RESPONSES", "AUTH_RESPONSES", "credit_keys", "credit_now", "require_role"]

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed by a registered client"},
    403: {"description": "the client's roles or department do not allow this"},
}
"""The answers of a route that needs a signed request."""

ACT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "no such record"},
    409: {"description": "the step was taken already"},
}
"""The answers of a route that takes a step on a record."""


def credit_now(request: Request) -> datetime.datetime:
    """The instant of ``request``: the application's credit clock, else the system clock."""
    clock: Callable[[], datetime.datetime] | None = getattr(request.app.state, "credit_clock", None)
    return clock() if clock is not None else datetime.datetime.now(datetime.UTC)


async def credit_keys(request: Request, state: StateDep) -> CreditKeys:
    """The registry's credit keys, derived from its signing key on first use."""
    keys: CreditKeys | None = getattr(request.app.state, "credit_keys", None)
    if keys is None:
        signer = await run_blocking(state.chain.signer)
        keys = CreditKeys.for_signing_key(signer.private_key)
        request.app.state.credit_keys = keys
    return keys


def require_role(client: Client, roles: tuple[str, ...]) -> None:
    """Raise Forbidden unless ``client`` holds one of ``roles``."""
    if not set(roles) & set(client.roles):
        raise Forbidden(f"client {client.id} lacks the role for this", code="forbidden_role")
