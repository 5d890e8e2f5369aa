"""The exception hierarchy of the protocol core. Every error raised by ``chain`` derives
from :class:`ChainError`; callers catch the specific subclass they can handle."""


class ChainError(Exception):
    """Base of every error raised by the ``chain`` package."""


class EncodingError(ChainError):
    """Bytes that are not the one canonical encoding of a value of the expected type."""


class CryptoError(ChainError):
    """A key, signature or ciphertext that cannot be used."""


class InvalidSignature(CryptoError):
    """A signature that does not verify for the given key, message and signer ID."""


class InvalidKey(CryptoError):
    """Key material that is malformed, not on the SM2 curve, or cannot be decrypted."""


class ProofError(ChainError):
    """A Merkle proof that does not prove membership under the given root."""


class ValidationError(ChainError):
    """A transaction or block that breaks a protocol rule. Subclasses say which rule."""


class GenesisError(ChainError):
    """A genesis file that is missing fields or holds inconsistent values."""


class ExecutionError(ChainError):
    """A block that cannot be applied to the state (not a reverted transaction: those
    produce a receipt with status 0)."""


class StorageError(ChainError):
    """A store that is missing, corrupt, or inconsistent with what was committed."""
