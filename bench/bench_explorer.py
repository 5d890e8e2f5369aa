"""Benchmark the explorer: indexer catch-up against the chain's block rate, page and search
latency on a large index, and the memory of the indexer and the server.

Run by hand: ``.venv/bin/python bench/bench_explorer.py [--blocks N] [--transactions M]
[--requests R]``.

One run starts a lianxin dev node (``lianxin init --dev``) as a real process, deploys the
trust contracts and runs a domain scenario (a department, batches, a license lifecycle,
permission changes: tests/explorer/chain_activity.py); bootstraps a real registry process
on the same chain and runs its credit and archive activity (a penalty published, corrected
and its publication stopped, a withdrawal left unsigned; an archive package ingested,
migrated, audited and disposed of, every event anchored: tests/explorer/registry_activity.py),
then:

- block rate: N transactions sent one after another, each waited for (a dev node makes a
  block when transactions arrive, so this is its block rate under a steady stream); blocks
  per second;
- catch-up: a real indexer process (``python -m explorer index``) indexes that chain from
  nothing; blocks per second, the ratio to the block rate, and its peak RSS;
- a large index: the real chain's index, then M transactions written straight into the
  explorer's tables. **They are not M transactions executed by a node** (at this machine's
  block rate that takes hours): they are the real signed transactions, receipts and decoded
  events of the chain, replicated in 100-transaction blocks above its head, each copy under
  a unique hash and with unique batch, leaf and license subjects, so every index is as large
  as on a real chain of that size. A dev chain has no ValidatorGovernance contract, so its
  proposals are **written rows** too: one proposal every PROPOSAL_EVERY replicated blocks
  (Proposed, Voted, Executed, the subjects the indexer derives from them, and the validator
  set change it makes), on a replicated transaction;
- the registry's database: as many more credit records and archive packages as the large
  index has anchored batches, copies of the scene's under unique 决定书文号 and 档号
  (**written rows**, no events of their own), so that its lookups behind the credit and
  archive pages and searches run among that many rows;
- pages: a real server process (``python -m explorer serve``, the registry named with the
  explorer's own client key) on that index; R sequential requests per page type (PAGES:
  every route the explorer serves as a page; the credit and archive histories are the
  scene's real ones, each event proven against the large index) and per search kind; p50
  and p95, and the server's peak RSS.

Prints a table and writes ``bench/results/explorer.json``. The machine has 2 cores shared
with other work: figures are noisy; the JSON keeps every number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests" / "explorer"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import httpx  # noqa: E402
from chain_activity import LICENSE_ID, free_port, make_activity, start_dev_chain  # noqa: E402
from registry_activity import ARCHIVAL_CODE, AUTHORITY_USCC, DECISION, make_scene  # noqa: E402
from sqlalchemy import func, insert, select, update  # noqa: E402

from chain.crypto import sm3  # noqa: E402
from contracts.permissions import PERMISSIONS_ADDRESS, grant_call  # noqa: E402
from contracts.validators import VALIDATOR_GOVERNANCE_ADDRESS  # noqa: E402
from explorer import store_schema as t  # noqa: E402
from explorer.decoding import Decoded, event_subjects  # noqa: E402
from explorer.store import Store  # noqa: E402
from sdk.account import Sm2Account  # noqa: E402
from sdk.chain_reader import ChainReader  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "explorer.json"
TXS_PER_BLOCK = 100
PROPOSAL_EVERY = 1_000
"""Replicated blocks per ValidatorGovernance proposal written into the large index (fewer
on a small index, which gets four)."""
DEPARTMENT_USCC = "111000000000133390"
"""The scenario's department: not the registry's test department (11100000000013338W),
which the registry's own bootstrap registers on the same chain."""
DEPARTMENT_NAME = "区市场监督管理局"
AUTHORITIES = 200
"""Deciding authorities the replicated credit records are spread over."""

