"""``python -m explorer``: ``run`` (indexer and pages, what ``lianxin explorer`` starts),
``index`` (the indexer alone) and ``serve`` (the pages alone) on a chain directory."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from explorer.settings import ExplorerSettings, settings_for_chain_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lianxin explorer", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "index", "serve", "verify-evidence", "sign-challenge"],
    )
    parser.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="evidence zip (verify-evidence), or keystore (sign-challenge)",
    )
    parser.add_argument("--dir", type=Path, default=Path("devchain"), help="chain directory")
    parser.add_argument("--database-url", default=None, help="index database (SQLAlchemy URL)")
    parser.add_argument("--node-url", default=None, help="the node's JSON-RPC URL")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument(
        "--public-subset", action="store_true", help="overview, blocks and validators without login"
    )
    parser.add_argument(
        "--auditor-key", action="append", default=[], help="auditor public key (04… hex)"
    )
    parser.add_argument(
        "--auditor-key-file",
        action="append",
        default=[],
        type=Path,
        help="auditor public key (PEM)",
    )
    parser.add_argument(
        "--registry-url", default=None, help="the registry read for credit and archives"
    )
    parser.add_argument("--registry-client-id", default=None, help="the explorer's client id there")
    parser.add_argument(
        "--registry-key-file", default=None, type=Path, help="that client's SM2 key (PEM)"
    )
    return parser  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> ExplorerSettings:
    """Settings of the chain in ``--dir`` with the command line's overrides."""
    overrides: dict[str, object] = {}
    for name in (
        "database_url",
        "node_url",
        "host",
        "port",
        "registry_url",
        "registry_client_id",
        "registry_key_file",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.public_subset:
        overrides["public_subset"] = True
    base = ExplorerSettings()
    overrides["auditor_keys"] = [*base.auditor_keys, *args.auditor_key]
    overrides["auditor_key_files"] = [*base.auditor_key_files, *args.auditor_key_file]
    return settings_for_chain_dir(args.dir, **overrides)


def run_indexer(settings: ExplorerSettings, stop: threading.Event) -> None:
    """Follow the node until ``stop`` is set."""
    from explorer.indexer import Indexer
    from explorer.node_feed import NodeFeed
    from explorer.store import Store

    store = Store.open(settings.index_url())
    feed = NodeFeed(settings.node_url)
    try:
        indexer = Indexer(store, feed, settings.genesis(), batch_blocks=settings.batch_blocks)
        indexer.follow(should_stop=stop.is_set)
    finally:
        feed.close()
        store.close()


def verify_evidence_command(args: argparse.Namespace) -> int:
    """Verify an evidence zip offline; the chain's genesis validator set is trusted when the
    chain directory has a genesis file and the chain never changed its set. Prints a JSON
    verdict; exit 0 valid, 1 invalid, 2 usage."""
    import json

    from chain.genesis import parse_genesis
    from explorer.trail_evidence import verify_trail_leaves
    from sdk.evidence import EvidenceInvalid, read_evidence_zip, verify_evidence_zip

    if args.file is None:
        print("usage: lianxin verify-evidence FILE [--dir DIR]", file=sys.stderr)
        return 2
    genesis_file = args.dir / "genesis.toml"
    trusted = None
    if genesis_file.exists():
        trusted = parse_genesis(genesis_file.read_text(encoding="utf-8")).validator_set()
    try:
        data = args.file.read_bytes()
        try:
            report = verify_evidence_zip(data, trusted=trusted)
        except EvidenceInvalid as exc:
            if trusted is None or "verifier trusts" not in exc.reason:
                raise
            # The set changed since genesis: each height's set is the one its header names.
            report = verify_evidence_zip(data, trusted=None)
        leaves = verify_trail_leaves(read_evidence_zip(data)[0])
    except OSError as exc:
        print(json.dumps({"ok": False, "reason": str(exc)}, ensure_ascii=False))
        return 2
    except EvidenceInvalid as exc:
        print(json.dumps({"ok": False, "reason": exc.reason}, ensure_ascii=False))
        return 1
    print(
        json.dumps(
            {
                "ok": True,
                "chain_id": report.chain_id,
                "subject": dict(report.subject),
                "transactions": report.transactions,
                "heights": list(report.heights),
                "leaves": leaves,
                "validator_set": "genesis" if report.trusted_set else "as committed by the headers",
            },
            ensure_ascii=False,
        )
    )
    return 0


def sign_challenge_command(args: argparse.Namespace) -> int:
    """Sign a login challenge (read from stdin) with an SM2 keystore (FILE; its password
    from the chain directory's password file): prints the public key and the signature to
    paste into the login page."""
    from sdk.account import Sm2Account

    if args.file is None:
        print(
            "usage: lianxin explorer sign-challenge KEYSTORE [--dir DIR] < challenge",
            file=sys.stderr,
        )
        return 2
    password = (args.dir / "keystore-password").read_bytes().strip()
    account = Sm2Account.from_keystore(args.file.read_bytes(), password)
    challenge = sys.stdin.read().strip()
    print("public key:", account.public_key_bytes.hex())
    print("signature: ", account.private_key.sign(challenge.encode()).hex())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "verify-evidence":
        return verify_evidence_command(args)
    if args.command == "sign-challenge":
        return sign_challenge_command(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = settings_from_args(args)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if args.command == "index":
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        run_indexer(settings, stop)
        return 0
    from explorer.server import serve

    if args.command == "serve":
        return serve(settings)
    indexer = threading.Thread(target=run_indexer, args=(settings, stop), daemon=True)
    indexer.start()
    try:
        return serve(settings)
    finally:
        stop.set()
        indexer.join(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
