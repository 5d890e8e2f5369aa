"""The ValidatorGovernance system contract as ``lianxin validators`` (:mod:`node.cli_validators`)
reads and sends to it: proposals, votes, the quorum guard's verdicts, a validator's current key,
and a transaction to the contract with the ids its events name. The commands import this module
when they run, not at start-up: it needs the contract's ABI encoding and the chain's transaction
encoding.
"""

from __future__ import annotations

from typing import Any

from eth_utils.abi import function_signature_to_4byte_selector

from chain.crypto import PrivateKey, PublicKey
from chain.primitives import Address
from contracts.validators import (
    EXECUTED_TOPIC,
    FAR_FUTURE,
    MAX_ROTATIONS_FOLLOWED,
    PROPOSED_TOPIC,
    ROTATED_TOPIC,
    VALIDATOR_GOVERNANCE_ADDRESS,
    ValidatorProposal,
    change_count_call,
    decode_proposal,
    decode_quorum_check,
    decode_ruling_set,
    proposal_call,
    proposal_count_call,
    rotated_to_call,
    rotation_check_call,
    validators_at_call,
    voted_call,
)
from node.cli_common import EXIT_BAD, call, fail, from_hex, to_hex
from node.tx_send import send_transaction

GOVERNANCE_GAS = 2_000_000
"""Gas limit of a proposal or vote (the contract walks the change history)."""

CONTRACT_ERRORS = {
    function_signature_to_4byte_selector(signature): signature
    for signature in (
        "NotValidator(address)",
        "UnknownProposal(uint256)",
        "AlreadyVoted(uint256,address)",
        "AlreadyExecuted(uint256)",
        "StaleProposal(uint256)",
        "EmptySet()",
        "NoChange(address,uint256)",
        "HashFailed()",
        "QuorumAtRisk(uint256,uint256)",
        "KeyInUse(address)",
        "BadPossessionProof(address)",
        "NotRotatable(address)",
    )
}
"""Selectors of the contract's custom errors → their signatures, to name a revert."""


def _revert_reason(output: str) -> str:
    return revert_name(from_hex(output))


def revert_name(raw: bytes) -> str:
    """The contract error that revert data ``raw`` names, or the raw data."""
    return CONTRACT_ERRORS.get(raw[:4], "reverted" if not raw else f"revert data 0x{raw.hex()}")


def contract_call(url: str, data: bytes) -> bytes:
    """What the contract returns for call ``data`` at the node's head (eth_call)."""
    request = {"to": to_hex(VALIDATOR_GOVERNANCE_ADDRESS), "data": to_hex(data)}
    return from_hex(str(call(url, "eth_call", [request, "latest"])))


def send_to_contract(url: str, key: PrivateKey, data: bytes) -> dict[str, Any]:
    """Send ``data`` to the contract; the receipt's outcome, with the ids its events name."""
    receipt = send_transaction(
        url, key, to=VALIDATOR_GOVERNANCE_ADDRESS, data=data, gas=GOVERNANCE_GAS
    )
    result: dict[str, Any] = {
        "ok": receipt["status"] == "0x1",
        "transaction": receipt["transactionHash"],
        "block": int(receipt["blockNumber"], 16),
        "by": to_hex(key.public_key.address),
    }
    if not result["ok"]:
        result["error"] = _revert_reason(str(receipt.get("output", "0x")))
    for entry in receipt.get("logs", []):
        topics = [from_hex(t) for t in entry["topics"]]
        if topics and topics[0] == PROPOSED_TOPIC:
            result["proposal"] = int.from_bytes(topics[1], "big")
        if topics and topics[0] == ROTATED_TOPIC:
            result["rotated"] = {
                "from": to_hex(topics[2][12:]),
                "to": to_hex(topics[3][12:]),
            }
        if topics and topics[0] == EXECUTED_TOPIC:
            result["executed"] = True
            result["effectiveHeight"] = int.from_bytes(from_hex(entry["data"])[32:64], "big")
    return result