PAGES = {
    "/": "overview",
    "/blocks": "blocks",
    "/block/{ref}": "block",
    "/tx/{tx_hash}": "transaction",
    "/address/{address}": "account",
    "/validators": "validators",
    "/departments": "departments",
    "/department/{uscc}": "department",
    "/permissions": "permissions",
    "/record/{ref}": "record",
    "/license/{ref}": "license",
    "/credit": "credit",
    "/archive": "archive",
    "/proposal/{ref}": "proposal",
    "/verify": "verify",
}
"""Every route the explorer serves as a page (GET, HTML) -> its row in the bench."""
NOT_PAGES = {
    "/healthz": "liveness answer, JSON",
    "/lang/{code}": "sets the language cookie and redirects",
    "/login": "the sign-in form (reads nothing from the index)",
    "/auth/enter": "sign-in redirect",
    "/search": "measured per search kind",
    "/tx/{tx_hash}/proof": "JSON proof fetched from the node (replicated rows are not on it)",
    "/evidence/{kind}/{ref}": "zip download built from the node's proofs, not a page",
    "/evidence/credit": "zip download built from the node's proofs, not a page",
    "/evidence/archive": "zip download built from the node's proofs, not a page",
    "/verify/{job_id}": "a re-verification job against the node (replicated rows are not on it)",
    "/verify/{job_id}.json": "a re-verification job's state, JSON",
}
"""GET routes that are not pages in this bench's sense, and why."""
GOALS = {"page_p95_ms": 300.0, "search_p95_ms": 100.0, "catch_up_ratio": 5.0}


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def block_rate(chain: Any, count: int) -> dict[str, float]:
    """Blocks per second while ``count`` transactions are sent one after another."""
    admin = Sm2Account.from_keystore(chain.keystore("admin"), chain.password)
    other = bytes.fromhex(chain.accounts["dept-b"].removeprefix("0x"))
    with ChainReader(chain.url) as reader:
        first = reader.block_number()
        started = time.perf_counter()
        for index in range(count):
            receipt = reader.transact(
                admin,
                to=PERMISSIONS_ADDRESS,
                data=grant_call(other, 1 + (index % 2) * 8),
                gas_limit=200_000,
            )
            assert receipt.status == 1
        seconds = time.perf_counter() - started
        blocks = reader.block_number() - first
    return {"blocks": blocks, "seconds": seconds, "blocks_per_s": blocks / seconds}


