"""The block store keeps the certificate it last committed with a block in memory: the
producer asks for its tip's certificate twice per block. What it answers is always what a
read from disk would answer: after a group commit, a certificate stored late, and a rewind."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from test_lmdb_store import MAP_SIZE, build_chain

from node.storage import LmdbBlockStore


def test_the_head_certificate_is_answered_from_memory_and_stays_right(tmp_path: Path) -> None:
    commits = build_chain(random.Random(21), 6)
    with LmdbBlockStore.open(tmp_path / "store", map_size=MAP_SIZE) as store:
        store.commit_blocks(commits[:3])
        head_certificate = commits[2].certificate
        assert head_certificate is not None
        # The very object committed: nothing was read back or decoded.
        assert store.commit_certificate(2) is head_certificate
        assert store.commit_certificate(1) == commits[1].certificate
        assert store.commit_certificate(1) is not commits[1].certificate

        # A block committed without a certificate, which arrives later.
        store.commit_block(dataclasses.replace(commits[3], certificate=None))
        assert store.commit_certificate(3) is None
        late = commits[3].certificate
        assert late is not None
        store.put_commit_certificate(3, late)
        assert store.commit_certificate(3) == late

        store.commit_blocks(commits[4:])
        assert store.commit_certificate(5) is commits[5].certificate

        # A rewind to height 4: the certificate of the new head is the stored one, and the
        # discarded height has none.
        store.rewind_to(4)
        assert store.commit_certificate(4) == commits[4].certificate
        assert store.commit_certificate(5) is None

    with LmdbBlockStore.open(tmp_path / "store", map_size=MAP_SIZE) as reopened:
        assert reopened.commit_certificate(3) == late
        assert reopened.commit_certificate(4) == commits[4].certificate
