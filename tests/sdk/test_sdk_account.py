"""Sm2Account: every constructor yields the same key the chain derives addresses from, and
keys survive PEM and keystore round trips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from eth_utils.address import is_checksum_address

from chain.crypto import PrivateKey, PublicKey
from chain.crypto.keystore import MIN_ITERATIONS
from chain.crypto.pem import EncryptedPemUnsupported
from chain.crypto.sm3 import sm3
from chain.errors import InvalidKey
from sdk.account import Sm2Account

ROOT = Path(__file__).resolve().parents[2]


def test_address_is_sm3_of_the_public_key(account: Sm2Account) -> None:
    public_key = account.public_key_bytes
    assert len(public_key) == 65 and public_key[0] == 0x04
    assert account.address == sm3(public_key[1:])[-20:]
    assert account.address == PublicKey.from_bytes(public_key).address


def test_checksum_address_is_eip55_display_of_the_same_bytes(account: Sm2Account) -> None:
    assert is_checksum_address(account.checksum_address)
    assert account.checksum_address.lower() == "0x" + account.address.hex()


def test_from_private_key_keeps_the_key() -> None:
    key = PrivateKey.generate()
    account = Sm2Account.from_private_key(key)
    assert account.private_key is key
    assert account.public_key_bytes == key.public_key.to_bytes()


def test_generate_gives_distinct_keys() -> None:
    assert Sm2Account.generate().address != Sm2Account.generate().address


def test_pem_round_trip(account: Sm2Account) -> None:
    restored = Sm2Account.from_pem(account.to_pem())
    assert restored.address == account.address
    assert restored.private_key.to_bytes() == account.private_key.to_bytes()


def test_pem_with_password_is_refused(account: Sm2Account) -> None:
    with pytest.raises(EncryptedPemUnsupported):
        Sm2Account.from_pem(account.to_pem(), password=b"secret")


def test_garbage_pem_raises_invalid_key() -> None:
    with pytest.raises(InvalidKey):
        Sm2Account.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_keystore_round_trip(account: Sm2Account) -> None:
    keystore = account.to_keystore(b"correct horse", iterations=MIN_ITERATIONS)
    restored = Sm2Account.from_keystore(keystore, b"correct horse")
    assert restored.private_key.to_bytes() == account.private_key.to_bytes()


def test_keystore_with_wrong_password_raises_invalid_key(account: Sm2Account) -> None:
    keystore = account.to_keystore(b"correct horse", iterations=MIN_ITERATIONS)
    with pytest.raises(InvalidKey):
        Sm2Account.from_keystore(keystore, b"battery staple")


def test_repr_shows_the_address_and_never_the_key(account: Sm2Account) -> None:
    text = repr(account)
    assert account.checksum_address in text
    assert account.private_key.to_bytes().hex() not in text.lower()


def test_core_sdk_does_not_load_web3() -> None:
    """Only sdk.web3_integration needs web3.py; accounts and transactions work without it."""
    probe = "import sys, sdk, sdk.account, sdk.transactions; print('web3' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"
