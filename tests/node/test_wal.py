"""The consensus write-ahead log: durable records, torn tails cut, one message per slot, and
no validator signing two different messages in one slot across crash-restart cycles."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chain.commit import Validator, ValidatorSet
from chain.consensus import (
    Broadcast,
    ConsensusConfig,
    ConsensusState,
    Event,
    Message,
    Persist,
    ProposalPrepared,
    ProposerSchedule,
    StartHeight,
    Step,
    TimeoutFired,
    Vote,
    VoteReceived,
    VoteType,
    step,
)
from chain.crypto import PrivateKey, sm3
from chain.primitives import Hash32
from node.wal import ConflictingSignature, Wal, slot_of

CHAIN_ID = 7


def keys(count: int) -> list[PrivateKey]:
    found = [PrivateKey.from_bytes(sm3(b"wal-test" + bytes([i]))) for i in range(count)]
    return sorted(found, key=lambda k: k.public_key.address)


def signed_vote(key: PrivateKey, height: int, round_: int, block: Hash32 | None) -> Vote:
    vote = Vote(VoteType.PREVOTE, height, round_, block, key.public_key.address)
    return vote.with_signature(key.sign(vote.sign_bytes(CHAIN_ID)))


def test_records_survive_reopen(tmp_path: Path) -> None:
    key = keys(1)[0]
    wal = Wal.open(tmp_path / "wal")
    wal.append(signed_vote(key, 1, 0, None))
    wal.append(signed_vote(key, 2, 0, None))
    wal.append(signed_vote(key, 2, 1, Hash32(b"\x01" * 32)))
    wal.close()
    reopened = Wal.open(tmp_path / "wal")
    assert [m.round for m in reopened.messages_at(2)] == [0, 1]
    assert len(reopened.messages_at(1)) == 1
    assert reopened.stats.truncated_bytes == 0


@pytest.mark.parametrize("damage", ["cut", "crc"])
def test_torn_tail_is_truncated(tmp_path: Path, damage: str) -> None:
    key = keys(1)[0]
    path = tmp_path / "wal"
    wal = Wal.open(path)
    wal.append(signed_vote(key, 1, 0, None))
    good_size = path.stat().st_size
    wal.append(signed_vote(key, 1, 1, None))
    wal.close()
    data = path.read_bytes()
    if damage == "cut":
        path.write_bytes(data[: good_size + 9])
    else:
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    reopened = Wal.open(path)
    assert [m.round for m in reopened.messages_at(1)] == [0]
    assert reopened.stats.truncated_bytes > 0
    assert path.stat().st_size == good_size
    reopened.append(signed_vote(key, 1, 1, None))
    reopened.close()
    assert len(Wal.open(path).messages_at(1)) == 2


def test_one_message_per_slot(tmp_path: Path) -> None:
    key = keys(1)[0]
    wal = Wal.open(tmp_path / "wal")
    first = signed_vote(key, 3, 0, None)
    wal.append(first)
    assert wal.recorded(first.unsigned()) == first
    with pytest.raises(ConflictingSignature):
        wal.recorded(signed_vote(key, 3, 0, Hash32(b"\x02" * 32)).unsigned())
    with pytest.raises(ConflictingSignature):
        wal.append(signed_vote(key, 3, 0, None))


def test_prune_below(tmp_path: Path) -> None:
    key = keys(1)[0]
    wal = Wal.open(tmp_path / "wal")
    for height in (1, 2, 3):
        wal.append(signed_vote(key, height, 0, None))
    wal.prune_below(3)
    wal.append(signed_vote(key, 3, 1, None))
    wal.close()
    reopened = Wal.open(tmp_path / "wal")
    assert reopened.messages_at(1) == () and reopened.messages_at(2) == ()
    assert len(reopened.messages_at(3)) == 2


class Incarnation:
    """One life of a validator: the core plus the driver's persist-then-send rule."""

    def __init__(self, path: Path, key: PrivateKey, schedule: ProposerSchedule) -> None:
        self.wal = Wal.open(path)
        self.key = key
        self.sent: list[Message] = []
        self.state = ConsensusState.initial(ConsensusConfig(CHAIN_ID, key.public_key.address))
        self.feed(StartHeight(1, schedule, self.wal.messages_at(1)))

    def feed(self, event: Event) -> None:
        self.state, effects = step(self.state, event)
        for effect in effects:
            if isinstance(effect, Persist) and self.wal.recorded(effect.message) is None:
                message = effect.message
                self.wal.append(message.with_signature(self.key.sign(message.sign_bytes(CHAIN_ID))))
            elif isinstance(effect, Broadcast):
                signed = self.wal.recorded(effect.message)
                assert signed is not None, "sent before persisted"
                self.sent.append(signed)


@pytest.mark.parametrize("seed", range(6))
def test_no_conflicting_signatures_across_crashes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    validator_keys = keys(4)
    validators = ValidatorSet.of(Validator(k.public_key.to_bytes(), 1) for k in validator_keys)
    schedule = ProposerSchedule.initial(validators)
    me = validator_keys[rng.randrange(4)]
    others = [k for k in validator_keys if k is not me]
    path = tmp_path / "wal"
    sent: list[Message] = []
    blocks = [Hash32(sm3(bytes([i]))) for i in range(3)]
    for _ in range(8):
        node = Incarnation(path, me, schedule)
        for _ in range(rng.randrange(1, 12)):
            state = node.state
            choice = rng.random()
            if choice < 0.4:
                node.feed(TimeoutFired(1, state.round, rng.choice(list(Step))))
            elif choice < 0.5 and state.awaiting_block_round == state.round:
                block = bytes([rng.randrange(256)])
                node.feed(ProposalPrepared(1, state.round, Hash32(sm3(block)), block))
            else:
                other = rng.choice(others)
                vote = Vote(
                    rng.choice(list(VoteType)), 1, state.round + rng.randrange(2),
                    rng.choice([None, *blocks]), other.public_key.address,
                )  # fmt: skip
                node.feed(VoteReceived(vote.with_signature(b"\x30")))
        sent += node.sent
        node.wal.close()
        if rng.random() < 0.5:
            # Crash in the middle of an append: a torn record at the tail.
            with open(path, "ab") as handle:
                handle.write(b"\x00\x00\x01\x00\x12\x34")
    by_slot: dict[tuple[int, int, int], set[Message]] = {}
    for message in sent:
        by_slot.setdefault(slot_of(message), set()).add(message)
    assert sent, "the validator never voted"
    conflicts = {slot: msgs for slot, msgs in by_slot.items() if len(msgs) > 1}
    assert not conflicts, conflicts
