"""国密 cryptography for the ledger: SM3 hashing, SM2 keys and signatures, SM4 keystores.

Key generation and signing nonces come from the operating system's CSPRNG; this is the one
place where the otherwise pure ``chain`` package draws on the outside world. Which SM2
backend signs is chosen once per process (:mod:`chain.crypto.backend`): the system OpenSSL,
or the pure-Python backend only with ``LIANXIN_ALLOW_PURE_PYTHON_SIGNING=1``.
"""

from chain.crypto.batch import BatchVerifier, verify_batch
from chain.crypto.keys import DEFAULT_SIGNER_ID, PrivateKey, PublicKey
from chain.crypto.sm3 import sm3

__all__ = ["DEFAULT_SIGNER_ID", "BatchVerifier", "PrivateKey", "PublicKey", "sm3", "verify_batch"]
