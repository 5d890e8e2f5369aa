"""The consensus write-ahead log: durable records, torn tails cut, one message per slot, and
no validator signing two different messages in one slot across crash-restart cycles.

Damage other than a torn final record is a hard error that leaves the file as it was: an
intact record is never cut away (see :mod:`node.wal`). Largest proposals survive restarts;
a log cut at every byte offset keeps every record that was whole before the cut."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.commit import Validator, ValidatorSet
from chain.consensus import (
    Broadcast,
    ConsensusConfig,
    ConsensusState,
    Event,
    Message,
    Persist,
    Proposal,
    ProposalPrepared,
    ProposerSchedule,
    StartHeight,
    Step,
    TimeoutFired,
    Vote,
    VoteReceived,
    VoteType,
    encode_message,
    step,
)
from chain.crypto import PrivateKey, sm3
from chain.limits import MAX_PROPOSAL_BLOCK_BYTES, MAX_WAL_RECORD_BYTES
from chain.primitives import Hash32
from node.wal import MAGIC, ConflictingSignature, Wal, WalCorrupt, WalError, slot_of

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


def signed_proposal(key: PrivateKey, height: int, round_: int, block: bytes) -> Proposal:
    proposal = Proposal(height, round_, Hash32(sm3(block)), block, -1, key.public_key.address)
    return proposal.with_signature(key.sign(proposal.sign_bytes(CHAIN_ID)))


def record(payload: bytes) -> bytes:
    """One record of the version-2 format, written out here independently of node.wal."""
    lengths = struct.pack(">II", len(payload), zlib.crc32(payload))
    return lengths + struct.pack(">I", zlib.crc32(lengths)) + payload


def mixed_messages(key: PrivateKey, height: int, block_size: int) -> list[Message]:
    """Votes of two rounds around a proposal carrying a block of ``block_size`` bytes."""
    block = bytes(random.Random(block_size).randbytes(block_size))
    return [
        signed_vote(key, height, 0, None),
        signed_proposal(key, height, 1, block),
        signed_vote(key, height, 1, Hash32(sm3(block))),
        Vote(VoteType.PRECOMMIT, height, 1, Hash32(sm3(block)), key.public_key.address)
        .with_signature(b"\x30" * 70),
    ]  # fmt: skip


def written(path: Path, messages: list[Message]) -> tuple[bytes, list[int]]:
    """Append ``messages`` to a new log; its bytes and the offset where each record ends."""
    path.unlink(missing_ok=True)
    wal = Wal.open(path)
    ends = []
    for message in messages:
        wal.append(message)
        ends.append(path.stat().st_size)
    wal.close()
    return path.read_bytes(), ends


def test_largest_proposals_survive_restart(tmp_path: Path) -> None:
    key = keys(1)[0]
    path = tmp_path / "wal"
    first = signed_proposal(key, 5, 0, b"\x11" * MAX_PROPOSAL_BLOCK_BYTES)
    assert len(encode_message(first)) <= MAX_WAL_RECORD_BYTES
    messages = [
        first,
        signed_vote(key, 5, 0, first.block_hash),
        signed_proposal(key, 5, 1, b"\x22" * MAX_PROPOSAL_BLOCK_BYTES),
        signed_vote(key, 5, 1, None),
        signed_proposal(key, 5, 2, b"\x33" * (MAX_PROPOSAL_BLOCK_BYTES - 1)),
    ]
    written(path, messages)
    for _ in range(2):
        reopened = Wal.open(path)
        assert list(reopened.messages_at(5)) == messages
        assert reopened.stats.truncated_bytes == 0
        reopened.close()


def test_message_that_would_not_decode_is_refused_before_writing(tmp_path: Path) -> None:
    # A proposal over the decoder's block limit used to be written, then cut on restart
    # together with every record after it.
    key = keys(1)[0]
    path = tmp_path / "wal"
    wal = Wal.open(path)
    wal.append(signed_vote(key, 1, 0, None))
    size = path.stat().st_size
    with pytest.raises(WalError, match="would not decode"):
        wal.append(signed_proposal(key, 1, 1, bytes(MAX_PROPOSAL_BLOCK_BYTES + 1)))
    assert path.stat().st_size == size
    wal.append(signed_vote(key, 1, 1, None))
    wal.append(signed_vote(key, 1, 2, None))
    wal.close()
    assert [m.round for m in Wal.open(path).messages_at(1)] == [0, 1, 2]


def test_cut_at_every_offset_keeps_every_whole_record(tmp_path: Path) -> None:
    # What a SIGKILL or a power cut in the middle of an append can leave: the file cut at
    # any byte of the last record (a proposal), or around any earlier record's boundaries.
    # Every record whole before the cut survives; only the torn one goes.
    key = keys(1)[0]
    proposal, *votes = mixed_messages(key, 1, 200)[1:]
    messages = [signed_vote(key, 1, 0, None), *votes, proposal]
    full, ends = written(tmp_path / "full", messages)
    path = tmp_path / "wal"
    boundaries = {cut for end in [len(MAGIC), *ends] for cut in (end - 1, end, end + 1)}
    cuts = sorted({*range(ends[-2], len(full) + 1), *boundaries} - {len(MAGIC) - 1})
    assert len(cuts) > len(encode_message(proposal))
    for cut in cuts:
        path.write_bytes(full[:cut])
        whole = [end for end in ends if end <= cut]
        wal = Wal.open(path)
        assert list(wal.messages_at(1)) == messages[: len(whole)], cut
        wal.close()
        kept = whole[-1] if whole else len(MAGIC)
        assert path.read_bytes() == full[:kept], cut


def test_zero_filled_tail_is_a_torn_tail(tmp_path: Path) -> None:
    # Space allocated for an append whose data never reached the disk reads as zeros.
    key = keys(1)[0]
    messages = mixed_messages(key, 1, 300)
    full, _ = written(tmp_path / "full", messages)
    path = tmp_path / "wal"
    path.write_bytes(full + bytes(4096))
    wal = Wal.open(path)
    assert list(wal.messages_at(1)) == messages
    assert wal.stats.truncated_bytes == 4096
    wal.close()
    assert path.read_bytes() == full


def test_graceful_restarts_keep_every_record(tmp_path: Path) -> None:
    key = keys(1)[0]
    path = tmp_path / "wal"
    expected: list[Message] = []
    for life in range(12):
        wal = Wal.open(path)
        assert wal.stats.truncated_bytes == 0
        height = life // 3 + 1
        if life % 3 == 0:
            wal.prune_below(height)
            expected = [m for m in expected if m.height >= height]
        assert list(wal.messages_at(height)) == [m for m in expected if m.height == height]
        for message in mixed_messages(key, height, 100 * life)[life % 3 :: 3]:
            wal.append(message)
            expected.append(message)
        wal.close()


def _damage_mid_crc(full: bytes, ends: list[int]) -> tuple[bytes, int]:
    target = ends[0] + 12 + 5
    return full[:target] + bytes([full[target] ^ 0x01]) + full[target + 1 :], ends[0]


def _damage_mid_length(full: bytes, ends: list[int]) -> tuple[bytes, int]:
    # One bit of a length field: the header checksum no longer matches.
    return full[: ends[0] + 2] + bytes([full[ends[0] + 2] ^ 0x10]) + full[ends[0] + 3 :], ends[0]


def _oversize_mid_record(full: bytes, ends: list[int]) -> tuple[bytes, int]:
    lengths = struct.pack(">II", MAX_WAL_RECORD_BYTES + 1, 0)
    header = lengths + struct.pack(">I", zlib.crc32(lengths))
    return full[: ends[0]] + header + full[ends[0] :], ends[0]


def _oversize_last_record(full: bytes, ends: list[int]) -> tuple[bytes, int]:
    lengths = struct.pack(">II", MAX_WAL_RECORD_BYTES + 1, 0)
    return full + lengths + struct.pack(">I", zlib.crc32(lengths)) + b"\x01" * 20, len(full)


def _undecodable_mid_record(full: bytes, ends: list[int]) -> tuple[bytes, int]:
    return full[: ends[1]] + record(b"\xc2\x05\x05") + full[ends[1] :], ends[1]


def _undecodable_last_record(full: bytes, ends: list[int]) -> tuple[bytes, int]:
    return full + record(b"\xc0"), len(full)


def _damaged_marker(full: bytes, ends: list[int]) -> tuple[bytes, int]:
    return b"\x00" + full[1:], 0


DAMAGE = {
    "mid-file CRC": _damage_mid_crc,
    "mid-file length bit": _damage_mid_length,
    "mid-file length over the limit": _oversize_mid_record,
    "length over the limit in the last record": _oversize_last_record,
    "mid-file record that does not decode": _undecodable_mid_record,
    "last record that passes its CRC but does not decode": _undecodable_last_record,
    "damaged format marker": _damaged_marker,
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damage_that_is_not_a_torn_tail_is_a_hard_error(tmp_path: Path, kind: str) -> None:
    key = keys(1)[0]
    full, ends = written(tmp_path / "full", mixed_messages(key, 1, 300))
    damaged, offset = DAMAGE[kind](full, ends)
    path = tmp_path / "wal"
    path.write_bytes(damaged)
    with pytest.raises(WalCorrupt) as raised:
        Wal.open(path)
    assert raised.value.offset == offset
    assert raised.value.path == path
    assert f"{path} is damaged at byte offset {offset}" in str(raised.value)
    assert path.read_bytes() == damaged


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_a_flipped_bit_never_costs_an_intact_record(
    tmp_path: Path, position: int, bit: int
) -> None:
    key = keys(1)[0]
    messages = [*mixed_messages(key, 1, 200), signed_vote(key, 1, 2, None)]
    full, ends = written(tmp_path / "full", messages)
    position %= len(full)
    damaged = bytearray(full)
    damaged[position] ^= 1 << bit
    path = tmp_path / "wal"
    path.write_bytes(damaged)
    if position < ends[-2]:
        with pytest.raises(WalCorrupt):
            Wal.open(path)
        assert path.read_bytes() == damaged
    else:
        wal = Wal.open(path)
        assert list(wal.messages_at(1)) == messages[:-1]
        wal.close()
        assert path.read_bytes() == full[: ends[-2]]


def _legacy(messages: list[Message]) -> bytes:
    payloads = [encode_message(m) for m in messages]
    return b"".join(struct.pack(">II", len(p), zlib.crc32(p)) + p for p in payloads)


def test_first_format_log_is_read_and_rewritten(tmp_path: Path) -> None:
    key = keys(1)[0]
    messages = mixed_messages(key, 4, 500)
    path = tmp_path / "wal"
    path.write_bytes(_legacy(messages) + b"\x00\x00\x01")
    wal = Wal.open(path)
    assert list(wal.messages_at(4)) == messages
    wal.append(signed_vote(key, 4, 2, None))
    wal.close()
    assert path.read_bytes().startswith(MAGIC)
    assert len(Wal.open(path).messages_at(4)) == len(messages) + 1


def test_first_format_damage_mid_file_is_a_hard_error(tmp_path: Path) -> None:
    key = keys(1)[0]
    data = bytearray(_legacy(mixed_messages(key, 4, 500)))
    data[20] ^= 0xFF
    path = tmp_path / "wal"
    path.write_bytes(data)
    with pytest.raises(WalCorrupt, match="byte offset 0"):
        Wal.open(path)
    assert path.read_bytes() == data


def test_failed_append_leaves_no_partial_record(tmp_path: Path) -> None:
    key = keys(1)[0]
    path = tmp_path / "wal"
    wal = Wal.open(path)
    wal.append(signed_vote(key, 1, 0, None))
    size = path.stat().st_size
    wal.close()  # the next write fails with EBADF, as a full disk would fail it
    with pytest.raises(WalError, match="cannot append"):
        wal.append(signed_vote(key, 1, 1, None))
    assert path.stat().st_size == size


WRITER = Path(__file__).with_name("wal_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def start_writer(path: Path, seed: int, *size_limit: str) -> subprocess.Popen[str]:
    """Start ``wal_writer.py`` on ``path``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(seed), *size_limit],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def record_digests(path: Path) -> tuple[list[str], int]:
    """The SM3 digests of every message in the log at ``path`` (heights 1, 2, … in order,
    as the writer appends them), and how many bytes opening it cut."""
    wal = Wal.open(path)
    digests: list[str] = []
    height = 1
    while messages := wal.messages_at(height):
        digests += [sm3(encode_message(m)).hex() for m in messages]
        height += 1
    wal.close()
    return digests, wal.stats.truncated_bytes


