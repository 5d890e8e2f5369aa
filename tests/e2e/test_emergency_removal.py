"""Emergency removal of a compromised validator on a running network of four real processes.

Validator 3's key is compromised and its node keeps running in the attacker's hands. The
attacker proposes removing validator 0 (nobody else votes: it never passes). The three others
remove validator 3 with ``lianxin validators propose --power 0`` and two votes; the quorum
guard lets it through, since the three remaining validators are seen signing and hold the
whole new set. From the announced height the chain keeps committing on the three, the
certificates carry no signature of validator 3, its governance vote reverts
(``NotValidator``), its node is cut off p2p (a new connection with its key is refused at the
handshake) and, should its votes reach a node some other way, they are not counted.
``lianxin verify-chain`` passes on the remaining validators.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import run_cli
from eth_utils.abi import function_signature_to_4byte_selector
from net_harness import Net, assert_agreement, new_net, wait_until

from chain.consensus import Vote, VoteType, encode_message
from chain.crypto import PrivateKey
from contracts.validators import VALIDATOR_GOVERNANCE_ADDRESS, vote_call
from node.p2p.frames import FrameKind
from node.p2p.handshake import HandshakeError, perform_handshake
from node.rpc_client import rpc_call
from node.tx_send import send_transaction

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
COMPROMISED = 3
HONEST = [0, 1, 2]
FAST_TIMINGS = {
    "commit_delay_ms": 20,
    "timeout_propose_ms": 600,
    "timeout_prevote_ms": 300,
    "timeout_precommit_ms": 300,
    "timeout_delta_ms": 100,
}


@pytest.fixture
def four(tmp_path: Path) -> Iterator[Net]:
    with new_net(tmp_path / "net", VALIDATORS, options=FAST_TIMINGS) as network:
        yield network


def validators_cli(net: Net, *args: str) -> Any:
    result = run_cli("validators", *args, "--dir", str(net.root), "--json")
    assert result.code == 0, result
    return result.json()


def address_of(net: Net, index: int) -> str:
    return "0x" + net.key(index).public_key.address.hex()


def signers(net: Net, first: int, last: int) -> set[str]:
    found: set[str] = set()
    for height in range(first, last + 1):
        found |= net.certificate_signers(0, height)
    return found


def counter(net: Net, index: int, name: str) -> int:
    return int(net.status(index)["counters"].get(name, 0))


def attacker_votes(key: PrivateKey, chain_id: int, height: int) -> list[bytes]:
    """Nil prevotes and precommits by ``key`` for rounds 0-2 of ``height`` and the next."""
    votes = []
    for at in (height, height + 1):
        for round_ in range(3):
            for kind in (VoteType.PREVOTE, VoteType.PRECOMMIT):
                vote = Vote(kind, at, round_, None, key.public_key.address)
                votes.append(
                    encode_message(vote.with_signature(key.sign(vote.sign_bytes(chain_id))))
                )
    return votes


async def deliver(
    net: Net, target: int, link_key: PrivateKey, frames: Callable[[], list[bytes]]
) -> None:
    """Open a p2p connection to ``target`` authenticated with ``link_key`` and send what
    ``frames`` makes as consensus messages, again every 0.1 s for two seconds (the heights
    advance meanwhile). Raises HandshakeError (or the connection ends) if the target
    refuses the key."""
    chain_id = int(rpc_call(net.url(target), "eth_chainId", []), 16)
    reader, writer = await asyncio.open_connection("127.0.0.1", net.p2p_base + target)
    try:
        session = await asyncio.wait_for(
            perform_handshake(
                reader, writer, key=link_key, chain_id=chain_id, allowed=_ANY_KEY,
                initiator=True, max_bytes=1 << 20,
            ),
            timeout=10,
        )  # fmt: skip
        for _ in range(20):
            for body in frames():
                writer.write(session.channel.encode(FrameKind.CONSENSUS, body))
            await writer.drain()
            await asyncio.sleep(0.1)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class _AnyKey(frozenset[bytes]):
    def __contains__(self, item: object) -> bool:
        return True


_ANY_KEY = _AnyKey()


def test_a_compromised_validator_is_removed_while_it_keeps_running(four: Net) -> None:
    net = four
    everyone = list(range(VALIDATORS))
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert result.code == 0, result
    wait_until("first blocks", lambda: min(net.head(i) for i in everyone) >= 3)
    compromised_key = net.key(COMPROMISED)
    compromised = address_of(net, COMPROMISED)

    # The attacker, with validator 3's key, proposes removing validator 0: its own vote only.
    attack = validators_cli(
        net, "propose", "--node", str(COMPROMISED), "--target-node", "0", "--power", "0"
    )
    assert attack["ok"] and not attack.get("executed"), attack

    # The others: the dry run says the removal keeps a quorum among the remaining three.
    dry = validators_cli(
        net, "propose", "--node", "0", "--target-node", str(COMPROMISED), "--power", "0",
        "--dry-run",
    )  # fmt: skip
    assert dry["ok"], dry
    assert (dry["seenPower"], dry["newTotalPower"], dry["newQuorumPower"]) == (3, 3, 3)
    proposed = validators_cli(
        net, "propose", "--node", "0", "--target-node", str(COMPROMISED), "--power", "0"
    )
    assert proposed["ok"] and not proposed.get("executed"), proposed
    assert not validators_cli(net, "vote", str(proposed["proposal"]), "--node", "1").get("executed")
    passed = validators_cli(net, "vote", str(proposed["proposal"]), "--node", "2")
    assert passed["executed"], passed
    effective = passed["effectiveHeight"]

    wait_until(
        "the chain goes on without validator 3",
        lambda: min(net.head(i) for i in HONEST) >= effective + 5,
    )
    os.kill(net.pid(COMPROMISED), 0)  # the compromised node still runs
    members = rpc_call(net.url(0), "lianxin_getValidators", [hex(effective)])["validators"]
    assert {m["address"] for m in members} == {address_of(net, i) for i in HONEST}
    assert compromised in signers(net, 2, effective - 1)
    assert compromised not in signers(net, effective, net.head(0))

    # Its governance vote after the height is refused, and its proposal can never pass.
    receipt = send_transaction(
        net.url(0), compromised_key, to=VALIDATOR_GOVERNANCE_ADDRESS,
        data=vote_call(attack["proposal"]), gas=2_000_000,
    )  # fmt: skip
    assert receipt["status"] == "0x0"
    assert bytes.fromhex(receipt["output"][2:])[:4] == function_signature_to_4byte_selector(
        "NotValidator(address)"
    )
    stale = run_cli(
        "validators", "vote", str(attack["proposal"]), "--node", "1", "--dir", str(net.root)
    )
    assert stale.code != 0 and "StaleProposal" in stale.stderr, stale

    # p2p admits the set only: the running compromised node is cut off, and a connection
    # opened with its key is refused at the handshake.
    wait_until("validator 3 disconnected", lambda: net.status(COMPROMISED)["peers"] == 0)
    chain_id = int(rpc_call(net.url(0), "eth_chainId", []), 16)
    refused_before = counter(net, 0, "p2p_unknown_key")

    def votes_now(target: int) -> Callable[[], list[bytes]]:
        def make() -> list[bytes]:
            height = int(net.status(target)["height"], 16)
            return attacker_votes(compromised_key, chain_id, height)

        return make

    with pytest.raises((HandshakeError, asyncio.IncompleteReadError, ConnectionError)):
        asyncio.run(deliver(net, 0, compromised_key, votes_now(0)))
    wait_until(
        "node 0 counts the refused handshake",
        lambda: counter(net, 0, "p2p_unknown_key") > refused_before,
    )

    # Its votes, should they reach a node by another link, are not counted. The link is
    # authenticated with another honest validator's key and replaces that validator's own;
    # of two peers only the one with the smaller key dials, so the target is the honest
    # validator with the smallest key, which the impersonated one never redials meanwhile.
    keys = {index: net.key(index).public_key.to_bytes() for index in HONEST}
    target = min(keys, key=keys.__getitem__)
    link = next(index for index in HONEST if index != target)
    unknown_before = counter(net, target, "unknown_validator")
    asyncio.run(deliver(net, target, net.key(link), votes_now(target)))
    wait_until(
        "the votes of the removed key are refused",
        lambda: counter(net, target, "unknown_validator") > unknown_before,
    )

    base = min(net.head(i) for i in HONEST)
    wait_until("the chain keeps committing", lambda: min(net.head(i) for i in HONEST) >= base + 10)
    assert compromised not in signers(net, effective, net.head(0))
    assert_agreement(net, HONEST)

    stopped = run_cli("net", "stop", "--dir", str(net.root))
    assert stopped.code == 0, stopped
    for index in HONEST:
        verified = run_cli("verify-chain", "--dir", str(net.folder(index)), "--json")
        assert verified.code == 0, verified
        assert verified.json()["ok"] is True, verified
