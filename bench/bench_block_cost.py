"""CPU cost of a dev-chain block in process: admission, execution + certificate, the write.

Run by hand: ``.venv/bin/python bench/bench_block_cost.py [--blocks N] [--txs K] [--rounds R]
[--profile]``. A fresh ``lianxin init --dev`` chain in a temporary folder is opened as the
node opens it (:class:`node.ledger.Ledger`, a :class:`node.mempool.Mempool` over its store),
``Anchor`` is deployed, and then each block of ``K`` pre-signed ``Anchor.anchor(root)``
transactions goes through what the node does for it on its threads, timed by this thread's
CPU time (``time.thread_time``), so other work on the machine moves it little:

- admission: ``Mempool.check`` (decode, rules, SM2 verification, permission) and ``add``;
- execute: ``Ledger.tx_bytes_budget`` and ``Ledger.execute_ahead`` (py-evm, state root,
  receipts, header, certificate), as the producer calls them; of it, ``evm`` is
  :func:`chain.execution.execute_block` (the transactions, the system writes and the state
  root) and ``signing`` the certificate's SM2 signature (:func:`chain.commit.sign_precommit`),
  both as the ledger calls them;
- write: ``Ledger.flush`` (one LMDB write transaction, both flushes to disk);
- settle: ``Mempool.take`` before and ``Mempool.settle`` after.

``--txs 0`` makes empty blocks: what a block costs besides its transactions. Prints the
median CPU per block of each part (per round of ``N`` blocks) and, with
``--profile``, the top functions of a cProfile run over one more round. ``--root DIR`` runs
the node and chain code of another source tree (e.g. ``git worktree`` of an earlier commit),
so two versions can be compared by running the script once for each, interleaved.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=200, help="blocks per round")
    parser.add_argument("--txs", type=int, default=1, help="transactions per block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    parser.add_argument("--top", type=int, default=30, help="profile entries to print")
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree to import")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    sys.path.insert(0, str(args.root.resolve()))
    from eth_utils import function_signature_to_4byte_selector

    import node.ledger
    from chain.crypto.keystore import decrypt_keystore
    from chain.execution import contract_address
    from chain.primitives import Hash32
    from chain.types import Transaction
    from chain.validation import sign_transaction
    from contracts.artifacts import load_artifact
    from node.chain_dir import init_chain_dir
    from node.ledger import Ledger
    from node.mempool import Mempool, Outcome, Permissions
    from node.storage.mempool_store import MempoolStore

    with tempfile.TemporaryDirectory(prefix="lianxin-block-cost-") as scratch:
        folder = Path(scratch) / "chain"
        password = b"bench"
        result = init_chain_dir(
            folder, password=password, dev=True, timestamp_ms=1_700_000_000_000, iterations=1_000
        )
        genesis = result.genesis
        validator = decrypt_keystore(result.directory.validator_keystore.read_bytes(), password)
        admin = decrypt_keystore(result.directory.keystore("admin").read_bytes(), password)
        ledger = Ledger.open(folder / "data", genesis, validator)
        mempool = Mempool(
            ledger.rules,
            Permissions.at_head(ledger),
            capacity=100_000,
            nonce_committed=ledger.nonce_committed,
            next_height=lambda: ledger.head.height + 1,
            store=MempoolStore.open(folder / "data" / "mempool"),
        )
        clock = [genesis.timestamp_ms]

        def signed(to: Any, data: bytes, gas: int) -> bytes:
            unsigned = Transaction(
                chain_id=genesis.chain_id,
                nonce=Hash32(os.urandom(32)),
                block_limit=ledger.head.height + 900,
                to=to,
                value=0,
                data=data,
                gas_limit=gas,
                public_key=admin.public_key.to_bytes(),
            )
            return sign_transaction(unsigned, admin).encode()

        inner = {"evm": 0.0, "signing": 0.0}

        def timed(name: str, function: Any) -> Any:
            """``function``, adding its CPU time to ``inner[name]``."""

            def run(*args: Any, **kwargs: Any) -> Any:
                started = time.thread_time()
                try:
                    return function(*args, **kwargs)
                finally:
                    inner[name] += time.thread_time() - started

            return run

        # The names the ledger calls them by, so the same parts are timed in any --root tree.
        node.ledger.execute_block = timed("evm", node.ledger.execute_block)  # type: ignore[attr-defined]
        node.ledger.sign_precommit = timed("signing", node.ledger.sign_precommit)  # type: ignore[attr-defined]

        def block(raws: list[bytes], times: dict[str, float] | None) -> None:
            started = time.thread_time()
            for raw in raws:
                mempool.add(mempool.check(raw))
            admitted = time.thread_time()
            taken = mempool.take(len(raws))
            ledger.tx_bytes_budget()  # the producer fits the block in it
            clock[0] += 1_000
            inner_before = dict(inner)
            committed = ledger.execute_ahead(taken, clock[0])
            executed = time.thread_time()
            ledger.flush()
            written = time.thread_time()
            height = committed.block.header.height
            mempool.settle({tx.hash: Outcome(height) for tx in taken})
            settled = time.thread_time()
            if times is not None:
                times["admission"] += admitted - started
                times["execute"] += executed - admitted
                for name in inner:
                    times[name] += inner[name] - inner_before[name]
                times["write"] += written - executed
                times["settle"] += settled - written

        anchor = load_artifact("Anchor")
        deployer_nonce = ledger.account(ledger.head, admin.public_key.address).nonce
        block([signed(None, anchor.bytecode, 3_000_000)], None)
        address = contract_address(admin.public_key.address, deployer_nonce)
        selector = function_signature_to_4byte_selector("anchor(bytes32)")

        def round_of(profile: cProfile.Profile | None = None) -> dict[str, float]:
            batches = [
                [signed(address, selector + os.urandom(32), 100_000) for _ in range(args.txs)]
                for _ in range(args.blocks)
            ]
            times = dict.fromkeys(
                ("admission", "execute", "evm", "signing", "write", "settle"), 0.0
            )
            if profile is not None:
                profile.enable()
            for raws in batches:
                block(raws, times)
            if profile is not None:
                profile.disable()
            return {name: value / args.blocks * 1000 for name, value in times.items()}

        round_of()  # warm-up
        rounds = [round_of() for _ in range(args.rounds)]
        last = ledger.block_and_receipts(ledger.head.height)
        assert last is not None and all(r.status == 1 for r in last[1]), "anchor() failed"
        print(
            f"source {args.root}, {args.blocks} blocks of {args.txs} tx, {args.rounds} rounds, "
            f"load {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
        parts = ("admission", "execute", "write", "settle")  # evm and signing are in execute
        total = [sum(r[name] for name in parts) for r in rounds]
        for name in rounds[0]:
            values = [r[name] for r in rounds]
            label = name if name in parts else f"- {name}"
            print(
                f"  {label:>9}: {statistics.median(values):7.3f} ms/block  "
                f"({' '.join(f'{v:.3f}' for v in values)})"
            )
        print(
            f"  {'total':>9}: {statistics.median(total):7.3f} ms/block  "
            f"({' '.join(f'{v:.3f}' for v in total)})"
        )
        if args.profile:
            profile = cProfile.Profile(time.thread_time)
            round_of(profile)
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue())
        mempool.close()
        ledger.close()


if __name__ == "__main__":
    main()
