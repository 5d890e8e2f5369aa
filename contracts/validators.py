"""The ValidatorGovernance system contract: its address, genesis storage, call data and the
decoding of its answers.

``contracts/src/ValidatorGovernance.sol`` keeps every executed validator change in
``Change[] changes`` (storage slot 0; the genesis members are its first entries, effective at
height 0) and the effective height of the latest change in ``lastEffectiveHeight`` (slot 1).
:func:`genesis_storage` writes the genesis members there, so the contract is the one source
of truth for the validator set from height 0. The set that rules a height ``h`` is
``validatorsAt(h)`` on the state after block ``h - 1``; a change executed in block ``e``
rules from ``e + ACTIVATION_DELAY``.

The quorum guard: the vote that would execute a change reverts with ``QuorumAtRisk`` when the
validators seen signing recently would hold less than a quorum of the set once every executed
change and this one rule. "Seen signing" is the chain's own record: before the transactions
of each block, :func:`block_system_writes` sets ``lastSignedHeight[v]`` (storage slot 4) to
the height of the block's last-commit certificate for every validator that signed it. It is
a system write (as EIP-4788 writes the beacon root) that depends on the block alone, so the
ledger, every validator and ``verify-chain`` apply the same writes and reach the same state.
A validator counts as seen at block ``n`` when it signed a certificate of heights
``n - LIVENESS_WINDOW`` .. ``n - 1`` (genesis members also before they could sign, during the
chain's first ``LIVENESS_WINDOW`` blocks). ``quorumCheck(validator, power, height)`` returns
the figures behind the verdict; the node's dry run (``lianxin_checkValidatorChange``) calls
it, so it gives the contract's own verdict.

Key rotation: ``proposeRotation(newKeyX, newKeyY, possession)`` sent from a validator's own
account replaces its key by a new one with the same power, once voted through, from the
change's effective height. ``possession`` is the new key's signature over
:func:`rotation_message` (the chain id, this contract, the old address and the new key), so
nobody rotates to a key they do not hold. ``rotatedFrom[new]`` (storage slot 5) records the key
each rotated key replaced: the quorum guard counts the new key as seen when the old one was,
and p2p keeps admitting the operator's node under the node key its peers know it by.
``rotatedTo[old]`` (slot 6) leads from a retired key to its successor: the CLI follows it to
find a validator's current key, and the contract gives a retired key no power again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.crypto import keccak

from chain.commit import Validator, ValidatorSet
from chain.genesis import Genesis, GenesisValidator, SystemContract
from chain.liveness import StorageWrite, certificate_signers
from chain.primitives import Address, Hash32, PublicKeyBytes
from chain.types import CommitCertificate
from contracts.artifacts import load_artifact
from contracts.errors import ContractsError

CONTRACT_NAME = "ValidatorGovernance"
"""Name of the contract, as in its Solidity source and in genesis."""

VALIDATOR_GOVERNANCE_ADDRESS = Address(bytes.fromhex("000000000000000000000000000000000000a002"))
"""Where the ValidatorGovernance system contract lives."""

ACTIVATION_DELAY = 2
"""Blocks between the block executing a change and the first height the change rules."""

LIVENESS_WINDOW = 32
"""Certificates (the latest ones) a validator must have signed at least one of to count as
seen online for the quorum guard (the contract's ``LIVENESS_WINDOW``)."""

CHANGES_SLOT = 0
"""Storage slot of the ``changes`` array (its length; elements from keccak(slot))."""
LAST_EFFECTIVE_HEIGHT_SLOT = 1
"""Storage slot of ``lastEffectiveHeight``."""
LAST_SIGNED_SLOT = 4
"""Storage slot of the ``lastSignedHeight`` mapping (entries at keccak(address . slot))."""
ROTATED_FROM_SLOT = 5
"""Storage slot of the ``rotatedFrom`` mapping (entries at keccak(address . slot))."""
ROTATED_TO_SLOT = 6
"""Storage slot of the ``rotatedTo`` mapping: a retired key → the key that replaced it."""
ROTATION_DOMAIN = b"lianxin validator key rotation".ljust(32, b"\0")
"""The contract's ``ROTATION_DOMAIN``: first 32 bytes of every rotation message."""
MAX_ROTATIONS_FOLLOWED = 64
"""Most ``rotatedFrom`` links followed back from one key (a bound on a storage walk)."""
CHANGE_FIELDS = 5
"""Storage slots per ``Change``: validator, power, effective height, key x, key y."""

FAR_FUTURE = 2**256 - 1
"""A height after every executed change: ``validatorsAt(FAR_FUTURE)`` is the set once every
pending change rules."""

PROPOSED_TOPIC = Hash32(keccak(text="Proposed(uint256,address,uint256,address)"))
"""topic0 of ``Proposed(uint256 indexed id, address indexed validator, uint256 power,
address indexed by)``."""
EXECUTED_TOPIC = Hash32(keccak(text="Executed(uint256,address,uint256,uint256)"))
ROTATED_TOPIC = Hash32(keccak(text="Rotated(uint256,address,address,uint256)"))
"""topic0 of ``Rotated(uint256 indexed id, address indexed oldKey, address indexed newKey,
uint256 effectiveHeight)``."""
"""topic0 of ``Executed(uint256 indexed id, address indexed validator, uint256 power,
uint256 effectiveHeight)``."""


class ValidatorSetUnreadable(ContractsError):
    """The contract's answer does not describe a usable validator set."""


@dataclass(frozen=True)
class RulingSet:
    """The validator set ruling a height, and the height from which it rules unchanged."""

    validators: ValidatorSet
    """The members, sorted by address."""
    since: int
    """The first height of this set (1 for the genesis set)."""


@dataclass(frozen=True)
class ValidatorProposal:
    """One proposal as the contract stores it."""

    id: int
    """Its id (index in ``proposals``)."""
    validator: Address
    """The validator whose power changes."""
    public_key: PublicKeyBytes
    """Its uncompressed SM2 key."""
    power: int
    """The proposed power; 0 removes the validator."""
    proposer: Address
    """The validator account that proposed it."""
    epoch: int
    """Number of executed changes when it was made; it passes only while this holds."""
    voted_power: int
    """Voting power of the validators that voted for it."""
    executed_at: int
    """The block that executed it, 0 while pending."""
    replaces: Address | None = None
    """For a key rotation, the validator key that ``public_key`` replaces (``power`` is its
    power); ``None`` for an ordinary change."""


def change_slot(index: int, field: int) -> int:
    """The storage slot of field ``field`` of ``changes[index]``."""
    base = int.from_bytes(keccak(CHANGES_SLOT.to_bytes(32, "big")), "big")
    return base + index * CHANGE_FIELDS + field


def last_signed_slot(validator: Address) -> int:
    """The storage slot of ``lastSignedHeight[validator]``."""
    key = bytes(12) + bytes(validator) + LAST_SIGNED_SLOT.to_bytes(32, "big")
    return int.from_bytes(keccak(key), "big")


def rotated_from_slot(validator: Address) -> int:
    """The storage slot of ``rotatedFrom[validator]``."""
    key = bytes(12) + bytes(validator) + ROTATED_FROM_SLOT.to_bytes(32, "big")
    return int.from_bytes(keccak(key), "big")


def liveness_writes(last_commit: CommitCertificate | None) -> tuple[StorageWrite, ...]:
    """The liveness record a block with ``last_commit`` makes before its transactions: the
    certificate's height as ``lastSignedHeight`` of each of its signers."""
    if last_commit is None:
        return ()
    return tuple(
        StorageWrite(VALIDATOR_GOVERNANCE_ADDRESS, last_signed_slot(signer), last_commit.height)
        for signer in certificate_signers(last_commit)
    )


def block_system_writes(
    genesis: Genesis, last_commit: CommitCertificate | None
) -> tuple[StorageWrite, ...]:
    """The system writes of a block carrying ``last_commit`` on the chain of ``genesis``
    (pass them to :func:`chain.execution.execute_block`): the liveness record when the chain
    is governed by the ValidatorGovernance contract, none otherwise. Every node and
    ``verify-chain`` use this one function, so they all reach the same state."""
    if not any(c.address == VALIDATOR_GOVERNANCE_ADDRESS for c in genesis.system_contracts):
        return ()
    return liveness_writes(last_commit)


def genesis_storage(validators: Sequence[GenesisValidator]) -> dict[int, int]:
    """The contract storage (slot → value) listing the genesis validators as changes effective
    at height 0."""
    storage: dict[int, int] = {CHANGES_SLOT: len(validators)}
    for index, validator in enumerate(validators):
        key = validator.public_key
        storage[change_slot(index, 0)] = int.from_bytes(validator.address, "big")
        storage[change_slot(index, 1)] = validator.power
        storage[change_slot(index, 3)] = int.from_bytes(key[1:33], "big")
        storage[change_slot(index, 4)] = int.from_bytes(key[33:65], "big")
    return storage


def validator_governance_contract(validators: Sequence[GenesisValidator]) -> SystemContract:
    """The ValidatorGovernance system contract for a genesis with ``validators``."""
    return SystemContract(
        name=CONTRACT_NAME,
        address=VALIDATOR_GOVERNANCE_ADDRESS,
        code=load_artifact(CONTRACT_NAME).deployed_bytecode,
        storage=tuple(
            (Hash32(slot.to_bytes(32, "big")), Hash32(value.to_bytes(32, "big")))
            for slot, value in sorted(genesis_storage(validators).items())
            if value
        ),
    )


def _call(signature: str, types: list[str], values: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def _key_halves(public_key: bytes) -> list[object]:
    if len(public_key) != 65 or public_key[0] != 4:
        raise ContractsError("a validator key must be an uncompressed SM2 key (65 bytes, 04…)")
    return [public_key[1:33], public_key[33:65]]


def validators_at_call(height: int) -> bytes:
    """Call data of ``validatorsAt(height)``."""
    return _call("validatorsAt(uint256)", ["uint256"], [min(height, FAR_FUTURE)])


def quorum_check_call(validator: Address, power: int, height: int) -> bytes:
    """Call data of ``quorumCheck(validator, power, height)``."""
    return _call(
        "quorumCheck(address,uint256,uint256)",
        ["address", "uint256", "uint256"],
        ["0x" + bytes(validator).hex(), power, height],
    )


@dataclass(frozen=True)
class QuorumCheck:
    """The contract's quorum-guard figures for one change (``quorumCheck``)."""

    seen_power: int
    """Power of the new set held by validators seen signing recently."""
    total_power: int
    """Total power of the new set."""
    quorum_power: int
    """Least power that is more than 2/3 of ``total_power``."""

    @property
    def ok(self) -> bool:
        """Whether the contract lets the change execute (the seen power reaches quorum)."""
        return self.seen_power >= self.quorum_power


def decode_quorum_check(output: bytes) -> QuorumCheck:
    """The answer of ``quorumCheck``; raises ContractsError if it does not decode."""
    try:
        seen, total, quorum = decode(["uint256", "uint256", "uint256"], output)
    except Exception as exc:
        raise ContractsError(f"quorumCheck answer does not decode: {exc}") from exc
    return QuorumCheck(int(seen), int(total), int(quorum))


def propose_call(public_key: bytes, power: int) -> bytes:
    """Call data of ``propose(keyX, keyY, power)``: the validator with ``public_key`` is to
    hold ``power`` (0 removes it)."""
    return _call(
        "propose(bytes32,bytes32,uint256)",
        ["bytes32", "bytes32", "uint256"],
        [*_key_halves(public_key), power],
    )


def rotation_message(chain_id: int, old: Address, new_public_key: bytes) -> bytes:
    """What the new key signs to prove its possession for rotating validator ``old`` to it on
    chain ``chain_id`` (the contract's ``rotationMessage``)."""
    _key_halves(new_public_key)
    return (
        ROTATION_DOMAIN
        + chain_id.to_bytes(32, "big")
        + bytes(VALIDATOR_GOVERNANCE_ADDRESS)
        + bytes(old)
        + bytes(new_public_key[1:65])
    )


def propose_rotation_call(new_public_key: bytes, possession: bytes) -> bytes:
    """Call data of ``proposeRotation(newKeyX, newKeyY, possession)``: the sender's key is to
    be replaced by ``new_public_key``, whose DER signature over :func:`rotation_message` is
    ``possession``."""
    return _call(
        "proposeRotation(bytes32,bytes32,bytes)",
        ["bytes32", "bytes32", "bytes"],
        [*_key_halves(new_public_key), possession],
    )


def rotation_check_call(old: Address, height: int) -> bytes:
    """Call data of ``rotationCheck(oldKey, height)``."""
    return _call(
        "rotationCheck(address,uint256)", ["address", "uint256"], ["0x" + bytes(old).hex(), height]
    )


def rotated_to_call(old: Address) -> bytes:
    """Call data of the ``rotatedTo(old)`` getter."""
    return _call("rotatedTo(address)", ["address"], ["0x" + bytes(old).hex()])


def vote_call(proposal_id: int) -> bytes:
    """Call data of ``vote(id)``."""
    return _call("vote(uint256)", ["uint256"], [proposal_id])


def proposal_count_call() -> bytes:
    """Call data of ``proposalCount()``."""
    return function_signature_to_4byte_selector("proposalCount()")


def change_count_call() -> bytes:
    """Call data of ``changeCount()``."""
    return function_signature_to_4byte_selector("changeCount()")


def voted_call(proposal_id: int, voter: Address) -> bytes:
    """Call data of the ``voted(id, voter)`` getter."""
    return _call(
        "voted(uint256,address)", ["uint256", "address"], [proposal_id, "0x" + bytes(voter).hex()]
    )


def proposal_call(proposal_id: int) -> bytes:
    """Call data of the ``proposals(id)`` getter."""
    return _call("proposals(uint256)", ["uint256"], [proposal_id])


def decode_ruling_set(output: bytes) -> RulingSet:
    """The answer of ``validatorsAt`` as a :class:`RulingSet`; raises
    ValidatorSetUnreadable for keys that do not match their addresses or an empty set."""
    try:
        xs, ys, addresses, powers, since = decode(
            ["bytes32[]", "bytes32[]", "address[]", "uint256[]", "uint256"], output
        )
    except Exception as exc:
        raise ValidatorSetUnreadable(f"validatorsAt answer does not decode: {exc}") from exc
    members = []
    for x, y, address, power in zip(xs, ys, addresses, powers, strict=True):
        validator = Validator(PublicKeyBytes(b"\x04" + x + y), int(power))
        if validator.address.hex() != str(address).lower().removeprefix("0x"):
            raise ValidatorSetUnreadable(f"key of {address} does not match its address")
        members.append(validator)
    if not members:
        raise ValidatorSetUnreadable("the contract holds an empty validator set")
    return RulingSet(ValidatorSet.of(members), max(int(since), 1))


def decode_proposal(proposal_id: int, output: bytes) -> ValidatorProposal:
    """The answer of ``proposals(id)``."""
    try:
        validator, power, x, y, proposer, epoch, voted_power, executed_at, replaces = decode(
            [
                "address", "uint256", "bytes32", "bytes32", "address", "uint256", "uint256",
                "uint256", "address",
            ],
            output,
        )  # fmt: skip
    except Exception as exc:
        raise ContractsError(f"proposals answer does not decode: {exc}") from exc
    replaced = bytes.fromhex(str(replaces)[2:])
    return ValidatorProposal(
        id=proposal_id,
        validator=Address(bytes.fromhex(str(validator)[2:])),
        public_key=PublicKeyBytes(b"\x04" + x + y),
        power=int(power),
        proposer=Address(bytes.fromhex(str(proposer)[2:])),
        epoch=int(epoch),
        voted_power=int(voted_power),
        executed_at=int(executed_at),
        replaces=None if replaced == bytes(20) else Address(replaced),
    )


def with_change(validators: ValidatorSet, public_key: bytes, power: int) -> ValidatorSet | None:
    """``validators`` after the validator with ``public_key`` is set to ``power`` (0 removes
    it); ``None`` if that leaves the set empty."""
    _key_halves(public_key)
    changed = Validator(PublicKeyBytes(public_key), power)
    members = [v for v in validators.validators if v.address != changed.address]
    if power > 0:
        members.append(changed)
    return ValidatorSet.of(members) if members else None