def current_key(url: str, configured: bytes) -> bytes:
    """The key that a validator configured with ``configured`` holds now: the configured key
    itself, or, after rotations, the key that replaced it last (``rotatedTo``), taken from the
    set once every executed change rules."""
    address = PublicKey.from_bytes(configured).address
    current = address
    for _ in range(MAX_ROTATIONS_FOLLOWED):
        successor = contract_call(url, rotated_to_call(current))[12:32]
        if successor == bytes(20):
            break
        current = Address(successor)
    if current == address:
        return configured
    future = decode_ruling_set(contract_call(url, validators_at_call(FAR_FUTURE)))
    member = future.validators.by_address.get(current)
    if member is None:
        raise fail(f"the validator's key rotated to {to_hex(current)}, which is not in the set")
    return bytes(member.public_key)


def quorum_verdict(url: str, public_key: bytes, power: int) -> dict[str, Any]:
    """The contract's quorum-guard verdict on setting ``public_key`` to ``power`` in the
    next block (``lianxin_checkValidatorChange``)."""
    return dict(call(url, "lianxin_checkValidatorChange", [to_hex(public_key), power]))


def read_proposal(url: str, proposal_id: int) -> ValidatorProposal:
    """Proposal ``proposal_id`` as the contract holds it; exits 1 if there is none."""
    count = int.from_bytes(contract_call(url, proposal_count_call()), "big")
    if not 0 <= proposal_id < count:
        raise fail(f"no proposal {proposal_id}: {count} proposals so far", EXIT_BAD)
    return decode_proposal(proposal_id, contract_call(url, proposal_call(proposal_id)))


def vote_verdict(url: str, voter: Address, proposal: ValidatorProposal) -> dict[str, Any]:
    """What voting for ``proposal`` as ``voter`` would do in the next block: whether it
    executes the change (the voters would then hold more than 2/3 of the power ruling the
    next height) and, if it does, the contract's quorum verdict on the change. A vote the
    contract refuses for another reason (executed, stale, already voted) executes nothing;
    sending it shows the contract's named error."""
    ruling = call(url, "lianxin_getValidators", [])
    powers = {str(v["address"]).lower(): int(v["power"], 16) for v in ruling["validators"]}
    total = sum(powers.values())
    voted = proposal.voted_power + powers.get(to_hex(voter), 0)
    changes = int.from_bytes(contract_call(url, change_count_call()), "big")
    already = int.from_bytes(contract_call(url, voted_call(proposal.id, voter)), "big") != 0
    executes = (
        proposal.executed_at == 0
        and proposal.epoch == changes
        and not already
        and voted * 3 > total * 2
    )
    verdict: dict[str, Any] = {
        "proposal": proposal.id,
        "validator": to_hex(proposal.validator),
        "power": proposal.power,
        "votedPowerAfter": voted,
        "totalPower": total,
        "executes": executes,
    }
    if not executes:
        return {**verdict, "ok": True, "reason": None}
    if proposal.replaces is not None:
        check = rotation_verdict(url, proposal.replaces)
        return {**check, **verdict, "replaces": to_hex(proposal.replaces)}
    check = quorum_verdict(url, proposal.public_key, proposal.power)
    return {**check, **verdict, "ok": check["ok"], "reason": check["reason"]}


def rotation_verdict(url: str, old: Address) -> dict[str, Any]:
    """The contract's quorum verdict (``rotationCheck``) on rotating ``old``'s key in the next
    block: the set keeps its powers and the new key counts as seen when the old one is."""
    height = int(str(call(url, "eth_blockNumber", [])), 16) + 1
    check = decode_quorum_check(contract_call(url, rotation_check_call(old, height)))
    verdict: dict[str, Any] = {
        "atHeight": height,
        "seenPower": check.seen_power,
        "newTotalPower": check.total_power,
        "newQuorumPower": check.quorum_power,
        "ok": check.ok,
        "reason": None,
    }
    if not check.ok:
        verdict["reason"] = (
            f"the validators seen signing recently hold {check.seen_power} of "
            f"{check.total_power} voting power, below the quorum of {check.quorum_power}: the "
            "chain would halt"
        )
    return verdict