def catch_up(chain: Any, folder: Path) -> dict[str, float]:
    """A real indexer process indexing the chain from nothing."""
    url = f"sqlite:///{folder / 'catchup.db'}"
    head = int(
        httpx.post(chain.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).json()[
            "result"
        ],
        16,
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "explorer",
            "index",
            "--dir",
            str(chain.root),
            "--database-url",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = Store.open(url)
    started = None
    try:
        while True:
            cursor = store.cursor()
            if cursor is not None and started is None:
                started = (time.perf_counter(), cursor.height)
            if cursor is not None and cursor.height >= head:
                break
            assert process.poll() is None, "the indexer exited"
            time.sleep(0.005)
        assert started is not None
        seconds = time.perf_counter() - started[0]
        rss = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(60)
        store.close()
    blocks = head - started[1]
    return {
        "blocks": blocks,
        "seconds": seconds,
        "blocks_per_s": blocks / seconds,
        "indexer_peak_rss_mb": rss,
    }


def build_large_index(source_url: str, target_url: str, transactions: int) -> dict[str, Any]:
    """The indexed chain, then its rows replicated to ``transactions`` more transactions and
    ValidatorGovernance proposals written among them (see the module docstring); returns
    what it wrote and how long it took."""
    source = Store.open(source_url)
    with source.read() as c:
        txs = [
            dict(r._mapping)
            for r in c.execute(select(t.transactions).where(t.transactions.c.contract.is_not(None)))
        ]
        events: dict[str, list[dict[str, Any]]] = {}
        for row in c.execute(select(t.events)):
            events.setdefault(row.tx_hash, []).append(dict(row._mapping))
        subjects: dict[int, list[dict[str, Any]]] = {}
        for row in c.execute(select(t.event_subjects)):
            subjects.setdefault(row.event_id, []).append(dict(row._mapping))
        template_block = dict(
            c.execute(select(t.blocks).where(t.blocks.c.height == 6)).one()._mapping
        )
        signer_rows = [
            dict(r._mapping) for r in c.execute(select(t.signers).where(t.signers.c.height == 6))
        ]
        genesis_member = dict(
            c.execute(select(t.validator_changes).order_by(t.validator_changes.c.id).limit(1))
            .one()
            ._mapping
        )
        real_head = int(c.execute(select(func.max(t.blocks.c.height))).scalar() or 0)
        event_id = int(c.execute(select(func.max(t.events.c.id))).scalar() or 0)
    source.close()
    # The real chain's index, every table, is the large index's first heights.
    target_path = target_url.removeprefix("sqlite:///")
    with (
        sqlite3.connect(source_url.removeprefix("sqlite:///")) as src,
        sqlite3.connect(target_path) as dst,
    ):
        src.backup(dst)
    target = Store.open(target_url)
    started = time.perf_counter()
    blocks_count = transactions // TXS_PER_BLOCK
    first_height = real_head + 1
    every = max(1, min(PROPOSAL_EVERY, blocks_count // 4))
    anchored = proposals = 0
    last_hash = ""
    for first in range(0, blocks_count, 100):
        block_rows, tx_rows, event_rows, subject_rows, signers = [], [], [], [], []
        changes: list[dict[str, Any]] = []
        for offset in range(first, min(first + 100, blocks_count)):
            height = first_height + offset
            block_hash = "0x" + sm3(b"block" + height.to_bytes(8, "big")).hex()
            last_hash = block_hash
            block_rows.append(
                {
                    **template_block,
                    "height": height,
                    "hash": block_hash,
                    "tx_count": TXS_PER_BLOCK,
                    "timestamp_ms": 1_700_000_000_000 + height * 1000,
                }
            )
            signers += [{**s, "height": height} for s in signer_rows]
            for position in range(TXS_PER_BLOCK):
                number = offset * TXS_PER_BLOCK + position
                original = txs[number % len(txs)]
                tx_hash = "0x" + sm3(original["hash"].encode() + number.to_bytes(8, "big")).hex()
                tx_rows.append(
                    {**original, "hash": tx_hash, "height": height, "position": position}
                )
                copies = [
                    (event, subjects.get(event["id"], []))
                    for event in events.get(original["hash"], [])
                ]
                if position == 0 and offset % every == every - 1:
                    proposals += 1
                    copies += _proposal_events(proposals, height, genesis_member)
                    changes.append(
                        {
                            **{k: v for k, v in genesis_member.items() if k != "id"},
                            "effective_height": height + 2,
                            "executed_height": height,
                            "proposal_id": proposals,
                        }
                    )
                for log_index, (event, about) in enumerate(copies):
                    event_id += 1
                    anchored += event["name"] == "BatchAnchored"
                    event_rows.append(
                        {
                            **{k: v for k, v in event.items() if k != "id"},
                            "id": event_id,
                            "height": height,
                            "tx_hash": tx_hash,
                            "log_index": log_index,
                        }
                    )
                    for subject in about:
                        key = subject["subject"]
                        if subject["kind"] in ("batch", "leaf", "license"):
                            key = "0x" + sm3(key.encode() + number.to_bytes(8, "big")).hex()
                        subject_rows.append(
                            {
                                "event_id": event_id,
                                "kind": subject["kind"],
                                "subject": key,
                                "height": height,
                            }
                        )
        with target.engine.begin() as c:
            c.execute(insert(t.blocks), block_rows)
            c.execute(insert(t.transactions), tx_rows)
            if event_rows:
                c.execute(insert(t.events), event_rows)
            if subject_rows:
                c.execute(insert(t.event_subjects), subject_rows)
            if changes:
                c.execute(insert(t.validator_changes), changes)
            c.execute(insert(t.signers), signers)
    with target.engine.begin() as c:
        c.execute(
            update(t.cursor).values(height=first_height + blocks_count - 1, block_hash=last_hash)
        )
    seconds = time.perf_counter() - started
    with target.read() as c:
        sample_tx = c.execute(
            select(t.transactions.c.hash).where(
                t.transactions.c.height == first_height + blocks_count // 2
            )
        ).scalar()
        # A third of the way through each kind's subjects: an offset past their number
        # (events // 3 is, for batches) would sample nothing.
        sample_record, sample_license = (
            c.execute(
                select(t.event_subjects.c.subject)
                .where(t.event_subjects.c.kind == kind)
                .limit(1)
                .offset(_subject_count(c, kind) // 3)
            ).scalar()
            for kind in ("batch", "license")
        )
        plans = {
            name: [
                str(row[-1])
                for row in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (sample_record,))
            ]
            for name, sql in SEARCH_QUERIES.items()
        }
        sample_account = c.execute(select(t.transactions.c.sender).limit(1)).scalar()
    target.close()
    assert sample_record is not None and sample_license is not None, "nothing to sample"
    assert proposals > 0, "too few blocks for a proposal"
    return {
        "real_blocks": real_head + 1,
        "blocks": blocks_count,
        "transactions": blocks_count * TXS_PER_BLOCK,
        "events": event_id,
        "anchored_batches": anchored,
        "proposals": proposals,
        "seconds": seconds,
        "search_plans": plans,
        "samples": {
            "tx": sample_tx,
            "record": sample_record,
            "license": sample_license,
            "account": sample_account,
            "height": first_height + blocks_count // 2,
            "proposal": (proposals + 1) // 2,
        },
    }


def _proposal_events(
    proposal: int, height: int, member: dict[str, Any]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """A ValidatorGovernance proposal's Proposed, Voted and Executed events (the genesis
    validator's power set again, voted by itself, effective two blocks on) with the
    subjects the indexer derives from them."""
    validator = str(member["address"])
    power = int(member["power"])
    lifecycle = (
        ("Proposed", {"id": proposal, "validator": validator, "power": power, "by": validator}),
        ("Voted", {"id": proposal, "by": validator, "votedPower": power, "totalPower": power}),
        (
            "Executed",
            {"id": proposal, "validator": validator, "power": power, "effectiveHeight": height + 2},
        ),
    )
    found = []
    for name, args in lifecycle:
        decoded = Decoded("ValidatorGovernance", name, args)
        event = {
            "id": None,
            "contract": "ValidatorGovernance",
            "address": "0x" + bytes(VALIDATOR_GOVERNANCE_ADDRESS).hex(),
            "name": name,
            "args": json.dumps(args, ensure_ascii=False),
        }
        found.append((event, [{"kind": k, "subject": v} for k, v in event_subjects(decoded)]))
    return found


REGISTRY_QUERIES = {
    "decision number": "SELECT id FROM credit_records WHERE decision_number = ? "
    "ORDER BY authority_uscc, kind LIMIT 50",
    "decision number of an authority": "SELECT id FROM credit_records WHERE "
    f"decision_number = ? AND authority_uscc = '{AUTHORITY_USCC}' "
    "ORDER BY authority_uscc, kind LIMIT 50",
    "archival code": "SELECT package_id FROM archive_packages WHERE archival_code = ? "
    "ORDER BY package_id, version",
}
"""The registry's lookups behind the credit and archive pages and searches
(registry/routers/audit_trails.py), whose SQLite plans the run records."""


def replicate_registry_rows(database: Path, count: int) -> dict[str, Any]:
    """``count`` more credit records (spread over AUTHORITIES authorities) and ``count``
    more archive packages, copies of the scene's under unique keys, written straight into
    the registry's database so that its lookups by 决定书文号 and by 档号 search as many
    rows as the large index has anchored batches (at least one leaf each)."""
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db:
        db.row_factory = sqlite3.Row
        record = dict(db.execute("SELECT * FROM credit_records LIMIT 1").fetchone())
        package = dict(
            db.execute("SELECT * FROM archive_packages ORDER BY version LIMIT 1").fetchone()
        )
        for first in range(0, count, 10_000):
            records, packages = [], []
            for number in range(first, min(first + 10_000, count)):
                authority = "1" + f"{number % AUTHORITIES:04d}".rjust(17, "0")
                if number % AUTHORITIES == 0:
                    authority = AUTHORITY_USCC
                records.append(
                    {
                        **record,
                        "id": sm3(b"credit record" + number.to_bytes(8, "big")).hex(),
                        "authority_uscc": authority,
                        "decision_number": f"榕市监罚〔{2000 + number % 25}〕{100_000 + number}号",
                    }
                )
                packages.append(
                    {
                        **package,
                        "package_id": f"{number:032x}",
                        "archival_code": f"J001-WS·{2000 + number % 25}-D10-BGS-{number:07d}",
                    }
                )
            for table, rows in (("credit_records", records), ("archive_packages", packages)):
                names = list(rows[0])
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(names)}) "
                    f"VALUES ({', '.join(':' + n for n in names)})",
                    rows,
                )
            db.commit()
        plans = {
            name: [
                str(row[-1])
                for row in db.execute(
                    f"EXPLAIN QUERY PLAN {sql}",
                    (ARCHIVAL_CODE if name == "archival code" else DECISION,),
                )
            ]
            for name, sql in REGISTRY_QUERIES.items()
        }
        totals = {
            table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("credit_records", "archive_packages")
        }
    return {"rows": totals, "seconds": time.perf_counter() - started, "plans": plans}


SEARCH_QUERIES = {
    "transaction hash": "SELECT hash FROM transactions WHERE hash = ?",
    "block hash": "SELECT height FROM blocks WHERE hash = ?",
    "batch root": "SELECT event_id FROM event_subjects WHERE kind = 'batch' AND subject = ? "
    "LIMIT 1",
}
"""The index probes inside a hash search's one statement (explorer.queries.hash_kinds), whose
SQLite plans the run records: each must be a SEARCH using an index, never a SCAN."""


def _subject_count(c: Any, kind: str) -> int:
    return int(
        c.execute(
            select(func.count())
            .select_from(t.event_subjects)
            .where(t.event_subjects.c.kind == kind)
        ).scalar()
        or 0
    )


def timed(client: httpx.Client, url: str, requests: int, expect: int) -> dict[str, float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == expect, (url, answer.status_code)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1]}


