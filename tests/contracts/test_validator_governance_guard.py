"""The quorum guard of ValidatorGovernance, through chain.execution as the node runs it: each
block first records who signed its last-commit certificate (the system writes of
contracts.validators.block_system_writes), and the vote that would execute a change reverts
with QuorumAtRisk when the validators seen signing in the last LIVENESS_WINDOW blocks would
hold less than a quorum of the set once every executed change and this one rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from eth_abi.abi import decode
from eth_utils.abi import function_signature_to_4byte_selector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import PrivateKey, sm3
from chain.execution import BlockContext, account_at, call, execute_block, genesis_state
from chain.execution.model import AccountAlloc
from chain.genesis import GenesisValidator
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, CommitSignature, Receipt, Transaction
from contracts.validators import (
    LIVENESS_WINDOW,
    VALIDATOR_GOVERNANCE_ADDRESS,
    change_count_call,
    decode_quorum_check,
    genesis_storage,
    last_signed_slot,
    liveness_writes,
    propose_call,
    quorum_check_call,
    validator_governance_contract,
    vote_call,
    voted_call,
)

CHAIN_ID = 7
TX_GAS = 2_000_000
QUORUM_AT_RISK = function_signature_to_4byte_selector("QuorumAtRisk(uint256,uint256)")
STALE = function_signature_to_4byte_selector("StaleProposal(uint256)")


def key(label: str) -> PrivateKey:
    return PrivateKey.from_bytes(sm3(b"guard test key " + label.encode()))


class GovernedState:
    """A governed chain advanced block by block: each block carries a certificate of its
    parent signed by the validators named for it."""

    def __init__(self, powers: Sequence[int]) -> None:
        self.keys = [key(f"v{i}") for i in range(len(powers))]
        validators = tuple(
            GenesisValidator(f"v{i}", k.public_key.to_bytes(), power)
            for i, (k, power) in enumerate(zip(self.keys, powers, strict=True))
        )
        contract = validator_governance_contract(validators)
        alloc = {
            VALIDATOR_GOVERNANCE_ADDRESS: AccountAlloc(
                balance=0, code=contract.code, storage=genesis_storage(validators)
            )
        }
        update = genesis_state(alloc)
        self.store: dict[bytes, bytes] = dict(update.writes)
        self.root = update.state_root
        self.height = 0
        self._nonces = 0

    def address(self, index: int) -> Address:
        return self.keys[index].public_key.address

    def context(self, height: int) -> BlockContext:
        return BlockContext(
            chain_id=CHAIN_ID,
            height=height,
            timestamp_ms=1_700_000_000_000 + 1_000 * height,
            proposer=self.address(0),
        )

    def certificate(self, signers: Iterable[int]) -> CommitCertificate | None:
        """A certificate of the head signed by ``signers`` (None before block 1)."""
        if self.height == 0:
            return None
        addresses = sorted(self.address(i) for i in set(signers))
        return CommitCertificate(
            height=self.height,
            round=0,
            block_hash=Hash32(bytes(32)),
            signatures=tuple(CommitSignature(a, b"\x30") for a in addresses),
        )

    def block(self, signers: Iterable[int], txs: Sequence[Transaction] = ()) -> list[Receipt]:
        """Execute the next block, its last commit signed by ``signers``."""
        height = self.height + 1
        writes = liveness_writes(self.certificate(signers))
        result = execute_block(self.store, self.root, self.context(height), txs, writes)
        self.store.update(result.writes)
        self.root = result.state_root
        self.height = height
        return list(result.receipts)

    def blocks(self, count: int, signers: Iterable[int]) -> None:
        chosen = list(signers)
        for _ in range(count):
            self.block(chosen)

    def tx(self, sender: int, data: bytes) -> Transaction:
        self._nonces += 1
        unsigned = Transaction(
            chain_id=CHAIN_ID,
            nonce=Hash32(sm3(b"guard nonce %d" % self._nonces)),
            block_limit=self.height + 100,
            to=VALIDATOR_GOVERNANCE_ADDRESS,
            value=0,
            data=data,
            gas_limit=TX_GAS,
            public_key=self.keys[sender].public_key.to_bytes(),
        )
        return dataclasses.replace(
            unsigned, signature=self.keys[sender].sign(unsigned.sign_bytes())
        )

    def send(self, sender: int, data: bytes, signers: Iterable[int]) -> Receipt:
        """One transaction by validator ``sender`` in a block whose last commit ``signers``
        signed."""
        return self.block(signers, [self.tx(sender, data)])[0]

    def view(self, data: bytes) -> bytes:
        result = call(
            self.store,
            self.root,
            self.context(self.height),
            sender=Address(bytes(20)),
            to=VALIDATOR_GOVERNANCE_ADDRESS,
            data=data,
            gas=50_000_000,
            value=0,
        )
        assert result.success
        return result.output

    def storage_root(self) -> Hash32:
        return account_at(self.store, self.root, VALIDATOR_GOVERNANCE_ADDRESS).storage_root

    def proposal_id(self, receipt: Receipt) -> int:
        assert receipt.status == 1, receipt.output.hex()
        return int(decode(["uint256"], receipt.output)[0])

    def change_count(self) -> int:
        selector = function_signature_to_4byte_selector("changeCount()")
        return int.from_bytes(self.view(selector), "big")


ALL = (0, 1, 2, 3)
WITHOUT_3 = (0, 1, 2)


def test_the_liveness_record_holds_the_last_height_each_validator_signed() -> None:
    state = GovernedState([1, 1, 1, 1])
    state.blocks(5, ALL)
    state.blocks(3, WITHOUT_3)
    from chain.execution import storage_at

    def last_signed(index: int) -> int:
        slot = last_signed_slot(state.address(index))
        return storage_at(state.store, state.root, VALIDATOR_GOVERNANCE_ADDRESS, slot)

    # Block 8 carries the certificate of block 7; block 5 the last one validator 3 signed.
    assert [last_signed(i) for i in ALL] == [7, 7, 7, 4]


def test_removal_voted_through_while_a_validator_is_down_is_refused_at_the_executing_vote() -> None:
    """The halting sequence: validator 3 down, a removal of validator 2 proposed while all
    four were online, then voted by 0 and 2. The executing vote is refused, nothing changes,
    and once validator 3 signs again the same vote passes."""
    state = GovernedState([1, 1, 1, 1])
    state.blocks(LIVENESS_WINDOW + 2, ALL)
    removal = propose_call(state.keys[2].public_key.to_bytes(), 0)
    proposal = state.proposal_id(state.send(1, removal, ALL))
    # Validator 3 stops signing, long enough to drop out of the window.
    state.blocks(LIVENESS_WINDOW + 1, WITHOUT_3)
    assert state.send(0, vote_call(proposal), WITHOUT_3).status == 1

    check = decode_quorum_check(
        state.view(quorum_check_call(state.address(2), 0, state.height + 1))
    )
    assert (check.seen_power, check.total_power, check.quorum_power) == (2, 3, 3)
    before = state.storage_root()
    refused = state.send(2, vote_call(proposal), WITHOUT_3)
    assert refused.status == 0 and refused.logs == ()
    assert refused.output[:4] == QUORUM_AT_RISK
    assert decode(["uint256", "uint256"], refused.output[4:]) == (2, 3)
    # Only the liveness record moved; the change was not executed.
    assert state.storage_root() != before
    assert state.change_count() == 4

    # Validator 3 is back: the same vote executes.
    passed = state.send(2, vote_call(proposal), ALL)
    assert passed.status == 1
    assert state.change_count() == 5


def test_pending_changes_are_judged_together() -> None:
    """Adding one validator that is not online yet is safe (4 of 5 seen, quorum 4); a second
    one, judged alone against the ruling set, would look safe too (4 of 5), but on top of the
    first, still pending, it leaves 4 of 6 seen, below the quorum of 5."""
    state = GovernedState([1, 1, 1, 1])
    state.blocks(3, ALL)
    first = key("newcomer-1").public_key.to_bytes()
    second = key("newcomer-2").public_key.to_bytes()
    proposal = state.proposal_id(state.send(0, propose_call(first, 1), ALL))
    assert state.send(1, vote_call(proposal), ALL).status == 1
    assert state.send(2, vote_call(proposal), ALL).status == 1
    assert state.change_count() == 5  # executed, effective two blocks later

    # In the next block, while the first change is still pending (it rules one block
    # later), the second is proposed and voted through by three of the four.
    later = proposal + 1
    receipts = state.block(
        ALL,
        [
            state.tx(0, propose_call(second, 1)),
            state.tx(1, vote_call(later)),
            state.tx(2, vote_call(later)),
        ],
    )
    assert [r.status for r in receipts] == [1, 1, 0]
    refused = receipts[2]
    assert refused.output[:4] == QUORUM_AT_RISK
    assert decode(["uint256", "uint256"], refused.output[4:]) == (4, 5)
    assert state.change_count() == 5


def test_a_newcomer_counts_only_once_it_signed_and_genesis_members_only_in_the_first_window() -> (
    None
):
    state = GovernedState([1, 1, 1, 1])
    state.block(ALL)
    newcomer = key("newcomer")
    # At block 2, validator 3 has signed nothing yet but, as a genesis member, counts as seen.
    check = decode_quorum_check(
        state.view(quorum_check_call(newcomer.public_key.address, 1, state.height + 1))
    )
    assert (check.seen_power, check.total_power) == (4, 5)
    state.blocks(LIVENESS_WINDOW + 1, WITHOUT_3)
    check = decode_quorum_check(
        state.view(quorum_check_call(newcomer.public_key.address, 1, state.height + 1))
    )
    assert (check.seen_power, check.total_power, check.quorum_power) == (3, 5, 4)


def _model(powers: Sequence[int], seen: set[int], target: int, power: int) -> bool:
    new = list(powers)
    new[target] = power
    total = sum(new)
    return sum(p for i, p in enumerate(new) if i in seen) >= total * 2 // 3 + 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    powers=st.lists(st.integers(1, 5), min_size=3, max_size=5),
    data=st.data(),
)
def test_the_executing_vote_follows_quorum_check(powers: list[int], data: st.DataObject) -> None:
    """Whatever the powers and who is down: the vote that executes a change succeeds exactly
    when quorumCheck (the node's dry run) says so, and that matches the rule computed here."""
    count = len(powers)
    state = GovernedState(powers)
    down = set(data.draw(st.sets(st.integers(0, count - 1), max_size=count - 1), label="down"))
    up = [i for i in range(count) if i not in down]
    target = data.draw(st.integers(0, count - 1), label="target")
    power = data.draw(st.integers(0, 5).filter(lambda p: p != powers[target]), label="power")
    state.blocks(LIVENESS_WINDOW + 2, range(count))
    data_ = propose_call(state.keys[target].public_key.to_bytes(), power)
    if sum(powers) - powers[target] + power == 0:
        return
    state.blocks(LIVENESS_WINDOW + 1, up)
    # Every validator that is up votes (the proposer first); the one whose vote crosses 2/3
    # of the power is the executing vote.
    voters = sorted(up, key=lambda i: -powers[i])
    total = sum(powers)
    voted = 0
    proposal = None
    for voter in voters:
        executes = (voted + powers[voter]) * 3 > total * 2
        if executes:
            check = decode_quorum_check(
                state.view(quorum_check_call(state.address(target), power, state.height + 1))
            )
            expected = _model(powers, set(up), target, power)
            assert check.ok == expected
        if proposal is None:
            receipt = state.send(voter, data_, up)
            if executes and not check.ok:
                assert receipt.status == 0 and receipt.output[:4] == QUORUM_AT_RISK
                return
            proposal = state.proposal_id(receipt)
        else:
            receipt = state.send(voter, vote_call(proposal), up)
            assert (receipt.status == 1) == (not executes or check.ok), receipt.output.hex()
            if executes and not check.ok:
                assert receipt.output[:4] == QUORUM_AT_RISK
        voted += powers[voter]
        if executes:
            return


def test_the_python_mirror_of_the_window_matches_the_contract() -> None:
    state = GovernedState([1])
    selector = function_signature_to_4byte_selector("LIVENESS_WINDOW()")
    assert int.from_bytes(state.view(selector), "big") == LIVENESS_WINDOW


def test_the_getters_the_cli_reads_before_a_vote() -> None:
    """``validators vote`` reads these to tell whether a vote would execute the change."""
    state = GovernedState([1, 1, 1, 1])
    state.block(ALL)
    proposal = state.proposal_id(
        state.send(0, propose_call(key("x").public_key.to_bytes(), 1), ALL)
    )
    assert int.from_bytes(state.view(voted_call(proposal, state.address(0))), "big") == 1
    assert int.from_bytes(state.view(voted_call(proposal, state.address(1))), "big") == 0
    assert int.from_bytes(state.view(change_count_call()), "big") == 4
