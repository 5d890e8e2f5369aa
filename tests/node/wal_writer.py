"""The child process of the WAL kill tests: appends this validator's messages forever.

    python tests/node/wal_writer.py <wal path> <seed> [<file size limit in bytes>]

It opens the log (printing ``opened <records> <truncated bytes>``), then appends votes and
proposals of varied sizes (some of the largest a proposal may carry) at heights after the
highest one in the log, and prints ``appended <SM3 of the record's message, hex>`` after each
append has returned, i.e. after the fsync: what the driver would now send. With a file size
limit, the append that crosses it fails halfway (``EFBIG`` after a short write); the child
prints ``failed`` and exits 3.
"""

from __future__ import annotations

import random
import resource
import signal
import sys
from pathlib import Path

from chain.consensus import Message, Proposal, Vote, VoteType, encode_message
from chain.crypto import PrivateKey, sm3
from chain.limits import MAX_PROPOSAL_BLOCK_BYTES
from chain.primitives import Hash32
from node.wal import Wal, WalError

CHAIN_ID = 7
KEY = PrivateKey.from_bytes(sm3(b"wal-writer"))


def messages_from(height: int, rng: random.Random) -> list[Message]:
    """One height's messages: a proposal (often large) and votes of two rounds."""
    size = rng.choice([0, 1_000, 300_000, 1_500_000, MAX_PROPOSAL_BLOCK_BYTES])
    block = rng.randbytes(size)
    block_hash = Hash32(sm3(block))
    unsigned: list[Message] = [
        Vote(VoteType.PREVOTE, height, 0, None, KEY.public_key.address),
        Proposal(height, 1, block_hash, block, -1, KEY.public_key.address),
        Vote(VoteType.PREVOTE, height, 1, block_hash, KEY.public_key.address),
        Vote(VoteType.PRECOMMIT, height, 1, block_hash, KEY.public_key.address),
    ]
    return [m.with_signature(KEY.sign(m.sign_bytes(CHAIN_ID))) for m in unsigned]


def main() -> int:
    path, seed = Path(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
    rng = random.Random(seed)
    wal = Wal.open(path)
    print(f"opened {wal.stats.records} {wal.stats.truncated_bytes}", flush=True)
    height = 1
    while wal.messages_at(height):
        height += 1
    while True:
        for message in messages_from(height, rng):
            try:
                wal.append(message)
            except WalError:
                print("failed", flush=True)
                return 3
            print(f"appended {sm3(encode_message(message)).hex()}", flush=True)
        height += 1


if __name__ == "__main__":
    sys.exit(main())
