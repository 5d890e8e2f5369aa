"""An explorer application in-process for the tests, with an auditor logged in by the SM2
challenge (the dev chain's admin account holds the ``auditor`` permission from genesis)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chain_activity import DevChain
from fastapi.testclient import TestClient

from explorer.app import create_app
from explorer.settings import settings_for_chain_dir
from sdk.account import Sm2Account


def login(client: TestClient, account: Sm2Account) -> Any:
    """Answer a challenge with ``account``'s key; the response of ``/auth/login``."""
    challenge = client.post("/auth/challenge").json()
    signature = account.private_key.sign(challenge["text"].encode())
    return client.post(
        "/auth/login",
        data={
            "nonce": challenge["nonce"],
            "public_key": account.public_key_bytes.hex(),
            "signature": signature.hex(),
        },
    )


@contextmanager
def explorer_client(chain: DevChain, index_url: str, **settings: Any) -> Iterator[TestClient]:
    """The explorer on ``chain`` and the index at ``index_url``, not logged in."""
    app = create_app(settings_for_chain_dir(chain.root, database_url=index_url, **settings))
    with TestClient(app) as client:
        yield client


def admin(chain: DevChain) -> Sm2Account:
    """The dev chain's admin account (governance, auditor)."""
    return Sm2Account.from_keystore(chain.keystore("admin"), chain.password)