def test_sigkill_at_any_moment_loses_no_acknowledged_record(tmp_path: Path) -> None:
    # A real process appending records (many of them proposals of up to the largest block)
    # is SIGKILLed at a random moment, five times over; each life reopens what the last left.
    path = tmp_path / "wal"
    rng = random.Random(5)
    acknowledged: list[str] = []
    for life in range(5):
        writer = start_writer(path, life)
        assert writer.stdout is not None
        try:
            opened = writer.stdout.readline()
            assert opened.startswith("opened "), opened
            for _ in range(rng.randrange(1, 9)):
                line = writer.stdout.readline()
                assert line.startswith("appended "), line
                acknowledged.append(line.split()[1])
        finally:
            writer.kill()
            _, stderr = writer.communicate()
        assert writer.returncode == -9, stderr
        found, _ = record_digests(path)
        # Records written after the last line read are whole, and kept, too.
        assert found[: len(acknowledged)] == acknowledged
        acknowledged = found


def test_append_failing_halfway_leaves_no_partial_record(tmp_path: Path) -> None:
    # A file size limit makes the write that crosses it stop short (then EFBIG): the append
    # must fail and remove its partial record, so nothing is left to cut at the next open.
    path = tmp_path / "wal"
    writer = start_writer(path, 3, str(3_000_000))
    output, stderr = writer.communicate(timeout=120)
    assert writer.returncode == 3, stderr
    lines = output.splitlines()
    assert lines[-1] == "failed"
    acknowledged = [line.split()[1] for line in lines if line.startswith("appended ")]
    assert acknowledged
    assert record_digests(path) == (acknowledged, 0)


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
