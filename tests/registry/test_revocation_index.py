"""The registry follows the Notary's revocation events: a revoked batch shows up in
``POST /v1/verify`` within a poll or two without a chain call per record, and an index that
is stale or behind the anchoring block never answers. Runs on SQLite, or on PostgreSQL
with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from registry_harness import TrustChain, new_client

from chain.crypto import sm3
from chain.merkle import leaf_hash
from contracts.trust import Reason
from registry.app import create_app
from registry.chain_gateway import NOTARY, ChainGateway
from registry.revocations import RevocationIndex
from registry.settings import RegistrySettings
from sdk.transactions import block_limit_for, build_transaction
from sdk.trust import TrustClient, Verdict

WAIT_S = 20.0


@pytest.fixture
def app_client(settings: RegistrySettings) -> Iterator[tuple[TestClient, TrustClient]]:
    with TestClient(create_app(settings)) as http:
        state = http.app.state.registry  # type: ignore[attr-defined]
        client, key = new_client(state.db)
        yield http, TrustClient("http://testserver", client.id, key, http_client=http)


def revoke_batch(gateway: ChainGateway, root: bytes, reason: int) -> int:
    """Send ``Notary.revokeBatch`` from the registry's own (issuing) account; its block."""
    tx = build_transaction(
        chain_id=gateway.chain_id(),
        to=gateway.contracts().notary,
        data=NOTARY.encode_call("revokeBatch", root, reason),
        gas_limit=200_000,
        block_limit=block_limit_for(gateway.reader.block_number()),
    )
    signed = gateway.signer().sign_transaction(tx)
    gateway.reader.send_raw_transaction(signed.encode())
    receipt = gateway.reader.wait_for_receipt(signed.hash, timeout=WAIT_S)
    assert receipt is not None and receipt.status == 1
    return receipt.block_number


def test_a_revoked_batch_is_seen_through_the_index_without_a_chain_call(
    app_client: tuple[TestClient, TrustClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, trust = app_client
    state = http.app.state.registry  # type: ignore[attr-defined]
    document = b"revoked through the index"
    accepted = trust.notarize(document=document)
    record = trust.wait_until_anchored(accepted.record_id, timeout=WAIT_S)
    assert record.batch is not None
    root = bytes.fromhex(record.batch["root"])
    assert trust.verify(document=document).status.verdict is Verdict.VALID

    calls: list[Any] = []

    def no_chain_call(*args: Any) -> Any:
        calls.append(args)
        raise AssertionError("the status came from the chain, not the index")

    revoked_at = revoke_batch(state.chain, root, Reason.ISSUED_IN_ERROR)
    deadline = time.monotonic() + WAIT_S
    # The index polls every half second; until it reaches the block, the chain is asked.
    while state.caches.revocations.height < revoked_at:
        assert time.monotonic() < deadline, "the revocation never reached the index"
        time.sleep(0.1)
    monkeypatch.setattr(state.chain, "leaf_status", no_chain_call)
    state.caches.leaf_status = type(state.caches.leaf_status)(ttl=0.0)
    verification = trust.verify(document=document)
    assert verification.status.verdict is Verdict.INVALID, verification.status
    assert f"revoked at block {revoked_at}" in verification.status.detail
    assert verification.facts["revoked_at_block"] == revoked_at
    assert verification.facts["revocation_reason"] == int(Reason.ISSUED_IN_ERROR)
    # Issuance stays proven: the batch WAS anchored; only its status changed.
    assert verification.issuance.verdict is Verdict.VALID
    assert calls == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stale_or_lagging_index_does_not_answer(
    trust_chain: TrustChain, settings: RegistrySettings
) -> None:
    from registry.db import Database

    db = Database.open(settings)
    gateway = ChainGateway(settings, db)
    clock = FakeClock()
    index = RevocationIndex(gateway, stale_after=1.5, clock=clock)
    root, leaf = sm3(b"root"), leaf_hash(sm3(b"leaf"))
    try:
        assert index.status(root, leaf, anchored_at_block=0) is None, "never polled"
        index.poll()
        height = index.height
        assert height >= 0
        answer = index.status(root, leaf, anchored_at_block=height)
        assert answer is not None
        status, at = answer
        assert status.issued and not status.revoked and at == height
        assert index.status(root, leaf, anchored_at_block=height + 1) is None, "behind"
        clock.now += 1.6
        assert index.status(root, leaf, anchored_at_block=height) is None, "stale"
        index.poll()
        assert index.status(root, leaf, anchored_at_block=height) is not None
    finally:
        gateway.close()
        db.close()


def test_key_validity_at_a_passed_height_is_read_once(
    app_client: tuple[TestClient, TrustClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, trust = app_client
    state = http.app.state.registry  # type: ignore[attr-defined]
    first = trust.notarize(document=b"key validity, first")
    record = trust.wait_until_anchored(first.record_id, timeout=WAIT_S)
    assert record.batch is not None
    anchored_at = int(record.batch["block_number"])
    # A later block, so that the anchoring height is in the past for the chain.
    later = trust.notarize(document=b"key validity, later")
    trust.wait_until_anchored(later.record_id, timeout=WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while state.caches.revocations.height <= anchored_at:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert trust.verify(document=b"key validity, first").issuer.verdict is Verdict.VALID

    def no_chain_call(*args: Any) -> Any:
        raise AssertionError("asked the chain again for a final answer")

    monkeypatch.setattr(state.chain, "key_valid_at", no_chain_call)
    state.caches.key_validity = type(state.caches.key_validity)(ttl=0.0)
    again = trust.verify(document=b"key validity, first")
    assert again.issuer.verdict is Verdict.VALID, again.issuer
