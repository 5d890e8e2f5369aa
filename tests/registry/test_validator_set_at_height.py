"""Proof bundles and ``POST /v1/verify`` use the validator set that ruled the anchoring
block's height (``ChainGateway.validator_set_at``), not a set recorded once: the node is
asked once per height, the answer is kept and recorded, and a wrong set for the height
makes issuance INVALID (a node that cannot say makes it UNAVAILABLE), never an error.

A change of the validator set itself needs a governed network of several validators (a
single-validator dev chain has a fixed set), so here the "current" set is replaced by a
foreign one instead, which the verification must not use."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from registry_harness import TrustChain, free_port, new_client, registry_settings

from chain.commit import Validator, ValidatorSet
from chain.crypto import PrivateKey, sm3
from contracts.validators import RulingSet
from registry.app import create_app
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.record_bundles import VerifyCaches
from registry.settings import RegistrySettings
from registry.verification import _issuance
from sdk.bundle import ProofBundle
from sdk.chain_reader import ChainReader, ChainUnavailable, RpcCallFailed
from sdk.trust import TrustClient, Verdict

ANCHOR_TIMEOUT_S = 15.0


@dataclasses.dataclass
class Registry:
    """An in-process registry, its gateway, and a department client."""

    http: TestClient
    gateway: ChainGateway
    client: TrustClient


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    with TestClient(create_app(settings)) as http:
        state = http.app.state.registry  # type: ignore[attr-defined]
        client, key = new_client(state.db)
        trust = TrustClient("http://testserver", client.id, key, http_client=http)
        yield Registry(http=http, gateway=state.chain, client=trust)


def foreign_set() -> ValidatorSet:
    """A validator set that never ruled the test chain."""
    return ValidatorSet.of([Validator(PrivateKey.generate().public_key.to_bytes(), 1)])


def raising(error: Exception) -> Callable[[int], ValidatorSet]:
    """A ``validator_set_at`` that fails with ``error``."""

    def fail(height: int) -> ValidatorSet:
        raise error

    return fail


def anchored_bundle(registry: Registry, document: bytes) -> ProofBundle:
    accepted = registry.client.notarize(document=document)
    record = registry.client.wait_until_anchored(accepted.record_id, timeout=ANCHOR_TIMEOUT_S)
    assert record.bundle is not None
    return record.bundle


def test_verification_uses_the_set_of_the_anchoring_height(
    registry: Registry, trust_chain: TrustChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = registry.gateway
    asked: list[int] = []
    validator_set_at = gateway.validator_set_at

    def spy(height: int) -> ValidatorSet:
        asked.append(height)
        return validator_set_at(height)

    monkeypatch.setattr(gateway, "validator_set_at", spy)
    # Were the set of another moment used, the certificate would not verify.
    monkeypatch.setattr(gateway, "validator_set", foreign_set)
    document = b"anchored under the set of its height"
    bundle = anchored_bundle(registry, document)
    height = bundle.header.height
    assert height in asked and set(asked) == {height}

    with ChainReader(trust_chain.chain.url) as reader:
        ruling = reader.ruling_set(height)
        certified = reader.block_header(height)
    assert certified is not None
    assert bundle.validators.hash() == certified.header.validator_set_hash
    assert ruling.validators.hash() == bundle.header.validator_set_hash
    assert 1 <= ruling.since <= height

    asked.clear()
    verification = registry.client.verify(document=document)
    assert verification.issuance.verdict is Verdict.VALID, verification.issuance
    assert height in asked and set(asked) == {height}


@pytest.mark.parametrize(
    ("failure", "verdict"),
    [
        (lambda height: foreign_set(), Verdict.INVALID),
        (raising(ChainUnavailable("node away")), Verdict.UNAVAILABLE),
        (
            raising(RpcCallFailed("lianxin_getValidators", -32602, "no such height")),
            Verdict.UNAVAILABLE,
        ),
    ],
    ids=["wrong-set", "node-away", "height-refused"],
)
def test_a_wrong_or_missing_set_for_the_height_is_a_verdict_not_an_error(
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[int], ValidatorSet],
    verdict: Verdict,
) -> None:
    document = b"verified against a wrong set"
    bundle = anchored_bundle(registry, document)
    monkeypatch.setattr(registry.gateway, "validator_set_at", failure)
    answer = _issuance(registry.gateway, VerifyCaches(), bundle, sm3(document).hex())
    assert answer.verdict is verdict, answer
    if verdict is Verdict.INVALID:
        assert "certificate" in answer.detail and "another validator set" in answer.detail


def test_the_set_of_a_height_is_asked_once_and_recorded_for_when_the_node_is_away(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    gateway = ChainGateway(settings, db)
    away = ChainGateway(
        registry_settings(
            trust_chain,
            tmp_path / "registry",
            database_url,
            node_url=f"http://127.0.0.1:{free_port()}",
            chain_timeout=0.5,
        ),
        db,
    )
    try:
        head = gateway.reader.block_number()
        with ChainReader(trust_chain.chain.url) as reader:
            expected = {height: reader.validators(height) for height in (1, head)}
        calls = 0
        ruling_set = gateway.reader.ruling_set

        def counted(height: int | None = None) -> RulingSet:
            nonlocal calls
            calls += 1
            return ruling_set(height)

        gateway.reader.ruling_set = counted  # type: ignore[method-assign]
        for height, validators in expected.items():
            assert gateway.validator_set_at(height) == validators
            assert gateway.validator_set_at(height) == validators
        assert calls == len(expected)

        # Another process on the same database, without a node: recorded heights answer.
        for height, validators in expected.items():
            assert away.validator_set_at(height) == validators
        with pytest.raises(ChainUnavailable):
            away.validator_set_at(head + 1_000)
        with pytest.raises(RpcCallFailed):
            gateway.validator_set_at(head + 1_000)
    finally:
        gateway.close()
        away.close()
        db.close()
