"""The ValidatorGovernance system contract as the ledger sees it: genesis storage lists the
genesis validators, proposals pass at more than 2/3 of the voting power, a passed change rules
from two blocks later, the ledger reads the set of every height from the contract (and the
header of each height carries that set's hash), and bad proposals revert with the contract's
named errors."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_harness import make_chain, signed_tx

from chain.commit import Validator, ValidatorSet
from chain.consensus import Proposal, UnknownValidator, verify_proposal
from chain.crypto import PrivateKey
from chain.crypto.keystore import MIN_ITERATIONS, encrypt_keystore
from chain.genesis import GenesisValidator
from chain.primitives import Address
from chain.types import Receipt
from contracts.errors import ContractsError
from contracts.validators import (
    ACTIVATION_DELAY,
    FAR_FUTURE,
    VALIDATOR_GOVERNANCE_ADDRESS,
    ValidatorSetUnreadable,
    decode_proposal,
    decode_ruling_set,
    last_signed_slot,
    proposal_call,
    propose_call,
    propose_rotation_call,
    rotated_from_slot,
    rotated_to_call,
    rotation_message,
    validator_governance_contract,
    vote_call,
    with_change,
)
from node.block_validity import check_header
from node.keyring import Keyring, keyring_dir, keyring_file
from node.ledger import BlockRejected, Ledger, LedgerError
from node.rpc.lianxin_methods import LianxinMethods
from node.validator_check import check_validator_change
from node.validator_sets import replaced_keys, transport_keys
from node.verify import verify_chain

GENESIS_POWER = 10
"""Power of the one genesis validator: enough to stay above 2/3 of the total after a
newcomer that never signs is added (the quorum guard counts only validators seen signing)."""


class GovernedChain:
    """A single-validator ledger whose genesis deploys ValidatorGovernance; blocks are made
    with the validator's own single signature, as in dev mode."""

    def __init__(self, data_dir: Path) -> None:
        chain = make_chain()
        self.validator = chain.validator
        validators = tuple(replace(v, power=GENESIS_POWER) for v in chain.genesis.validators)
        self.genesis = replace(
            chain.genesis,
            validators=validators,
            system_contracts=(validator_governance_contract(validators),),
        )
        self.ledger = Ledger.open(data_dir, self.genesis, self.validator)

    def run(self, key: PrivateKey, data: bytes) -> Receipt:
        tx = signed_tx(key, to=VALIDATOR_GOVERNANCE_ADDRESS, data=data, gas_limit=2_000_000)
        committed = self.ledger.produce_block([tx], int(time.time() * 1000))
        return committed.receipts[0]

    def empty_block(self) -> None:
        self.ledger.produce_block([], int(time.time() * 1000))


def error_selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


@pytest.fixture
def governed(tmp_path: Path) -> GovernedChain:
    chain = GovernedChain(tmp_path)
    yield chain
    chain.ledger.close()


def test_genesis_set_comes_from_the_contract(governed: GovernedChain) -> None:
    ruling = governed.ledger.validator_set(1)
    assert ruling.validators == governed.genesis.validator_set()
    assert ruling.since == 1
    assert governed.ledger.governed


def test_a_change_rules_two_blocks_after_it_passes(governed: GovernedChain) -> None:
    ledger = governed.ledger
    newcomer = PrivateKey.generate()
    receipt = governed.run(governed.validator, propose_call(newcomer.public_key.to_bytes(), 3))
    assert receipt.status == 1
    executed_at = ledger.head.height
    effective = executed_at + ACTIVATION_DELAY
    genesis_set = governed.genesis.validator_set()
    for _ in range(ACTIVATION_DELAY):
        governed.empty_block()
    for height in range(1, effective):
        assert ledger.validator_set(height).validators == genesis_set
        assert ledger.block(height).header.validator_set_hash == genesis_set.hash()  # type: ignore[union-attr]
    ruling = ledger.validator_set(effective)
    assert ruling.since == effective
    assert {v.address: v.power for v in ruling.validators.validators} == {
        governed.validator.public_key.address: GENESIS_POWER,
        newcomer.public_key.address: 3,
    }
    governed.empty_block()
    assert ledger.block(effective).header.validator_set_hash == ruling.validators.hash()  # type: ignore[union-attr]
    assert ledger.validators_at(ledger.head, FAR_FUTURE).validators == ruling.validators


