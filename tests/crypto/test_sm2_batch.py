"""verify_batch agrees with one-by-one verification, inline and across processes."""

from __future__ import annotations

import pytest

from chain.crypto import BatchVerifier, PrivateKey, PublicKey, verify_batch
from chain.crypto.batch import POOL_THRESHOLD, BatchItem
from chain.errors import CryptoError

SIGNER_COUNT = 8
ITEM_COUNT = POOL_THRESHOLD + 44


def _one_by_one(item: BatchItem, signer_id: bytes) -> bool:
    public_key, signature, message = item
    try:
        PublicKey.from_bytes(public_key).verify(signature, message, signer_id)
    except CryptoError:
        return False
    return True


def _corrupt(item: BatchItem, kind: int) -> BatchItem:
    public_key, signature, message = item
    if kind == 0:
        return public_key, signature, message + b"!"
    if kind == 1:
        return public_key, signature + b"\x00", message
    if kind == 2:
        return public_key[:-1] + bytes([public_key[-1] ^ 1]), signature, message
    return public_key[:33], signature, message


@pytest.fixture(scope="module")
def items() -> list[BatchItem]:
    keys = [PrivateKey.generate() for _ in range(SIGNER_COUNT)]
    result: list[BatchItem] = []
    for index in range(ITEM_COUNT):
        private_key = keys[index % SIGNER_COUNT]
        message = b"tx %d" % index
        item = (private_key.public_key.to_bytes(), private_key.sign(message), message)
        # Every fifth item is broken in one of four ways: message, DER, key, key length.
        result.append(_corrupt(item, (index // 5) % 4) if index % 5 == 0 else item)
    return result


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_matches_one_by_one(items: list[BatchItem], workers: int) -> None:
    expected = [_one_by_one(item, b"1234567812345678") for item in items]
    assert verify_batch(items, workers=workers) == expected
    assert 0 < sum(expected) < len(items)


def test_small_batch_and_signer_id() -> None:
    private_key = PrivateKey.generate()
    item = (private_key.public_key.to_bytes(), private_key.sign(b"m", b"alice"), b"m")
    assert verify_batch([item], signer_id=b"alice") == [True]
    assert verify_batch([item]) == [False]
    assert verify_batch([]) == []


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        verify_batch([], workers=0)


def test_a_kept_verifier_reuses_its_processes(items: list[BatchItem]) -> None:
    expected = [_one_by_one(item, b"1234567812345678") for item in items]
    with BatchVerifier(workers=2) as verifier:
        assert verifier.verify(items) == expected
        assert verifier.verify(list(reversed(items))) == list(reversed(expected))
        assert verifier.verify(items[:3]) == expected[:3]


def test_three_workers_on_any_machine(items: list[BatchItem]) -> None:
    expected = [_one_by_one(item, b"1234567812345678") for item in items]
    assert verify_batch(items, workers=3) == expected
