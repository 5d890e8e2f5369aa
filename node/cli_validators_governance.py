"""The ValidatorGovernance system contract as ``lianxin validators`` (:mod:`node.cli_validators`)
reads and sends to it: proposals, votes, the quorum guard's verdicts, a validator's current key,
and a transaction to the contract with the ids its events name. The commands import this module
when they run, not at start-up: it needs the contract's ABI encoding and the chain's transaction
encoding.

What the contract returns is read as exactly what its function returns: one 32-byte word, or
the ABI encoding of its values; anything else (a short or a garbled word) exits 3, as an answer
of the wrong shape does (:func:`node.cli_common.call`), and nothing is sent on its strength.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from eth_utils.abi import function_signature_to_4byte_selector

from chain.crypto import PrivateKey, PublicKey
from chain.errors import ChainError
from chain.primitives import Address
from contracts.errors import ContractsError
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
from node.cli_common import EXIT_BAD, EXIT_UNREACHABLE, call, fail, from_hex, to_hex
from node.rpc_client import hex_data, hex_quantity
from node.tx_send import send_transaction

T = TypeVar("T")

WORD = 32
"""Bytes of one ABI word."""
PROPOSAL_WORDS = 9
"""Words of the ``proposals(id)`` getter's answer."""
QUORUM_CHECK_WORDS = 3
"""Words of a ``quorumCheck`` / ``rotationCheck`` answer."""

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
    return call(url, "eth_call", [request, "latest"], read=hex_data)


def _unreadable(function: str, reason: str) -> typer.Exit:
    """Exit 3: the contract's answer to ``function`` is not what it returns."""
    return fail(f"the node's answer to eth_call of {function} {reason}", EXIT_UNREACHABLE)


def contract_word(url: str, data: bytes, function: str) -> bytes:
    """The one 32-byte word the contract's ``function`` (its signature) returns for call
    ``data``; exits 3 if the node answers anything else."""
    output = contract_call(url, data)
    if len(output) != WORD:
        raise _unreadable(function, f"is {len(output)} bytes, not one {WORD}-byte word")
    return output


def contract_uint(url: str, data: bytes, function: str) -> int:
    """The ``uint256`` the contract's ``function`` returns for call ``data``."""
    return int.from_bytes(contract_word(url, data, function), "big")


def contract_address(url: str, data: bytes, function: str) -> Address:
    """The ``address`` the contract's ``function`` returns for call ``data``; exits 3 if its
    word holds no address (its padding is not zero)."""
    word = contract_word(url, data, function)
    if any(word[: WORD - 20]):
        raise _unreadable(function, f"is not an address: 0x{word.hex()}")
    return Address(word[WORD - 20 :])


def contract_values(
    url: str, data: bytes, function: str, decode: Callable[[bytes], T], words: int | None
) -> T:
    """What ``decode`` makes of the contract's answer to call ``data`` (its ``function``),
    which is ``words`` words long when given; exits 3 if it is not, or does not decode."""
    output = contract_call(url, data)
    if words is not None and len(output) != words * WORD:
        raise _unreadable(function, f"is {len(output)} bytes, not {words} {WORD}-byte words")
    try:
        return decode(output)
    except (ContractsError, ChainError) as exc:
        raise _unreadable(function, f"does not decode: {exc}") from exc


def proposal_count(url: str) -> int:
    """How many proposals the contract holds."""
    return contract_uint(url, proposal_count_call(), "proposalCount()")


def proposal_at(url: str, proposal_id: int) -> ValidatorProposal:
    """Proposal ``proposal_id`` (one of :func:`proposal_count`) as the contract holds it."""
    return contract_values(
        url,
        proposal_call(proposal_id),
        "proposals(uint256)",
        lambda output: decode_proposal(proposal_id, output),
        PROPOSAL_WORDS,
    )


def send_to_contract(url: str, key: PrivateKey, data: bytes) -> dict[str, Any]:
    """Send ``data`` to the contract; the receipt's outcome, with the ids its events name.
    The receipt is of the shape node.rpc_client checks; exits 3 if one of the contract's
    events in it lacks the topics or data the event has."""
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
        result["error"] = _revert_reason(receipt.get("output") or "0x")
    for entry in receipt["logs"]:
        topics = [from_hex(t) for t in entry["topics"]]
        if topics and topics[0] == PROPOSED_TOPIC:
            _require_event(len(topics) >= 2, "Proposed")
            result["proposal"] = int.from_bytes(topics[1], "big")
        if topics and topics[0] == ROTATED_TOPIC:
            _require_event(len(topics) >= 4, "Rotated")
            result["rotated"] = {
                "from": to_hex(topics[2][12:]),
                "to": to_hex(topics[3][12:]),
            }
        if topics and topics[0] == EXECUTED_TOPIC:
            data_words = from_hex(entry["data"])
            _require_event(len(data_words) >= 2 * WORD, "Executed")
            result["executed"] = True
            result["effectiveHeight"] = int.from_bytes(data_words[WORD : 2 * WORD], "big")
    return result


def _require_event(holds: bool, event: str) -> None:
    """Exit 3 unless ``holds``: the receipt's ``event`` has the topics and data it has."""
    if not holds:
        raise fail(
            f"the node's receipt holds a {event} event without its topics or data",
            EXIT_UNREACHABLE,
        )


def current_key(url: str, configured: bytes) -> bytes:
    """The key that a validator configured with ``configured`` holds now: the configured key
    itself, or, after rotations, the key that replaced it last (``rotatedTo``), taken from the
    set once every executed change rules."""
    address = PublicKey.from_bytes(configured).address
    current = address
    for _ in range(MAX_ROTATIONS_FOLLOWED):
        successor = contract_address(url, rotated_to_call(current), "rotatedTo(address)")
        if successor == bytes(20):
            break
        current = successor
    if current == address:
        return configured
    future = contract_values(
        url, validators_at_call(FAR_FUTURE), "validatorsAt(uint256)", decode_ruling_set, None
    )
    member = future.validators.by_address.get(current)
    if member is None:
        raise fail(f"the validator's key rotated to {to_hex(current)}, which is not in the set")
    return bytes(member.public_key)


def quorum_verdict(url: str, public_key: bytes, power: int) -> dict[str, Any]:
    """The contract's quorum-guard verdict on setting ``public_key`` to ``power`` in the
    next block (``lianxin_checkValidatorChange``; node.rpc_client checks its ``ok`` and
    ``reason``)."""
    return dict(call(url, "lianxin_checkValidatorChange", [to_hex(public_key), power]))


def read_proposal(url: str, proposal_id: int) -> ValidatorProposal:
    """Proposal ``proposal_id`` as the contract holds it; exits 1 if there is none."""
    count = proposal_count(url)
    if not 0 <= proposal_id < count:
        raise fail(f"no proposal {proposal_id}: {count} proposals so far", EXIT_BAD)
    return proposal_at(url, proposal_id)


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
    changes = contract_uint(url, change_count_call(), "changeCount()")
    voted_word = contract_uint(url, voted_call(proposal.id, voter), "voted(uint256,address)")
    already = voted_word != 0
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
    height = call(url, "eth_blockNumber", [], read=hex_quantity) + 1
    check = contract_values(
        url,
        rotation_check_call(old, height),
        "rotationCheck(address,uint256)",
        decode_quorum_check,
        QUORUM_CHECK_WORDS,
    )
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