def test_bad_proposals_revert_with_named_errors(governed: GovernedChain) -> None:
    stranger = PrivateKey.generate()
    own_key = governed.validator.public_key.to_bytes()
    cases = [
        (stranger, propose_call(stranger.public_key.to_bytes(), 1), "NotValidator(address)"),
        (governed.validator, propose_call(own_key, GENESIS_POWER), "NoChange(address,uint256)"),
        (governed.validator, propose_call(own_key, 0), "EmptySet()"),
        (governed.validator, vote_call(7), "UnknownProposal(uint256)"),
    ]
    for key, data, error in cases:
        receipt = governed.run(key, data)
        assert receipt.status == 0
        assert receipt.output[:4] == error_selector(error), error
    passed = governed.run(governed.validator, propose_call(stranger.public_key.to_bytes(), 1))
    assert passed.status == 1
    again = governed.run(governed.validator, vote_call(0))
    assert again.output[:4] == error_selector("AlreadyExecuted(uint256)")


def test_validator_set_out_of_range_is_refused(governed: GovernedChain) -> None:
    with pytest.raises(LedgerError):
        governed.ledger.validator_set(governed.ledger.head.height + 2)


def test_genesis_storage_must_list_the_genesis_validators(tmp_path: Path) -> None:
    chain = make_chain()
    other = GenesisValidator(
        name="other", public_key=PrivateKey.generate().public_key.to_bytes(), power=1
    )
    genesis = replace(chain.genesis, system_contracts=(validator_governance_contract((other,)),))
    with pytest.raises(LedgerError, match="genesis storage"):
        Ledger.open(tmp_path, genesis, chain.validator)


def test_decoding_refuses_a_key_that_does_not_match_its_address() -> None:
    from eth_abi.abi import encode

    key = PrivateKey.generate().public_key.to_bytes()
    wrong = "0x" + "11" * 20
    output = encode(
        ["bytes32[]", "bytes32[]", "address[]", "uint256[]", "uint256"],
        [[key[1:33]], [key[33:]], [wrong], [1], 0],
    )
    with pytest.raises(ValidatorSetUnreadable):
        decode_ruling_set(output)


def test_with_change_adds_changes_and_removes() -> None:
    keys = [PrivateKey.generate().public_key.to_bytes() for _ in range(2)]
    one = ValidatorSet.of([Validator(keys[0], 1)])
    two = with_change(one, keys[1], 2)
    assert two is not None and two.total_power == 3
    assert with_change(one, keys[0], 0) is None
    with pytest.raises(ContractsError):
        with_change(two, b"\x02" + bytes(32), 1)


def test_the_dry_run_gives_the_contracts_verdict(governed: GovernedChain) -> None:
    """The newcomer never signs, so only the genesis validator's 10 count as seen: power 3
    for it leaves 10 of 13 (quorum 9) and passes, power 6 leaves 10 of 16 (quorum 11) and is
    refused; the node's dry run says so before, and the contract agrees at the vote."""
    ledger = governed.ledger
    newcomer = PrivateKey.generate().public_key.to_bytes()
    for _ in range(3):
        governed.empty_block()
    refused = check_validator_change(ledger, newcomer, 6)
    assert not refused["ok"] and "quorum" in refused["reason"]
    assert (refused["seenPower"], refused["newTotalPower"], refused["newQuorumPower"]) == (
        10,
        16,
        11,
    )
    receipt = governed.run(governed.validator, propose_call(newcomer, 6))
    assert receipt.status == 0
    assert receipt.output[:4] == error_selector("QuorumAtRisk(uint256,uint256)")
    accepted = check_validator_change(ledger, newcomer, 3)
    assert accepted["ok"] and accepted["seenPower"] == 10
    assert governed.run(governed.validator, propose_call(newcomer, 3)).status == 1


def test_every_block_records_the_signers_of_its_last_commit(governed: GovernedChain) -> None:
    ledger = governed.ledger
    for _ in range(4):
        governed.empty_block()
    slot = last_signed_slot(governed.validator.public_key.address)
    # Block 4 carries the certificate of block 3.
    assert ledger.storage(ledger.head, VALIDATOR_GOVERNANCE_ADDRESS, slot) == 3


