"""Validator sets, precommit sign-bytes and commit-certificate verification.

A block is final when validators holding more than 2/3 of the voting power have signed a
precommit for its hash. The sign-bytes carry a type prefix and the chain id, so a
precommit can never be replayed as another message or on another chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from chain import encoding as enc
from chain.crypto import PrivateKey, PublicKey, sm3
from chain.errors import ChainError, CryptoError
from chain.primitives import Address, Hash32, PublicKeyBytes
from chain.types import CommitCertificate, CommitSignature

PRECOMMIT_SIGN_PREFIX = b"lianxin/precommit/v1\x00"
"""Domain separation of precommit votes; RLP of (chain id, height, round, block hash) follows."""


class CommitError(ChainError):
    """A commit certificate that does not prove the block was committed."""


def precommit_sign_bytes(chain_id: int, height: int, round_: int, block_hash: Hash32) -> bytes:
    """The bytes a validator signs to precommit ``block_hash`` at ``height`` and ``round_``."""
    payload: list[enc.RLPItem] = [
        enc.encode_int(chain_id),
        enc.encode_int(height),
        enc.encode_int(round_),
        block_hash,
    ]
    return PRECOMMIT_SIGN_PREFIX + enc.encode(payload)


@dataclass(frozen=True)
class Validator:
    """A member of the validator set."""

    public_key: PublicKeyBytes
    """Uncompressed SM2 public key that signs this validator's votes."""
    power: int
    """Voting power, at least 1."""

    @cached_property
    def address(self) -> Address:
        """Last 20 bytes of SM3(public key without the 0x04 prefix)."""
        return PublicKey.from_bytes(self.public_key).address


@dataclass(frozen=True)
class ValidatorSet:
    """The validators that sign a height's commit certificate, sorted by address."""

    validators: tuple[Validator, ...]
    """Members, strictly ascending by address."""

    @classmethod
    def of(cls, validators: Iterable[Validator]) -> ValidatorSet:
        """Build a set from validators in any order; raises CommitError on duplicates or
        non-positive power."""
        members = tuple(sorted(validators, key=lambda v: v.address))
        addresses = [v.address for v in members]
        if len(set(addresses)) != len(addresses):
            raise CommitError("validator set lists a validator twice")
        if not members or any(v.power < 1 for v in members):
            raise CommitError("validator set is empty or has a non-positive power")
        return cls(members)

    @cached_property
    def by_address(self) -> dict[Address, Validator]:
        """Members keyed by address."""
        return {v.address: v for v in self.validators}

    @property
    def total_power(self) -> int:
        """Sum of all voting power."""
        return sum(v.power for v in self.validators)

    @property
    def quorum_power(self) -> int:
        """The least power that is more than 2/3 of the total."""
        return self.total_power * 2 // 3 + 1

    def hash(self) -> Hash32:
        """SM3 of the canonical RLP list of ``[address, public key, power]`` sorted by address
        (the value headers carry as ``validator_set_hash``)."""
        return sm3(
            enc.encode(
                [[v.address, v.public_key, enc.encode_int(v.power)] for v in self.validators]
            )
        )


def verify_commit_certificate(
    certificate: CommitCertificate,
    validators: ValidatorSet,
    *,
    chain_id: int,
    block_hash: Hash32,
    height: int,
) -> None:
    """Check that ``certificate`` commits ``block_hash`` at ``height``: every signature is a
    valid precommit by a distinct member of ``validators``, and their power reaches quorum.
    Raises CommitError; returns nothing on success."""
    if certificate.height != height or certificate.block_hash != block_hash:
        raise CommitError(
            f"certificate is for height {certificate.height} block "
            f"{certificate.block_hash.hex()}, expected height {height} block {block_hash.hex()}"
        )
    message = precommit_sign_bytes(chain_id, height, certificate.round, block_hash)
    power = 0
    for entry in certificate.signatures:
        validator = validators.by_address.get(entry.validator)
        if validator is None:
            raise CommitError(f"signature by unknown validator {entry.validator.hex()}")
        try:
            PublicKey.from_bytes(validator.public_key).verify(entry.signature, message)
        except CryptoError as exc:
            raise CommitError(f"bad precommit signature by {entry.validator.hex()}") from exc
        power += validator.power
    if power < validators.quorum_power:
        raise CommitError(f"signed power {power} is below quorum {validators.quorum_power}")


def sign_precommit(
    key: PrivateKey, *, chain_id: int, height: int, round_: int, block_hash: Hash32
) -> CommitSignature:
    """Sign a precommit with ``key`` and return it as a certificate entry."""
    signature = key.sign(precommit_sign_bytes(chain_id, height, round_, block_hash))
    return CommitSignature(validator=key.public_key.address, signature=signature)
