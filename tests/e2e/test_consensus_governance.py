"""Validator governance and an observer on a running network of real processes.

``lianxin net init --validators 4 --observers 1``: four validators and a fifth node whose
key is outside the validator set. The observer follows the chain (p2p and sync), serves
JSON-RPC and passes transactions on, without signing anything. Then, through
``lianxin validators propose/vote`` while the chain runs, it becomes the fifth validator
(three of four votes), signs certificates from the announced height on, and validator 3 is
removed (four of five votes) and stops signing. A change that would leave the validators
online short of a quorum is refused, also as a dry run, and nothing is sent.

On a network of four, a removal proposed while all were online and voted through after
another validator went down is refused at the executing vote (by the CLI, which sends
nothing, and, forced, by the contract's quorum guard), and the chain keeps committing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import run_cli
from net_harness import Net, assert_agreement, new_net, wait_until

from chain.consensus import ProposerSchedule
from chain.crypto import PrivateKey
from chain.genesis import parse_genesis
from chain.liveness import PROPOSER_LIVENESS_WINDOW
from contracts.validators import (
    LIVENESS_WINDOW,
    VALIDATOR_GOVERNANCE_ADDRESS,
    ValidatorProposal,
    decode_proposal,
    proposal_call,
)
from node.rpc_client import rpc_call
from sdk.account import Sm2Account
from sdk.transactions import build_transaction, encode_raw

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
OBSERVER = 4
NODES = VALIDATORS + 1
FAST_TIMINGS = {
    "commit_delay_ms": 20,
    "timeout_propose_ms": 300,
    "timeout_prevote_ms": 200,
    "timeout_precommit_ms": 200,
    "timeout_delta_ms": 100,
}
"""Shorter consensus timings for the removal test, so that the liveness window passes in a
few seconds once a validator stops."""


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with new_net(tmp_path / "net", VALIDATORS, observers=1) as network:
        yield network


def validators_cli(net: Net, *args: str) -> Any:
    result = run_cli("validators", *args, "--dir", str(net.root), "--json")
    assert result.code == 0, result
    return result.json()


def validator_addresses(net: Net, index: int = 0) -> set[str]:
    answer = rpc_call(net.url(index), "lianxin_getValidators", [], timeout=3)
    return {v["address"] for v in answer["validators"]}


def address_of(net: Net, index: int) -> str:
    return "0x" + net.key(index).public_key.address.hex()


def signers_from(net: Net, first: int, last: int | None = None) -> set[str]:
    """Every validator that signed a certificate of heights ``first`` to ``last`` (the head)."""
    top = net.head(0) if last is None else last
    found: set[str] = set()
    for height in range(first, top + 1):
        found |= net.certificate_signers(0, height)
    return found


def test_governance_adds_and_removes_validators_and_observer_follows(net: Net) -> None:
    started = time.monotonic()
    everyone = list(range(NODES))
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert result.code == 0, result
    wait_until("first blocks on all nodes", lambda: min(net.head(i) for i in everyone) >= 3)

    # The observer follows, serves JSON-RPC, passes transactions on, and signs nothing.
    assert net.status(OBSERVER)["role"] == "observer"
    assert net.status(0)["role"] == "validator"
    chain_id = int(rpc_call(net.url(OBSERVER), "eth_chainId", []), 16)
    account = Sm2Account.from_keystore(
        (net.root / "keys" / "dept-a.json").read_bytes(), net.password
    )
    tx = build_transaction(
        chain_id=chain_id, to=bytes(20), data=b"", gas_limit=50_000,
        block_limit=net.head(OBSERVER) + 100, value=1,
    )  # fmt: skip
    tx_hash = rpc_call(
        net.url(OBSERVER), "eth_sendRawTransaction", [encode_raw(account.sign_transaction(tx))]
    )
    wait_until(
        "the observer's transaction committed",
        lambda: rpc_call(net.url(0), "eth_getTransactionReceipt", [tx_hash]) is not None,
    )
    assert_agreement(net, everyone)
    assert address_of(net, OBSERVER) not in signers_from(net, 2)
    assert validator_addresses(net) == {address_of(net, i) for i in range(VALIDATORS)}

    # Add the observer as a fifth validator: proposed by 0, passed by the votes of 1 and 2.
    proposed = validators_cli(
        net, "propose", "--node", "0", "--target-node", str(OBSERVER), "--power", "1"
    )
    assert proposed["ok"] and not proposed.get("executed"), proposed
    proposal = proposed["proposal"]
    first_vote = validators_cli(net, "vote", str(proposal), "--node", "1")
    assert first_vote["ok"] and not first_vote.get("executed"), first_vote
    passed = validators_cli(net, "vote", str(proposal), "--node", "2")
    assert passed["ok"] and passed["executed"], passed
    effective = passed["effectiveHeight"]
    assert effective == passed["block"] + 2
    late = run_cli("validators", "vote", str(proposal), "--node", "3", "--dir", str(net.root))
    assert late.code != 0 and "AlreadyExecuted" in late.stderr, late

    wait_until("the new set rules", lambda: min(net.head(i) for i in everyone) >= effective + 3)
    header = rpc_call(net.url(0), "lianxin_getBlockHeader", [hex(effective)])["header"]
    before = rpc_call(net.url(0), "lianxin_getBlockHeader", [hex(effective - 1)])["header"]
    assert header["validatorSetHash"] != before["validatorSetHash"]
    assert validator_addresses(net) == {address_of(net, i) for i in range(NODES)}
    earlier = rpc_call(net.url(0), "lianxin_getValidators", [hex(effective - 1)])
    assert len(earlier["validators"]) == VALIDATORS
    assert earlier["validatorSetHash"] == before["validatorSetHash"]
    assert net.status(OBSERVER)["role"] == "validator"
    wait_until(
        "the new validator signs certificates",
        lambda: address_of(net, OBSERVER) in signers_from(net, effective),
    )
    assert address_of(net, OBSERVER) not in signers_from(net, 2, effective - 1)

    # Remove validator 3: four of five votes.
    removed = 3
    proposed = validators_cli(
        net, "propose", "--node", "0", "--target-node", str(removed), "--power", "0"
    )
    proposal = proposed["proposal"]
    for voter in (1, 2):
        assert not validators_cli(net, "vote", str(proposal), "--node", str(voter)).get("executed")
    passed = validators_cli(net, "vote", str(proposal), "--node", str(removed))
    assert passed["executed"], passed
    effective = passed["effectiveHeight"]
    # p2p admits only the validator set: the removed node is cut off and stops following.
    members = [0, 1, 2, OBSERVER]
    wait_until("validator 3 is out", lambda: min(net.head(i) for i in members) >= effective + 3)
    assert validator_addresses(net) == {address_of(net, i) for i in members}
    wait_until("validator 3 disconnected", lambda: net.status(removed)["peers"] == 0)
    assert address_of(net, removed) not in signers_from(net, effective)
    assert validators_cli(net, "status")[1]["executedAt"] is not None

    # A change that would leave the validators online short of a quorum is refused.
    stranger = PrivateKey.generate().public_key.to_bytes().hex()
    count_before = len(validators_cli(net, "status"))
    for extra in ((), ("--dry-run",)):
        refused = run_cli(
            "validators", "propose", "--node", "0", "--public-key", stranger, "--power", "10",
            *extra, "--dir", str(net.root),
        )  # fmt: skip
        assert refused.code != 0 and "quorum" in refused.stderr, refused
    accepted = validators_cli(
        net, "propose", "--node", "0", "--public-key", stranger, "--power", "1", "--dry-run"
    )
    assert accepted["ok"] and accepted["dryRun"], accepted
    assert len(validators_cli(net, "status")) == count_before

    base = net.head(0)
    wait_until("the chain goes on", lambda: min(net.head(i) for i in members) >= base + 3)
    assert_agreement(net, members)
    print(f"governance test took {time.monotonic() - started:.1f} s")


@pytest.fixture
def four(tmp_path: Path) -> Iterator[Net]:
    with new_net(tmp_path / "net", VALIDATORS, options=FAST_TIMINGS) as network:
        yield network


def read_proposal(net: Net, proposal: int) -> ValidatorProposal:
    request = {
        "to": "0x" + VALIDATOR_GOVERNANCE_ADDRESS.hex(),
        "data": "0x" + proposal_call(proposal).hex(),
    }
    output = rpc_call(net.url(0), "eth_call", [request, "latest"], timeout=3)
    return decode_proposal(proposal, bytes.fromhex(output[2:]))


def test_removal_voted_while_a_validator_is_down_is_refused_at_the_executing_vote(
    four: Net,
) -> None:
    """Validator 3 goes down after a removal of validator 2 was proposed (by 1) while all four
    were online; then 0 and 2 vote for it. Executing it would leave 0 and 1 of {0, 1, 3}, short
    of the quorum of 3: the chain would halt. Validator 2's vote, the executing one, is refused
    by the CLI (nothing sent) and, forced, by the contract; the chain keeps committing while
    validator 3 stays down."""
    net = four
    running = [0, 1, 2]
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert result.code == 0, result
    wait_until("first blocks", lambda: min(net.head(i) for i in range(VALIDATORS)) >= 3)

    proposed = validators_cli(net, "propose", "--node", "1", "--target-node", "2", "--power", "0")
    assert proposed["ok"] and not proposed.get("executed"), proposed
    proposal = proposed["proposal"]

    os.kill(net.pid(3), signal.SIGKILL)
    stopped_at = net.head(0)
    # Until validator 3's last certificate leaves the window, the contract still counts it.
    wait_until(
        f"{LIVENESS_WINDOW} blocks without validator 3",
        lambda: min(net.head(i) for i in running) >= stopped_at + LIVENESS_WINDOW + 2,
        timeout=90,
    )
    first = validators_cli(net, "vote", str(proposal), "--node", "0")
    assert first["ok"] and not first.get("executed"), first

    dry = run_cli(
        "validators", "vote", str(proposal), "--node", "2", "--dry-run", "--json",
        "--dir", str(net.root),
    )  # fmt: skip
    assert dry.code != 0 and "quorum" in dry.stderr, dry
    verdict = dry.json()
    assert verdict["executes"] and not verdict["ok"], verdict
    assert (verdict["seenPower"], verdict["newTotalPower"], verdict["newQuorumPower"]) == (2, 3, 3)

    voted_before = read_proposal(net, proposal).voted_power
    refused = run_cli("validators", "vote", str(proposal), "--node", "2", "--dir", str(net.root))
    assert refused.code != 0 and "quorum" in refused.stderr, refused
    assert read_proposal(net, proposal).voted_power == voted_before  # nothing was sent

    forced = run_cli(
        "validators", "vote", str(proposal), "--node", "2", "--force", "--dir", str(net.root)
    )
    assert forced.code != 0 and "QuorumAtRisk" in forced.stderr, forced
    pending = read_proposal(net, proposal)
    assert pending.executed_at == 0 and pending.voted_power == voted_before
    assert validator_addresses(net) == {address_of(net, i) for i in range(VALIDATORS)}

    base = min(net.head(i) for i in running)
    wait_until(
        "the chain keeps committing without validator 3",
        lambda: min(net.head(i) for i in running) >= base + 10,
    )
    assert_agreement(net, running)
    assert validator_addresses(net) == {address_of(net, i) for i in range(VALIDATORS)}

    # Validator 3 is passed over as proposer: at heights where the rotation picks it, another
    # validator proposed in round 0 (with validator 3 down, round 0 could not succeed else).
    genesis = parse_genesis((net.root / "genesis.toml").read_text(encoding="utf-8"))
    schedule = ProposerSchedule.initial(genesis.validator_set())
    down = address_of(net, 3)
    first, last = stopped_at + PROPOSER_LIVENESS_WINDOW + 2, net.head(0)
    turns_of_3 = []
    for height in range(1, last + 1):
        if height >= first and "0x" + schedule.proposer(0).hex() == down:
            turns_of_3.append(height)
        schedule = schedule.next_height()
    decided_in_round_0 = [
        height
        for height in turns_of_3
        if rpc_call(net.url(0), "lianxin_getBlockHeader", [hex(height)])["certificate"]["round"]
        == "0x0"
    ]
    assert turns_of_3 and decided_in_round_0, (turns_of_3, decided_in_round_0)
