"""The dry run of a validator change: the verdict the ValidatorGovernance contract's quorum
guard would give if the change executed in the next block.

The verdict is the contract's own: this module calls its ``quorumCheck`` view on the head
state for the next height, the very function the vote that executes a change runs before
it lets the change pass. What the node sees on the network (its connected peers) is reported
alongside as information only: liveness for the guard is what the chain recorded (the
signers of recent commit certificates, :mod:`chain.liveness`), identical on every node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chain.crypto import PublicKey
from chain.primitives import Address
from contracts.errors import ContractsError
from contracts.validators import (
    FAR_FUTURE,
    LIVENESS_WINDOW,
    VALIDATOR_GOVERNANCE_ADDRESS,
    decode_quorum_check,
    quorum_check_call,
    with_change,
)
from node.ledger import Ledger, LedgerError

_CHECK_GAS = 50_000_000
"""Gas for the ``quorumCheck`` call (it walks the change history, like ``validatorsAt``)."""


def _hex(address: Address) -> str:
    return "0x" + bytes(address).hex()


def check_validator_change(
    ledger: Ledger, public_key: bytes, power: int, connected: Iterable[Address] = ()
) -> dict[str, Any]:
    """Whether setting the validator with ``public_key`` to ``power`` (0 removes it), on top
    of every executed change, would pass the contract's quorum guard in the next block.
    Returns ``ok``, ``reason`` (``None`` when ok) and the figures behind the verdict; raises
    LedgerError when the chain has no ValidatorGovernance contract or it does not answer."""
    head = ledger.head
    future = ledger.validators_at(head, FAR_FUTURE).validators
    address = PublicKey.from_bytes(public_key).address
    current = future.by_address.get(address)
    current_power = 0 if current is None else current.power
    verdict: dict[str, Any] = {
        "validator": _hex(address),
        "currentPower": current_power,
        "power": power,
        "connected": sorted(_hex(a) for a in connected),
    }
    if current_power == power:
        return {**verdict, "ok": False, "reason": "the validator already has this power"}
    changed = with_change(future, public_key, power)
    if changed is None:
        return {**verdict, "ok": False, "reason": "the change would leave no validator"}
    height = head.height + 1
    result = ledger.call(
        head,
        sender=Address(bytes(20)),
        to=VALIDATOR_GOVERNANCE_ADDRESS,
        data=quorum_check_call(address, power, height),
        gas=_CHECK_GAS,
        value=0,
    )
    if not result.success:
        raise LedgerError("the ValidatorGovernance contract has no quorumCheck")
    try:
        check = decode_quorum_check(result.output)
    except ContractsError as exc:
        raise LedgerError(str(exc)) from exc
    verdict |= {
        "atHeight": height,
        "livenessWindow": LIVENESS_WINDOW,
        "newTotalPower": check.total_power,
        "newQuorumPower": check.quorum_power,
        "seenPower": check.seen_power,
        "newValidators": [_hex(v.address) for v in changed.validators],
    }
    if not check.ok:
        return {
            **verdict,
            "ok": False,
            "reason": (
                f"the validators seen signing in the last {LIVENESS_WINDOW} blocks would hold "
                f"{check.seen_power} of {check.total_power} voting power, below the quorum "
                f"of {check.quorum_power}: the chain would halt"
            ),
        }
    return {**verdict, "ok": True, "reason": None}
