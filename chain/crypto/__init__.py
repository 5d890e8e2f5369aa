"""国密 cryptography for the ledger: SM3 hashing, SM2 keys and signatures, SM4 keystores."""

from chain.crypto.sm3 import sm3

__all__ = ["sm3"]