def test_verify_chain_makes_the_same_liveness_writes(governed: GovernedChain) -> None:
    """verify-chain re-executes every block after the same system writes as the ledger, so a
    governed chain verifies (without them every block from height 2 on would differ)."""
    for _ in range(4):
        governed.empty_block()
    assert verify_chain(governed.ledger.store, governed.genesis) is None


def rotation_call(chain: GovernedChain, old: PrivateKey, new: PrivateKey) -> bytes:
    """``proposeRotation`` of ``old`` to ``new`` with a valid proof of possession."""
    new_key = new.public_key.to_bytes()
    message = rotation_message(chain.genesis.chain_id, old.public_key.address, new_key)
    return propose_rotation_call(new_key, new.sign(message))


def test_a_rotation_swaps_the_key_at_its_effective_height(governed: GovernedChain) -> None:
    """One proposal, passed by the validator's own vote (it holds all the power): from its
    effective height the new key holds the old key's power and the old key none; before it
    the old key rules. The node signs with the new key from then on, and the old key can no
    longer act as a validator."""
    ledger = governed.ledger
    old, new = governed.validator, PrivateKey.generate()
    receipt = governed.run(old, rotation_call(governed, old, new))
    assert receipt.status == 1, receipt.output.hex()
    effective = ledger.head.height + ACTIVATION_DELAY
    output = ledger.call(
        ledger.head, sender=old.public_key.address, to=VALIDATOR_GOVERNANCE_ADDRESS,
        data=proposal_call(0), gas=5_000_000, value=0,
    ).output  # fmt: skip
    proposal = decode_proposal(0, output)
    assert proposal.replaces == old.public_key.address
    assert proposal.validator == new.public_key.address and proposal.power == GENESIS_POWER
    rotated = ledger.storage(
        ledger.head, VALIDATOR_GOVERNANCE_ADDRESS, rotated_from_slot(new.public_key.address)
    )
    assert rotated == int.from_bytes(old.public_key.address, "big")
    while ledger.head.height < effective - 1:
        governed.empty_block()
    assert ledger.validator_set(effective - 1).validators == governed.genesis.validator_set()
    ruling = ledger.validator_set(effective)
    assert ruling.since == effective
    assert [(v.address, v.power) for v in ruling.validators.validators] == [
        (new.public_key.address, GENESIS_POWER)
    ]
    # A block proposed with the old key from the height on is refused.
    proposed_by_old = ledger.prepare_block([], int(time.time() * 1000)).block
    assert proposed_by_old.header.proposer == old.public_key.address
    with pytest.raises(BlockRejected, match="proposer is not a validator"):
        check_header(proposed_by_old, ledger.head, ruling.validators)
    proposal = Proposal(
        effective, 0, proposed_by_old.hash, proposed_by_old.encode(), -1, old.public_key.address
    )
    signed = proposal.with_signature(old.sign(proposal.sign_bytes(governed.genesis.chain_id)))
    with pytest.raises(UnknownValidator):
        verify_proposal(
            signed,
            ruling.validators,
            governed.genesis.chain_id,
            hash_block=lambda _: signed.block_hash,
        )
    ledger.use_validator_key(new)
    governed.empty_block()
    block = ledger.block(effective)
    assert block is not None and block.header.proposer == new.public_key.address
    assert ledger.store.commit_certificate(effective).signatures[0].validator == (  # type: ignore[union-attr]
        new.public_key.address
    )
    stale = governed.run(old, propose_call(PrivateKey.generate().public_key.to_bytes(), 1))
    assert stale.output[:4] == error_selector("NotValidator(address)")
    assert verify_chain(ledger.store, governed.genesis) is None
    # lianxin_getValidators names the new key after the genesis validator it replaced.
    listed = asyncio.run(LianxinMethods(_ReadsOnly(ledger)).lianxin_get_validators([]))  # type: ignore[arg-type]
    genesis_name = governed.genesis.validators[0].name
    assert genesis_name
    assert [(v["address"], v["name"]) for v in listed["validators"]] == [
        ("0x" + bytes(new.public_key.address).hex(), genesis_name)
    ]


