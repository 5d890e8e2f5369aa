"""What request handlers receive: the application's state and the authenticated client, as
``Annotated`` dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from registry.auth import authenticate_request
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.models import Client
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
    workers: list[Any] = field(default_factory=list)
    """Background tasks (batcher, anchorer) to cancel at shutdown."""


def get_state(request: Request) -> RegistryState:
    """The state stored on the application at startup."""
    state: RegistryState = request.app.state.registry
    return state


StateDep = Annotated[RegistryState, Depends(get_state)]
"""The application state."""


async def current_client(request: Request, state: StateDep) -> Client:
    """The client whose SM2 signature authenticates this request (see :mod:`registry.auth`);
    raises AuthenticationFailed (401) otherwise. Its nonce is stored before this returns."""
    return await authenticate_request(request, state.db, state.settings)


ClientDep = Annotated[Client, Depends(current_client)]
"""The authenticated client."""
