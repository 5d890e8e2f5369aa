"""Consensus wire messages: proposals and votes, their canonical RLP and their sign-bytes.

Every signed message type has its own domain-separation prefix, and the chain id is the first
field of the signed payload:

========================  ===============================  =====================================
message                   prefix                           RLP payload after the prefix
========================  ===============================  =====================================
proposal                  ``lianxin/proposal/v1\\0``        chain id, height, round, block hash,
                                                           valid round (``[]`` or ``[r]``)
prevote                   ``lianxin/prevote/v1\\0``         chain id, height, round, block hash
                                                           (empty for nil)
precommit for a block     ``lianxin/precommit/v1\\0``       chain id, height, round, block hash
                                                           (:func:`chain.commit.precommit_sign_bytes`)
nil precommit             ``lianxin/precommit-nil/v1\\0``   chain id, height, round
========================  ===============================  =====================================

A non-nil precommit signs exactly :func:`chain.commit.precommit_sign_bytes`, so the
precommits a node collects form a :class:`chain.types.CommitCertificate` that
:func:`chain.commit.verify_commit_certificate` accepts.

Checking a message (known author, signature, height) happens here, at the boundary, in
:func:`verify_vote` and :func:`verify_proposal`; the state machine assumes verified input.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace

from chain import encoding as enc
from chain.commit import ValidatorSet, precommit_sign_bytes
from chain.crypto import PublicKey
from chain.encoding import RLPItem
from chain.errors import CryptoError, EncodingError
from chain.limits import MAX_PROPOSAL_BLOCK_BYTES
from chain.primitives import ADDRESS_SIZE, HASH_SIZE, Address, Hash32
from chain.types import MAX_SIGNATURE_SIZE

from .errors import (
    BadMessageSignature,
    BlockHashMismatch,
    InvalidMessage,
    UnknownValidator,
    WrongHeight,
)

PROPOSAL_SIGN_PREFIX = b"lianxin/proposal/v1\x00"
"""Domain separation of proposals."""

PREVOTE_SIGN_PREFIX = b"lianxin/prevote/v1\x00"
"""Domain separation of prevotes, nil or not."""

NIL_PRECOMMIT_SIGN_PREFIX = b"lianxin/precommit-nil/v1\x00"
"""Domain separation of nil precommits (block precommits use ``chain.commit``'s prefix)."""

NIL_ROUND = -1
"""The round value meaning "none" (the paper's -1), used for ``valid_round`` and locks."""

MAX_BLOCK_SIZE = MAX_PROPOSAL_BLOCK_BYTES
"""Upper bound on the block bytes a proposal may carry (:mod:`chain.limits`): above any block
a genesis may allow, below the p2p frame and WAL record limits."""


class VoteType(enum.IntEnum):
    """The two kinds of vote in a round."""

    PREVOTE = 1
    PRECOMMIT = 2


class MessageKind(enum.IntEnum):
    """Tag of a consensus message on the wire (see :func:`encode_message`)."""

    PROPOSAL = 1
    VOTE = 2


@dataclass(frozen=True)
class Vote:
    """A prevote or precommit by one validator for one block (or nil) at a height and round."""

    type: VoteType
    """Prevote or precommit."""
    height: int
    """Height being decided."""
    round: int
    """Round within the height, from 0."""
    block_hash: Hash32 | None
    """The block voted for; ``None`` votes nil."""
    validator: Address
    """The voting validator."""
    signature: bytes = b""
    """DER SM2 signature over :meth:`sign_bytes`; empty while the vote is unsigned."""

    def sign_bytes(self, chain_id: int) -> bytes:
        """The bytes the validator signs: a type prefix, then RLP with the chain id first."""
        return vote_sign_bytes(chain_id, self.type, self.height, self.round, self.block_hash)

    def unsigned(self) -> Vote:
        """This vote without its signature (what a write-ahead log records)."""
        return replace(self, signature=b"")

    def with_signature(self, signature: bytes) -> Vote:
        """This vote carrying ``signature``."""
        return replace(self, signature=signature)

    def to_rlp(self) -> RLPItem:
        """The RLP structure of the canonical encoding."""
        return [
            enc.encode_int(int(self.type)),
            enc.encode_int(self.height),
            enc.encode_int(self.round),
            b"" if self.block_hash is None else self.block_hash,
            self.validator,
            self.signature,
        ]

    def encode(self) -> bytes:
        """The canonical encoding."""
        return enc.encode(self.to_rlp())

    @classmethod
    def from_rlp(cls, item: RLPItem) -> Vote:
        """Inverse of :meth:`to_rlp`; raises EncodingError on any other structure."""
        type_, height, round_, block_hash, validator, signature = enc.as_list(item, "Vote", 6)
        type_value = enc.decode_int(type_, "Vote.type")
        if type_value not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            raise EncodingError(f"Vote.type: unknown vote type {type_value}")
        hash_raw = enc.as_bytes(block_hash, "Vote.block_hash")
        if len(hash_raw) not in (0, HASH_SIZE):
            raise EncodingError("Vote.block_hash: expected 0 or 32 bytes")
        return cls(
            type=VoteType(type_value),
            height=enc.decode_int(height, "Vote.height"),
            round=enc.decode_int(round_, "Vote.round"),
            block_hash=Hash32(hash_raw) if hash_raw else None,
            validator=Address(enc.as_bytes(validator, "Vote.validator", ADDRESS_SIZE)),
            signature=_signature(signature, "Vote.signature"),
        )

    @classmethod
    def decode(cls, data: bytes) -> Vote:
        """Decode the canonical encoding; raises EncodingError on anything else."""
        return cls.from_rlp(enc.decode(data))


@dataclass(frozen=True)
class Proposal:
    """A proposer's block for a height and round, with the round in which it last saw a
    polka for that block (the paper's ``validRound``)."""

    height: int
    """Height being decided."""
    round: int
    """Round in which the block is proposed."""
    block_hash: Hash32
    """Hash of ``block`` as the application defines it (the header hash for ledger blocks)."""
    block: bytes
    """The proposed block, opaque to consensus (the canonical block encoding on the ledger)."""
    valid_round: int
    """Round of the polka the proposer saw for this block, or :data:`NIL_ROUND`."""
    proposer: Address
    """The validator proposing; must be the round's proposer."""
    signature: bytes = b""
    """DER SM2 signature over :meth:`sign_bytes`; empty while the proposal is unsigned."""

    def sign_bytes(self, chain_id: int) -> bytes:
        """The bytes the proposer signs; the block is bound through its hash."""
        return proposal_sign_bytes(
            chain_id, self.height, self.round, self.block_hash, self.valid_round
        )

    def unsigned(self) -> Proposal:
        """This proposal without its signature."""
        return replace(self, signature=b"")

    def with_signature(self, signature: bytes) -> Proposal:
        """This proposal carrying ``signature``."""
        return replace(self, signature=signature)

    def to_rlp(self) -> RLPItem:
        """The RLP structure of the canonical encoding."""
        return [
            enc.encode_int(self.height),
            enc.encode_int(self.round),
            self.block_hash,
            self.block,
            _encode_round(self.valid_round),
            self.proposer,
            self.signature,
        ]

    def encode(self) -> bytes:
        """The canonical encoding."""
        return enc.encode(self.to_rlp())

    @classmethod
    def from_rlp(cls, item: RLPItem) -> Proposal:
        """Inverse of :meth:`to_rlp`; raises EncodingError on any other structure."""
        height, round_, block_hash, block, valid_round, proposer, signature = enc.as_list(
            item, "Proposal", 7
        )
        block_raw = enc.as_bytes(block, "Proposal.block")
        if len(block_raw) > MAX_BLOCK_SIZE:
            raise EncodingError(f"Proposal.block: larger than {MAX_BLOCK_SIZE} bytes")
        round_value = enc.decode_int(round_, "Proposal.round")
        valid_round_value = _decode_round(valid_round, "Proposal.valid_round")
        if valid_round_value >= round_value:
            raise EncodingError("Proposal.valid_round: must be below the proposal's round")
        return cls(
            height=enc.decode_int(height, "Proposal.height"),
            round=round_value,
            block_hash=Hash32(enc.as_bytes(block_hash, "Proposal.block_hash", HASH_SIZE)),
            block=block_raw,
            valid_round=valid_round_value,
            proposer=Address(enc.as_bytes(proposer, "Proposal.proposer", ADDRESS_SIZE)),
            signature=_signature(signature, "Proposal.signature"),
        )

    @classmethod
    def decode(cls, data: bytes) -> Proposal:
        """Decode the canonical encoding; raises EncodingError on anything else."""
        return cls.from_rlp(enc.decode(data))


Message = Proposal | Vote
"""Any consensus message."""


def _signature(item: RLPItem, field: str) -> bytes:
    raw = enc.as_bytes(item, field)
    if len(raw) > MAX_SIGNATURE_SIZE:
        raise EncodingError(f"{field}: longer than a DER SM2 signature")
    return raw


def _encode_round(round_: int) -> RLPItem:
    return enc.encode_optional(None if round_ == NIL_ROUND else enc.encode_int(round_))


def _decode_round(item: RLPItem, field: str) -> int:
    inner = enc.decode_optional(item, field)
    return NIL_ROUND if inner is None else enc.decode_int(inner, field)


def proposal_sign_bytes(
    chain_id: int, height: int, round_: int, block_hash: Hash32, valid_round: int
) -> bytes:
    """The bytes a proposer signs to propose ``block_hash`` at ``height`` and ``round_``."""
    payload: list[RLPItem] = [
        enc.encode_int(chain_id),
        enc.encode_int(height),
        enc.encode_int(round_),
        block_hash,
        _encode_round(valid_round),
    ]
    return PROPOSAL_SIGN_PREFIX + enc.encode(payload)


def vote_sign_bytes(
    chain_id: int, vote_type: VoteType, height: int, round_: int, block_hash: Hash32 | None
) -> bytes:
    """The bytes a validator signs for a vote. A precommit for a block signs
    :func:`chain.commit.precommit_sign_bytes`, so it can enter a commit certificate."""
    if vote_type is VoteType.PRECOMMIT:
        if block_hash is not None:
            return precommit_sign_bytes(chain_id, height, round_, block_hash)
        nil_payload: list[RLPItem] = [
            enc.encode_int(chain_id),
            enc.encode_int(height),
            enc.encode_int(round_),
        ]
        return NIL_PRECOMMIT_SIGN_PREFIX + enc.encode(nil_payload)
    payload: list[RLPItem] = [
        enc.encode_int(chain_id),
        enc.encode_int(height),
        enc.encode_int(round_),
        b"" if block_hash is None else block_hash,
    ]
    return PREVOTE_SIGN_PREFIX + enc.encode(payload)


def encode_message(message: Message) -> bytes:
    """The canonical wire encoding of any consensus message: RLP of ``[kind, body]``."""
    kind = MessageKind.PROPOSAL if isinstance(message, Proposal) else MessageKind.VOTE
    return enc.encode([enc.encode_int(int(kind)), message.to_rlp()])


def decode_message(data: bytes) -> Message:
    """Inverse of :func:`encode_message`; raises EncodingError on anything else."""
    kind, body = enc.as_list(enc.decode(data), "ConsensusMessage", 2)
    kind_value = enc.decode_int(kind, "ConsensusMessage.kind")
    if kind_value == MessageKind.PROPOSAL:
        return Proposal.from_rlp(body)
    if kind_value == MessageKind.VOTE:
        return Vote.from_rlp(body)
    raise EncodingError(f"ConsensusMessage.kind: unknown kind {kind_value}")


def _verify_signature(
    author: Address, signature: bytes, message: bytes, validators: ValidatorSet
) -> None:
    validator = validators.by_address.get(author)
    if validator is None:
        raise UnknownValidator(f"{author.hex()} is not in the validator set")
    if not signature:
        raise BadMessageSignature(f"message by {author.hex()} is unsigned")
    try:
        PublicKey.from_bytes(validator.public_key).verify(signature, message)
    except CryptoError as exc:
        raise BadMessageSignature(f"bad signature by {author.hex()}") from exc


def verify_vote(
    vote: Vote, validator_set: ValidatorSet, chain_id: int, *, height: int | None = None
) -> None:
    """Check that ``vote`` comes from a member of ``validator_set`` with a valid signature
    for ``chain_id``, and, when ``height`` is given, that it is for that height. Raises an
    :class:`InvalidMessage` subclass; returns nothing on success."""
    if height is not None and vote.height != height:
        raise WrongHeight(f"vote is for height {vote.height}, expected {height}")
    _verify_signature(vote.validator, vote.signature, vote.sign_bytes(chain_id), validator_set)


def verify_proposal(
    proposal: Proposal,
    validator_set: ValidatorSet,
    chain_id: int,
    *,
    hash_block: Callable[[bytes], Hash32],
    height: int | None = None,
) -> None:
    """Check that ``proposal`` is signed by a member of ``validator_set`` for ``chain_id``,
    that ``hash_block(proposal.block)`` is its block hash, that its valid round is below its
    round, and (when ``height`` is given) its height. Whether the author is the round's
    proposer is checked by the state machine, which knows the rotation. Raises an
    :class:`InvalidMessage` subclass; returns nothing on success."""
    if height is not None and proposal.height != height:
        raise WrongHeight(f"proposal is for height {proposal.height}, expected {height}")
    if not NIL_ROUND <= proposal.valid_round < proposal.round:
        raise InvalidMessage("proposal's valid round must be -1 or below its round")
    _verify_signature(
        proposal.proposer, proposal.signature, proposal.sign_bytes(chain_id), validator_set
    )
    try:
        actual = hash_block(proposal.block)
    except EncodingError as exc:
        raise BlockHashMismatch("proposal's block does not decode") from exc
    if actual != proposal.block_hash:
        raise BlockHashMismatch(
            f"proposal's block hashes to {actual.hex()}, not {proposal.block_hash.hex()}"
        )