def pages(
    chain: Any, scene: Any, index_url: str, samples: dict[str, Any], requests: int, folder: Path
) -> dict[str, Any]:
    port = free_port()
    admin_key = Sm2Account.from_keystore(chain.keystore("admin"), chain.password)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "explorer",
            "serve",
            "--dir",
            str(chain.root),
            "--port",
            str(port),
            "--database-url",
            index_url,
            "--auditor-key",
            admin_key.public_key_bytes.hex(),
            "--registry-url",
            scene.registry_url,
            "--registry-client-id",
            scene.auditor_client_id,
            "--registry-key-file",
            str(scene.auditor_key_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "server.log", "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(base + "/healthz")
                break
            time.sleep(0.2)
        client = httpx.Client(base_url=base, timeout=60)
        challenge = client.post("/auth/challenge").json()
        client.post(
            "/auth/login",
            data={
                "nonce": challenge["nonce"],
                "public_key": admin_key.public_key_bytes.hex(),
                "signature": admin_key.private_key.sign(challenge["text"].encode()).hex(),
            },
        ).raise_for_status()
        results: dict[str, Any] = {"pages": {}, "search": {}, "proven": {}}
        for name, url in page_urls(chain, samples).items():
            first = client.get(url)
            assert first.status_code == 200, (url, first.status_code)
            if name in ("credit", "archive"):
                # Every event the scene anchored is proven against the large index.
                results["proven"][name] = first.text.count('data-verdict="proven"')
                assert results["proven"][name] > 0, name
            results["pages"][name] = timed(client, url, requests, 200)
        client.follow_redirects = False
        for name, query in search_texts(samples).items():
            results["search"][name] = timed(
                client, f"/search?{httpx.QueryParams({'q': query})}", requests, 303
            )
        results["server_peak_rss_mb"] = peak_rss_mb(process.pid)
        return results
    finally:
        process.terminate()
        process.wait(60)


def page_urls(chain: Any, samples: dict[str, Any]) -> dict[str, str]:
    """Bench page name -> the URL requested (a route of PAGES each)."""
    return {
        "overview": "/",
        "blocks": "/blocks",
        "block": f"/block/{samples['height']}",
        "transaction": f"/tx/{samples['tx']}",
        "department": f"/department/{DEPARTMENT_USCC}",
        "departments": "/departments",
        "account": f"/address/{chain.accounts['dept-b'].lower()}",
        "validators": "/validators",
        "permissions": "/permissions",
        "record": f"/record/{samples['record']}",
        "license": f"/license/{samples['license']}",
        "credit": "/credit?"
        + str(httpx.QueryParams({"decision": DECISION, "authority": AUTHORITY_USCC})),
        "archive": "/archive?" + str(httpx.QueryParams({"code": ARCHIVAL_CODE})),
        "proposal": f"/proposal/{samples['proposal']}",
        "verify": "/verify",
    }


def search_texts(samples: dict[str, Any]) -> dict[str, str]:
    """Search kind -> the text typed into the search box."""
    return {
        "height": str(samples["height"]),
        "tx hash": samples["tx"],
        "USCC": DEPARTMENT_USCC,
        "license id": LICENSE_ID,
        "record root": samples["record"],
        "decision number": DECISION,
        "archival code": ARCHIVAL_CODE,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--blocks", type=int, default=100, help="transactions sent one by one for the block rate"
    )
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-explorer-"))
    chain = start_dev_chain(folder / "chain")
    try:
        make_activity(chain, DEPARTMENT_USCC, DEPARTMENT_NAME)
        scene = make_scene(chain, folder / "registry")
        rate = block_rate(chain, args.blocks)
        indexed = catch_up(chain, folder)
        large = build_large_index(
            f"sqlite:///{folder / 'catchup.db'}",
            f"sqlite:///{folder / 'large.db'}",
            args.transactions,
        )
        registry_rows = replicate_registry_rows(
            folder / "registry" / "registry" / "registry.db", large["anchored_batches"]
        )
        served = pages(
            chain,
            scene,
            f"sqlite:///{folder / 'large.db'}",
            large["samples"],
            args.requests,
            folder,
        )
    finally:
        chain.kill_leftovers()
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load": os.getloadavg(),
        },
        "block_rate": rate,
        "catch_up": indexed,
        "catch_up_ratio": indexed["blocks_per_s"] / rate["blocks_per_s"],
        "large_index": {k: v for k, v in large.items() if k != "samples"},
        "registry_rows": registry_rows,
        "served": served,
        "goals": GOALS,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"chain block rate       {rate['blocks_per_s']:8.1f} blocks/s ({rate['blocks']} blocks)")
    print(
        f"indexer catch-up       {indexed['blocks_per_s']:8.1f} blocks/s  "
        f"ratio {report['catch_up_ratio']:.1f}x (goal >= 5x)"
    )
    print(f"indexer peak RSS       {indexed['indexer_peak_rss_mb']:8.1f} MiB")
    print(
        f"large index            {large['real_blocks']:,} real blocks, then "
        f"{large['transactions']:,} replicated transactions, {large['events']:,} events, "
        f"{large['proposals']} written proposals, built in {large['seconds']:.0f} s"
    )
    print(
        f"registry               {registry_rows['rows']['credit_records']:,} credit records, "
        f"{registry_rows['rows']['archive_packages']:,} archive package versions "
        f"(written in {registry_rows['seconds']:.0f} s)"
    )
    print(f"{'page':<14}{'p50 ms':>10}{'p95 ms':>10}")
    for name, figures in served["pages"].items():
        print(f"{name:<14}{figures['p50_ms']:10.1f}{figures['p95_ms']:10.1f}")
    print(f"{'search':<14}{'p50 ms':>10}{'p95 ms':>10}")
    for name, figures in served["search"].items():
        print(f"{name:<14}{figures['p50_ms']:10.1f}{figures['p95_ms']:10.1f}")
    print(f"server peak RSS        {served['server_peak_rss_mb']:8.1f} MiB")
    for name, plan in large["search_plans"].items():
        print(f"plan of {name:<18} {'; '.join(plan)}")
    for name, plan in registry_rows["plans"].items():
        print(f"registry plan of {name:<32} {'; '.join(plan)}")
    print(f"events proven          {served['proven']}")
    print(f"load average           {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"results: {RESULTS}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
