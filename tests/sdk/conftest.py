"""Fixtures for the SDK tests: an account and a stub node serving JSON-RPC on localhost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sdk_rpc_stub import StubNode, StubServer

from sdk.account import Sm2Account


@pytest.fixture
def account() -> Sm2Account:
    return Sm2Account.generate()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(StubNode()) as server:
        yield server
