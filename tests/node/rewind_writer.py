"""The child process of the rewind crash test: it brings the store in ``<dir>`` up to
``<height>`` with synthetic blocks (see ``crash_writer.py``), then rewinds it ``<depth>``
blocks in one call and waits to be killed::

    python tests/node/rewind_writer.py <dir> <seed> <height> <depth>

It prints ``ready <head>`` once the store is at ``<height>``, ``rewinding <from> <to>`` just
before the rewind and ``rewound <to>`` once it returned, so that the parent can time its
SIGKILL against the one write transaction.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from pathlib import Path

from node.storage import LmdbBlockStore

TX_COUNT = 20
"""Transactions (each with one log) per synthetic block: a rewind has much to delete."""


def _crash_writer() -> object:
    path = Path(__file__).with_name("crash_writer.py")
    spec = importlib.util.spec_from_file_location("crash_writer_for_rewind_child", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    """Entry point: ``rewind_writer.py <dir> <seed> <height> <depth>``."""
    path, seed, height, depth = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    cw = _crash_writer()
    rng = random.Random(seed)
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:  # type: ignore[attr-defined]
        head = store.head()
        certificate = None if head is None else store.commit_certificate(head.height)
        while head is None or head.height < height:
            commit = cw.synthetic_commit(rng, head, certificate, tx_count=TX_COUNT)  # type: ignore[attr-defined]
            store.commit_block(commit)
            head, certificate = commit.block.header, commit.certificate
        print(f"ready {head.height}", flush=True)
        target = head.height - depth
        print(f"rewinding {head.height} {target}", flush=True)
        store.rewind_to(target)
        print(f"rewound {target}", flush=True)
        while True:
            time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
