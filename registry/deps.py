"""What request handlers receive: the application's state and the authenticated client, as
``Annotated`` dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from registry.auth import ClientDirectory, SignedRequest, verify_signed_request
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.intake import GroupCommitter
from registry.models import Client
from registry.notarization import VerifyCaches
from registry.settings import RegistrySettings


@dataclass
class RegistryState:
    """Everything created at startup and shared by requests and background workers."""

    settings: RegistrySettings
    """The configuration."""
    db: Database
    """The database."""
    chain: ChainGateway
    """The registry's access to the chain (through the SDK)."""
    intake: GroupCommitter
    """The one writer of request nonces and accepted records (group commit)."""
    clients: ClientDirectory
    """Registered clients and their keys."""
    caches: VerifyCaches
    """What verification reuses: immutable proofs, verified evidence, recent chain reads."""
    workers: list[Any] = field(default_factory=list)
    """Background tasks (batcher, anchorer) to cancel at shutdown."""


async def get_state(request: Request) -> RegistryState:
    """The state stored on the application at startup (async: FastAPI would run a plain
    function dependency on a worker thread, a hop per request for an attribute read)."""
    state: RegistryState = request.app.state.registry
    return state


StateDep = Annotated[RegistryState, Depends(get_state)]
"""The application state."""


async def signed_request(request: Request, state: StateDep) -> SignedRequest:
    """The verified signature of this request, its nonce NOT spent yet: the handler spends
    it (together with what it stores, or alone when it refuses the request). Raises
    AuthenticationFailed (401)."""
    return await verify_signed_request(request, state.clients, state.settings)


SignedDep = Annotated[SignedRequest, Depends(signed_request)]
"""The verified, not yet spent, signature of the request."""


Payload = TypeVar("Payload", bound=BaseModel)


async def signed_payload(
    request: Request, state: RegistryState, model: type[Payload]
) -> tuple[SignedRequest, Payload]:
    """For a route that takes the request as it is rather than through FastAPI's parameter
    and dependency machinery: the request's verified signature (its nonce NOT spent yet)
    and its JSON body parsed with ``model``. Raises AuthenticationFailed (401), or
    RequestValidationError (422, FastAPI's own) for a body ``model`` refuses: refused
    before the handler's work, so nothing is stored, the nonce included."""
    signed = await verify_signed_request(request, state.clients, state.settings)
    try:
        payload = model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    return signed, payload


async def current_client(request: Request, state: StateDep) -> Client:
    """The client whose SM2 signature authenticates this request (see :mod:`registry.auth`);
    raises AuthenticationFailed (401) otherwise. Its nonce is stored before this returns."""
    signed = await verify_signed_request(request, state.clients, state.settings)
    await state.intake.spend_nonce(signed.nonce)
    return signed.client


ClientDep = Annotated[Client, Depends(current_client)]
"""The authenticated client."""
