"""Validator key rotation on a running network of four real validator processes.

Under a stream of transactions, validator 2 replaces its consensus key with
``lianxin validators rotate-key --node 2`` (signed by its current key, with the new key's
proof of possession); validators 0 and 1 vote it through. From the announced height the set
holds the new key with the same power and not the old one; the running node-2 process signs
certificates and proposes blocks with the new key without a restart, and the heads agree.
After the height the old key is refused: a governance vote it signs reverts
(``NotValidator``), and a precommit it signs does not count in a certificate, while the
certificates before the height still verify with it. ``lianxin verify-chain`` passes from
genesis on every node.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import run_cli
from eth_utils.abi import function_signature_to_4byte_selector
from net_harness import Net, assert_agreement, new_net, wait_until

from chain.commit import (
    CommitError,
    Validator,
    ValidatorSet,
    sign_precommit,
    verify_commit_certificate,
)
from chain.primitives import Hash32, PublicKeyBytes
from chain.types import CommitCertificate
from contracts.validators import VALIDATOR_GOVERNANCE_ADDRESS, vote_call
from node.keyring import keyring_dir
from node.rpc_client import RpcError, rpc_call
from node.tx_send import send_transaction
from sdk.account import Sm2Account
from sdk.transactions import build_transaction, encode_raw

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
ROTATED = 2
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


class Transfers(threading.Thread):
    """Sends small value transfers from one account, round-robin over the nodes, until
    stopped; keeps the hash of every transaction a node accepted."""

    def __init__(self, net: Net, nodes: list[int]) -> None:
        super().__init__(name="transfers", daemon=True)
        self.net = net
        self.nodes = nodes
        self.account = Sm2Account.from_keystore(
            (net.root / "keys" / "dept-a.json").read_bytes(), net.password
        )
        self.chain_id = int(rpc_call(net.url(0), "eth_chainId", []), 16)
        self.sent: list[tuple[int, str]] = []
        self.stop = threading.Event()
        self.rng = random.Random()

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            node = self.nodes[turn % len(self.nodes)]
            turn += 1
            try:
                head = self.net.head(node)
                tx = build_transaction(
                    chain_id=self.chain_id, to=self.rng.randbytes(20), data=b"",
                    gas_limit=50_000, block_limit=head + 100, value=1,
                    nonce=self.rng.randbytes(32),
                )  # fmt: skip
                raw = encode_raw(self.account.sign_transaction(tx))
                self.sent.append(
                    (node, rpc_call(self.net.url(node), "eth_sendRawTransaction", [raw]))
                )
            except RpcError:
                pass
            time.sleep(0.05)


def validators_cli(net: Net, *args: str) -> Any:
    result = run_cli("validators", *args, "--dir", str(net.root), "--json")
    assert result.code == 0, result
    return result.json()


def ruling_set(net: Net, height: int) -> dict[str, int]:
    answer = rpc_call(net.url(0), "lianxin_getValidators", [hex(height)], timeout=3)
    return {v["address"]: int(v["power"], 16) for v in answer["validators"]}


def trusted_set(net: Net, height: int) -> ValidatorSet:
    answer = rpc_call(net.url(0), "lianxin_getValidators", [hex(height)], timeout=3)
    return ValidatorSet.of(
        [
            Validator(PublicKeyBytes(bytes.fromhex(v["publicKey"][2:])), int(v["power"], 16))
            for v in answer["validators"]
        ]
    )


def certificate(net: Net, height: int) -> CommitCertificate:
    found = rpc_call(net.url(0), "lianxin_getBlockHeader", [hex(height)], timeout=3)
    return CommitCertificate.decode(bytes.fromhex(found["certificate"]["encoded"][2:]))


def signers(net: Net, first: int, last: int) -> set[str]:
    found: set[str] = set()
    for height in range(first, last + 1):
        found |= net.certificate_signers(0, height)
    return found


def proposers(net: Net, first: int, last: int) -> set[str]:
    return {
        rpc_call(net.url(0), "lianxin_getBlockHeader", [hex(h)], timeout=3)["header"]["proposer"]
        for h in range(first, last + 1)
    }


def test_a_validator_rotates_its_key_under_load(four: Net) -> None:
    net = four
    everyone = list(range(VALIDATORS))
    started = time.monotonic()
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert result.code == 0, result
    wait_until("first blocks", lambda: min(net.head(i) for i in everyone) >= 3)
    stream = Transfers(net, everyone)
    stream.start()

    old = net.key(ROTATED)
    old_address = "0x" + old.public_key.address.hex()
    keyring = keyring_dir(net.folder(ROTATED) / "validator.json")

    # Refused, nothing sent and nothing left in the keyring: the current key as the new one,
    # and another validator's key (the contract reverts KeyInUse).
    same = run_cli(
        "validators", "rotate-key", "--node", str(ROTATED), "--dir", str(net.root),
        "--new-keystore", str(net.folder(ROTATED) / "validator.json"),
    )  # fmt: skip
    assert same.code != 0 and "current key" in same.stderr, same
    taken = run_cli(
        "validators", "rotate-key", "--node", str(ROTATED), "--dir", str(net.root),
        "--new-keystore", str(net.folder(1) / "validator.json"),
    )  # fmt: skip
    assert taken.code != 0 and "KeyInUse" in taken.stderr, taken
    assert not any(keyring.glob("*.json"))
    assert validators_cli(net, "status") == []
    proposed = validators_cli(net, "rotate-key", "--node", str(ROTATED))
    assert proposed["ok"] and not proposed.get("executed"), proposed
    new_address = proposed["newKey"]
    assert proposed["validator"] == old_address and new_address != old_address
    # The new key waits, encrypted, in the node's keyring for the height it rules.
    keystore = Path(proposed["keystore"])
    assert keystore.parent == keyring
    assert keystore.is_file() and new_address[2:] in keystore.read_text(encoding="utf-8")

    # Before anyone votes, the running node shows it holds the new key.
    wait_until(
        "node 2 holds the new key",
        lambda: new_address in net.status(ROTATED)["keyring"]["keys"],
    )
    keys = validators_cli(net, "keys", "--node", str(ROTATED))
    assert keys["signing"] == old_address and keys["refused"] == 0, keys
    assert set(keys["keys"]) == {old_address, new_address}
    status = validators_cli(net, "status")
    assert status[-1]["replaces"] == old_address and status[-1]["validator"] == new_address
    first = validators_cli(net, "vote", str(proposed["proposal"]), "--node", "0")
    assert first["ok"] and not first.get("executed"), first
    passed = validators_cli(net, "vote", str(proposed["proposal"]), "--node", "1")
    assert passed["ok"] and passed["executed"], passed
    assert passed["rotated"] == {"from": old_address, "to": new_address}
    effective = passed["effectiveHeight"]
    assert effective == passed["block"] + 2

    wait_until(
        "the new key signs certificates",
        lambda: (
            min(net.head(i) for i in everyone) >= effective + 4
            and new_address in signers(net, effective, net.head(0))
        ),
    )
    before, after = ruling_set(net, effective - 1), ruling_set(net, effective)
    assert old_address in before and new_address not in before
    assert new_address in after and old_address not in after
    assert after[new_address] == before[old_address]
    assert sorted(after.values()) == sorted(before.values())

    # The running node-2 process signs with the new key from the height on, no restart.
    assert net.status(ROTATED)["validator"] == new_address
    assert validators_cli(net, "keys", "--node", str(ROTATED))["signing"] == new_address
    assert net.status(ROTATED)["role"] == "validator"
    assert net.status(ROTATED)["counters"].get("key_rotations") == 1
    wait_until(
        "node 2 proposes with the new key",
        lambda: new_address in proposers(net, effective, net.head(0)),
        timeout=120,
    )
    top = net.head(0)
    assert old_address not in signers(net, effective, top)
    assert old_address not in proposers(net, effective, top)
    assert old_address in signers(net, 2, effective - 1)

    # --target-node 2 now means node-2's current key (an emergency removal would name it).
    dry = validators_cli(
        net, "propose", "--node", "0", "--target-node", str(ROTATED), "--power", "0", "--dry-run"
    )
    assert dry["validator"] == new_address and dry["ok"], dry

    # A governance vote signed with the old key after the height is refused.
    receipt = send_transaction(
        net.url(0), old, to=VALIDATOR_GOVERNANCE_ADDRESS, data=vote_call(0), gas=2_000_000
    )
    assert receipt["status"] == "0x0"
    not_validator = function_signature_to_4byte_selector("NotValidator(address)")
    assert bytes.fromhex(receipt["output"][2:])[:4] == not_validator

    # A precommit signed with the old key after the height does not count; certificates
    # before the height still verify with the old key.
    chain_id = int(rpc_call(net.url(0), "eth_chainId", []), 16)
    height = effective + 1
    real = certificate(net, height)
    forged = CommitCertificate(
        height=height,
        round=real.round,
        block_hash=real.block_hash,
        signatures=tuple(
            sorted(
                [
                    *(s for s in real.signatures if "0x" + s.validator.hex() != new_address),
                    sign_precommit(
                        old,
                        chain_id=chain_id,
                        height=height,
                        round_=real.round,
                        block_hash=Hash32(real.block_hash),
                    ),
                ],
                key=lambda s: s.validator,
            )
        ),
    )
    with pytest.raises(CommitError, match="unknown validator"):
        verify_commit_certificate(
            forged, trusted_set(net, height), chain_id=chain_id,
            block_hash=real.block_hash, height=height,
        )  # fmt: skip
    for earlier in range(max(1, effective - 6), effective):
        cert = certificate(net, earlier)
        verify_commit_certificate(
            cert, trusted_set(net, earlier), chain_id=chain_id,
            block_hash=cert.block_hash, height=earlier,
        )  # fmt: skip

    # Restarted, node-2 finds the new key in its keyring and signs with it again.
    os.kill(net.pid(ROTATED), signal.SIGKILL)
    killed_at = net.head(0)
    restarted = run_cli(
        "net", "start", "--dir", str(net.root), "--node", str(ROTATED), "--log-level", "WARNING"
    )
    assert restarted.code == 0, restarted
    wait_until(
        "node 2 signs with the new key after its restart",
        lambda: (
            net.head(0) >= killed_at + 3 and new_address in signers(net, killed_at + 2, net.head(0))
        ),
        timeout=120,
    )
    assert net.status(ROTATED)["validator"] == new_address

    stream.stop.set()
    stream.join(timeout=30)
    assert len(stream.sent) >= 20, len(stream.sent)
    pending = {tx_hash for _, tx_hash in stream.sent}

    def all_committed() -> bool:
        for tx_hash in list(pending):
            if rpc_call(net.url(0), "eth_getTransactionReceipt", [tx_hash]) is not None:
                pending.discard(tx_hash)
        return not pending

    wait_until("every accepted transfer committed", all_committed, timeout=120)
    assert_agreement(net, everyone)

    # verify-chain from genesis on every node, across the rotation.
    stopped = run_cli("net", "stop", "--dir", str(net.root))
    assert stopped.code == 0, stopped
    for index in everyone:
        verified = run_cli("verify-chain", "--dir", str(net.folder(index)), "--json")
        assert verified.code == 0, verified
        assert verified.json()["ok"] is True, verified
    print(
        f"rotation test: {len(stream.sent)} transfers, effective height {effective}, "
        f"took {time.monotonic() - started:.1f} s"
    )
