"""The gated reads' grouped signature checks (registry/authorizations/signature_checks.py):
checks that wait together for one thread are made in one group, each with its own outcome
(a bad signature or an unknown client among good ones is refused alone, an unexpected error
reaches only its own request); checks are handed to the threads in turn, so one thread busy
holds up none of the others' checks; after stopping a check is refused with 503."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

import registry.authorizations.signature_checks as checks_module
from chain.crypto import PrivateKey
from registry.auth import ClientDirectory
from registry.authorizations.signature_checks import SignatureChecks
from registry.errors import AuthenticationFailed, ServiceUnavailable

MESSAGE = b"POST /v1/data/read signed bytes"


class Directory:
    """A client directory of known keys; ``find`` of ``gate`` waits until it is opened."""

    def __init__(self) -> None:
        self.keys: dict[str, PrivateKey] = {}
        self.stand_in_key = PrivateKey.generate().public_key
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def add(self, client_id: str) -> PrivateKey:
        self.keys[client_id] = key = PrivateKey.generate()
        return key

    def find(self, client_id: str) -> Any:
        self.threads.add(threading.current_thread().name)
        if client_id == "explodes":
            raise RuntimeError("the directory's database went away")
        if client_id == "held":
            self.entered.set()
            assert self.gate.wait(10)
        key = self.keys.get(client_id)
        return None if key is None else (SimpleNamespace(id=client_id), key.public_key)


def test_checks_waiting_together_are_one_group_each_with_its_own_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    groups: list[int] = []
    check_each = checks_module._check_each

    def counted(checks: Sequence[Any]) -> list[Any]:
        groups.append(len(checks))
        return check_each(checks)

    monkeypatch.setattr(checks_module, "_check_each", counted)
    directory = Directory()
    good = {client_id: directory.add(client_id) for client_id in ("a", "b", "c", "held")}
    clients = cast(ClientDirectory, directory)
    checker = SignatureChecks(threads=1)
    checker.start()

    async def run() -> list[Any]:
        directory.gate.clear()
        first = asyncio.ensure_future(
            checker.check(clients, "held", good["held"].sign(MESSAGE), MESSAGE)
        )
        # The checking thread is busy with the first; these wait, and go as one group.
        while not directory.entered.is_set():
            await asyncio.sleep(0.001)
        asked = [
            checker.check(clients, "a", good["a"].sign(MESSAGE), MESSAGE),
            checker.check(clients, "b", good["a"].sign(MESSAGE), MESSAGE),  # a's signature
            checker.check(clients, "nobody", good["c"].sign(MESSAGE), MESSAGE),
            checker.check(clients, "explodes", good["c"].sign(MESSAGE), MESSAGE),
            checker.check(clients, "c", good["c"].sign(MESSAGE), MESSAGE),
        ]
        rest = [asyncio.ensure_future(call) for call in asked]
        await asyncio.sleep(0.05)
        directory.gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        held, a, b, nobody, explodes, c = asyncio.run(run())
    finally:
        checker.stop()
    assert (held.id, a.id, c.id) == ("held", "a", "c")
    for refused in (b, nobody):
        assert isinstance(refused, AuthenticationFailed) and refused.code == "bad_signature"
    assert isinstance(explodes, RuntimeError)
    assert groups == [1, 5]
    assert directory.threads == {"registry-signatures-0"}


def test_a_thread_held_up_holds_up_no_check_handed_to_another() -> None:
    directory = Directory()
    held, other = directory.add("held"), directory.add("a")
    clients = cast(ClientDirectory, directory)
    checker = SignatureChecks(threads=2)
    checker.start()

    async def run() -> Any:
        directory.gate.clear()
        first = asyncio.ensure_future(checker.check(clients, "held", held.sign(MESSAGE), MESSAGE))
        while not directory.entered.is_set():
            await asyncio.sleep(0.001)
        try:
            second = await asyncio.wait_for(
                checker.check(clients, "a", other.sign(MESSAGE), MESSAGE), 10
            )
            assert not first.done()
        finally:
            directory.gate.set()
        assert (await first).id == "held"
        return second

    try:
        assert asyncio.run(run()).id == "a"
    finally:
        checker.stop()
    assert directory.threads == {"registry-signatures-0", "registry-signatures-1"}


def test_a_check_after_stopping_is_refused_with_503() -> None:
    directory = Directory()
    key = directory.add("a")
    checker = SignatureChecks()
    checker.start()
    checker.stop()
    clients = cast(ClientDirectory, directory)
    with pytest.raises(ServiceUnavailable):
        asyncio.run(checker.check(clients, "a", key.sign(MESSAGE), MESSAGE))
