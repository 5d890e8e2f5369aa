"""The Keccak backend chain.execution selects for py-evm, the trie and eth-utils: the fast C
backend when installed, the same digests as pycryptodome's reference for any input, and an
operator's ETH_HASH_BACKEND left alone."""

from __future__ import annotations

import importlib.util

import pytest
from Crypto.Hash import keccak as reference_keccak
from eth_hash.auto import keccak as shared_keccak
from eth_utils import keccak as eth_utils_keccak
from hypothesis import given
from hypothesis import strategies as st

import chain.execution
from chain.execution.keccak import EMPTY_KECCAK, FAST_BACKEND, select_keccak_backend

HAS_PYSHA3 = importlib.util.find_spec("sha3") is not None


def reference(data: bytes) -> bytes:
    return reference_keccak.new(data=data, digest_bits=256).digest()


@pytest.mark.skipif(not HAS_PYSHA3, reason="safe-pysha3 is not installed")
def test_the_fast_backend_is_selected_on_import() -> None:
    assert chain.execution.KECCAK_BACKEND == FAST_BACKEND
    assert shared_keccak.hasher.__module__ == "eth_hash.backends.pysha3"


@given(st.binary(max_size=2_000))
def test_digests_are_keccak_256(data: bytes) -> None:
    assert shared_keccak(data) == reference(data)
    assert eth_utils_keccak(data) == reference(data)
    preimage = shared_keccak.new(data[:7])
    preimage.update(data[7:])
    assert preimage.digest() == reference(data)


def test_known_digests() -> None:
    assert shared_keccak(b"") == EMPTY_KECCAK
    assert (
        shared_keccak(b"transfer(address,uint256)")[:4].hex() == "a9059cbb"
    )  # the ERC-20 selector every wallet knows


def test_an_operator_choice_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETH_HASH_BACKEND", "pycryptodome")
    hasher = shared_keccak.hasher
    assert select_keccak_backend() == "environment"
    assert shared_keccak.hasher is hasher