class _ReadsOnly:
    """What the lianxin_ RPC handlers read: the ledger, called in place."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def off_loop(self, function: Any, *args: Any) -> Any:
        return function(*args)


def test_bad_rotations_revert_with_named_errors(governed: GovernedChain) -> None:
    """A rotation needs the new key's signature over this rotation's terms, from a validator,
    to a key that never was a validator's."""
    ledger = governed.ledger
    old, new, other = governed.validator, PrivateKey.generate(), PrivateKey.generate()
    new_key = new.public_key.to_bytes()
    chain_id = governed.genesis.chain_id
    terms = rotation_message(chain_id, old.public_key.address, new_key)
    cases = [
        # Signed by another key than the one rotated to.
        (old, propose_rotation_call(new_key, other.sign(terms)), "BadPossessionProof(address)"),
        # The new key's signature over another chain's terms.
        (
            old,
            propose_rotation_call(
                new_key, new.sign(rotation_message(chain_id + 1, old.public_key.address, new_key))
            ),
            "BadPossessionProof(address)",
        ),
        # Over the terms of another validator's rotation.
        (
            old,
            propose_rotation_call(
                new_key, new.sign(rotation_message(chain_id, other.public_key.address, new_key))
            ),
            "BadPossessionProof(address)",
        ),
        (old, propose_rotation_call(new_key, b"\x30\x00"), "BadPossessionProof(address)"),
        # Not a validator (with a proof that would be valid for it).
        (other, rotation_call(governed, other, new), "NotValidator(address)"),
        # To its own key.
        (old, rotation_call(governed, old, old), "KeyInUse(address)"),
    ]
    for key, data, error in cases:
        receipt = governed.run(key, data)
        assert receipt.status == 0, error
        assert receipt.output[:4] == error_selector(error), error
    assert ledger.validators_at(ledger.head, FAR_FUTURE).validators == (
        governed.genesis.validator_set()
    )
    # A key that a rotation retired never comes back.
    assert governed.run(old, rotation_call(governed, old, new)).status == 1
    for _ in range(ACTIVATION_DELAY):
        governed.empty_block()
    ledger.use_validator_key(new)
    back = governed.run(new, rotation_call(governed, new, old))
    assert back.output[:4] == error_selector("KeyInUse(address)")


def test_a_rotated_key_counts_as_seen_when_its_old_key_was(governed: GovernedChain) -> None:
    """At the rotation's effective height the new key has signed nothing yet; the quorum
    guard counts it as seen because the key it replaced was (same operator), so a change that
    the old key's power alone keeps safe still passes there."""
    ledger = governed.ledger
    old, new = governed.validator, PrivateKey.generate()
    for _ in range(3):
        governed.empty_block()
    assert governed.run(old, rotation_call(governed, old, new)).status == 1
    effective = ledger.head.height + ACTIVATION_DELAY
    while ledger.head.height < effective - 1:
        governed.empty_block()
    slot = last_signed_slot(new.public_key.address)
    assert ledger.storage(ledger.head, VALIDATOR_GOVERNANCE_ADDRESS, slot) == 0
    newcomer = PrivateKey.generate().public_key.to_bytes()
    verdict = check_validator_change(ledger, newcomer, 3)
    assert verdict["ok"], verdict
    assert (verdict["seenPower"], verdict["newTotalPower"]) == (GENESIS_POWER, GENESIS_POWER + 3)
    ledger.use_validator_key(new)
    assert governed.run(new, propose_call(newcomer, 3)).status == 1


def test_p2p_admits_a_rotated_validator_under_its_configured_node_key(
    governed: GovernedChain,
) -> None:
    """The configured peer key of a validator that rotated stays admitted (it is the node's
    p2p identity); a configured key whose validator was removed, or that never was one, is
    not."""
    ledger = governed.ledger
    old, new = governed.validator, PrivateKey.generate()
    stranger = PrivateKey.generate().public_key.to_bytes()
    peers = [bytes(old.public_key.to_bytes()), bytes(stranger)]
    before = transport_keys(ledger, ledger.head, ledger.validator_set(1).validators, peers)
    assert before == {bytes(old.public_key.to_bytes())}
    assert governed.run(old, rotation_call(governed, old, new)).status == 1
    for _ in range(ACTIVATION_DELAY):
        governed.empty_block()
    ruling = ledger.validator_set(ledger.head.height + 1).validators
    assert replaced_keys(ledger, ledger.head, new.public_key.address) == [old.public_key.address]
    assert transport_keys(ledger, ledger.head, ruling, peers) == {
        bytes(new.public_key.to_bytes()),
        bytes(old.public_key.to_bytes()),
    }


