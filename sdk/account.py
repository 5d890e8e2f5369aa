"""An SM2 account: the key a department signs its transactions with.

The address is the last 20 bytes of SM3 of the public key, as the chain derives it. The
EIP-55 :attr:`Sm2Account.checksum_address` is only a display form that web3.py accepts; its
mixed case comes from Keccak as in Ethereum, the address bytes themselves do not.
"""

from __future__ import annotations

from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from chain.crypto import PrivateKey
from chain.crypto.keystore import DEFAULT_ITERATIONS, decrypt_keystore, encrypt_keystore
from chain.primitives import Address, PublicKeyBytes
from chain.types import Transaction
from chain.validation import sign_transaction


class Sm2Account:
    """A private SM2 key with the views of it a client needs. Build one with a class-method
    constructor; the key never appears in ``repr``."""

    def __init__(self, key: PrivateKey) -> None:
        """Prefer :meth:`from_private_key` or the other constructors."""
        self._key = key

    @classmethod
    def generate(cls) -> Sm2Account:
        """Return an account with a new key from the operating system's CSPRNG."""
        return cls(PrivateKey.generate())

    @classmethod
    def from_private_key(cls, key: PrivateKey) -> Sm2Account:
        """Return the account of an already loaded key."""
        return cls(key)

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> Sm2Account:
        """Return the account of a PKCS#8 ``PRIVATE KEY`` or SEC1 ``EC PRIVATE KEY`` PEM
        block. Raises chain.errors.InvalidKey on anything else; a password raises its
        subclass EncryptedPemUnsupported (keep keys at rest in a keystore instead)."""
        return cls(PrivateKey.from_pem(data, password))

    @classmethod
    def from_keystore(cls, data: bytes, password: bytes) -> Sm2Account:
        """Return the account stored in an SM4 keystore made by :meth:`to_keystore`.
        Raises chain.errors.InvalidKey for a wrong password or a damaged keystore."""
        return cls(decrypt_keystore(data, password))

    @property
    def private_key(self) -> PrivateKey:
        """The signing key."""
        return self._key

    @property
    def address(self) -> Address:
        """The 20-byte address: the last 20 bytes of SM3(x || y) of the public key."""
        return self._key.public_key.address

    @property
    def checksum_address(self) -> ChecksumAddress:
        """The address as an EIP-55 mixed-case hex string, the form web3.py expects in
        ``from`` fields and ``default_account``. For display and web3 only."""
        return to_checksum_address(self.address)

    @property
    def public_key_bytes(self) -> PublicKeyBytes:
        """The 65-byte uncompressed public key ``0x04 || x || y``."""
        return self._key.public_key.to_bytes()

    def sign_transaction(self, tx: Transaction) -> Transaction:
        """Return ``tx`` with this account's public key and an SM2 signature over its
        sign-bytes; any previous key and signature are replaced."""
        return sign_transaction(tx, self._key)

    def to_pem(self) -> bytes:
        """Return the key as an unencrypted PKCS#8 PEM block. Keep it secret."""
        return self._key.to_pem()

    def to_keystore(self, password: bytes, *, iterations: int = DEFAULT_ITERATIONS) -> bytes:
        """Return the key encrypted under ``password`` (SM4, key derived with
        ``iterations`` rounds of PBKDF2-HMAC-SM3), for :meth:`from_keystore`."""
        return encrypt_keystore(self._key, password, iterations=iterations)

    def __repr__(self) -> str:
        return f"Sm2Account({self.checksum_address})"