def test_the_keyring_finds_the_key_the_set_holds(tmp_path: Path) -> None:
    """Keys written into the keyring folder are picked up when the set no longer holds the
    configured key; a keystore that does not open is skipped and counted, never fatal."""
    password = b"keyring password"
    configured, rotated = PrivateKey.generate(), PrivateKey.generate()
    keystore = tmp_path / "validator.json"
    keystore.write_bytes(encrypt_keystore(configured, password, iterations=MIN_ITERATIONS))
    keyring = Keyring.for_keystore(configured, keystore, password)
    old_set = ValidatorSet.of([Validator(configured.public_key.to_bytes(), 1)])
    new_set = ValidatorSet.of([Validator(rotated.public_key.to_bytes(), 1)])
    assert keyring.key_for(old_set) is configured
    assert keyring.key_for(new_set) is None

    folder = keyring_dir(keystore)
    folder.mkdir()
    (folder / "garbage.json").write_bytes(b"{not a keystore")
    other_password = encrypt_keystore(PrivateKey.generate(), b"other", iterations=MIN_ITERATIONS)
    (folder / "wrong-password.json").write_bytes(other_password)
    keyring_file(keystore, rotated.public_key.address).write_bytes(
        encrypt_keystore(rotated, password, iterations=MIN_ITERATIONS)
    )
    found = keyring.key_for(new_set)
    assert found is not None and found.public_key.address == rotated.public_key.address
    assert keyring.refused == 2
    # Files already read are not decrypted again.
    assert keyring.key_for(ValidatorSet.of([Validator(stranger_key(), 1)])) is None
    assert keyring.refused == 2


def stranger_key() -> bytes:
    return bytes(PrivateKey.generate().public_key.to_bytes())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(old=st.binary(min_size=20, max_size=20), seed=st.integers(1, 2**64))
def test_the_rotation_message_is_the_contracts(
    governed: GovernedChain, old: bytes, seed: int
) -> None:
    """What the CLI has the new key sign is byte for byte what the contract verifies."""
    new_key = PrivateKey.from_bytes(seed.to_bytes(32, "big")).public_key.to_bytes()
    data = function_signature_to_4byte_selector("rotationMessage(address,bytes32,bytes32)")
    data += encode(
        ["address", "bytes32", "bytes32"], ["0x" + old.hex(), new_key[1:33], new_key[33:]]
    )
    ledger = governed.ledger
    result = ledger.call(
        ledger.head, sender=Address(bytes(20)), to=VALIDATOR_GOVERNANCE_ADDRESS, data=data,
        gas=1_000_000, value=0,
    )  # fmt: skip
    assert result.success
    (answer,) = decode(["bytes"], result.output)
    assert answer == rotation_message(governed.genesis.chain_id, Address(old), new_key)


def test_a_key_retired_by_a_rotation_gets_no_power_again(governed: GovernedChain) -> None:
    """``rotatedTo`` leads from the retired key to its successor, and a proposal giving the
    retired key power reverts."""
    ledger = governed.ledger
    old, new = governed.validator, PrivateKey.generate()
    assert governed.run(old, rotation_call(governed, old, new)).status == 1
    for _ in range(ACTIVATION_DELAY):
        governed.empty_block()
    ledger.use_validator_key(new)
    successor = ledger.call(
        ledger.head, sender=Address(bytes(20)), to=VALIDATOR_GOVERNANCE_ADDRESS,
        data=rotated_to_call(old.public_key.address), gas=100_000, value=0,
    ).output  # fmt: skip
    assert successor[12:] == bytes(new.public_key.address)
    back = governed.run(new, propose_call(old.public_key.to_bytes(), 1))
    assert back.status == 0
    assert back.output[:4] == error_selector("KeyInUse(address)")
