"""Benchmark the explorer: indexer catch-up against the chain's block rate, page and search
latency on a large index, and the memory of the indexer and the server.

Run by hand: ``.venv/bin/python bench/bench_explorer.py [--blocks N] [--transactions M]
[--requests R]``.

One run starts a lianxin dev node (``lianxin init --dev``) as a real process, deploys the
trust contracts and runs a domain scenario (departments, batches, a license lifecycle,
permission changes: tests/explorer/chain_activity.py), then:

- block rate: N transactions sent one after another, each waited for (a dev node makes a
  block when transactions arrive, so this is its block rate under a steady stream); blocks
  per second;
- catch-up: a real indexer process (``python -m explorer index``) indexes that chain from
  nothing; blocks per second, the ratio to the block rate, and its peak RSS;
- a large index: M transactions written straight into the explorer's tables. **They are not
  M transactions executed by a node** (at this machine's block rate that takes hours): they
  are the real signed transactions, receipts and decoded events of the scenario, replicated
  in 100-transaction blocks, each copy under a unique hash and with unique record, license
  and account subjects, so every index is as large as on a real chain of that size;
- pages: a real server process (``python -m explorer serve``) on that index; R sequential
  requests per page type (overview, blocks, block, transaction, department, account,
  validators, permissions, record, license) and per search kind; p50 and p95, and the
  server's peak RSS.

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
from chain_activity import DEPARTMENT_USCC, LICENSE_ID, free_port, make_activity, start_dev_chain  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from chain.crypto import sm3  # noqa: E402
from contracts.permissions import PERMISSIONS_ADDRESS, grant_call  # noqa: E402
from explorer import store_schema as t  # noqa: E402
from explorer.store import Store  # noqa: E402
from sdk.account import Sm2Account  # noqa: E402
from sdk.chain_reader import ChainReader  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "explorer.json"
TXS_PER_BLOCK = 100
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
    """The scenario's indexed rows replicated to ``transactions`` transactions (see the
    module docstring); returns what it wrote and how long it took."""
    source = Store.open(source_url)
    with source.read() as c:
        txs = [
            dict(r._mapping)
            for r in c.execute(select(t.transactions).where(t.transactions.c.contract.is_not(None)))
        ]
        events = {}
        for row in c.execute(select(t.events)):
            events.setdefault(row.tx_hash, []).append(dict(row._mapping))
        subjects = {}
        for row in c.execute(select(t.event_subjects)):
            subjects.setdefault(row.event_id, []).append(dict(row._mapping))
        template_block = dict(
            c.execute(select(t.blocks).where(t.blocks.c.height == 6)).one()._mapping
        )
        static = {
            name: [dict(r._mapping) for r in c.execute(select(table))]
            for name, table in (
                ("departments", t.departments),
                ("keys", t.department_keys),
                ("changes", t.validator_changes),
                ("contracts", t.contracts),
            )
        }
        signer_rows = [
            dict(r._mapping) for r in c.execute(select(t.signers).where(t.signers.c.height == 6))
        ]
    source.close()
    target = Store.open(target_url)
    started = time.perf_counter()
    blocks_count = transactions // TXS_PER_BLOCK
    event_id = 0
    with target.engine.begin() as c:
        for name, table in (
            ("departments", t.departments),
            ("keys", t.department_keys),
            ("changes", t.validator_changes),
            ("contracts", t.contracts),
        ):
            if static[name]:
                c.execute(
                    insert(table), [{k: v for k, v in r.items() if k != "id"} for r in static[name]]
                )
    for first in range(0, blocks_count, 100):
        block_rows, tx_rows, event_rows, subject_rows, signers = [], [], [], [], []
        for height in range(first, min(first + 100, blocks_count)):
            block_hash = "0x" + sm3(b"block" + height.to_bytes(8, "big")).hex()
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
                number = height * TXS_PER_BLOCK + position
                original = txs[number % len(txs)]
                tx_hash = "0x" + sm3(original["hash"].encode() + number.to_bytes(8, "big")).hex()
                tx_rows.append(
                    {**original, "hash": tx_hash, "height": height, "position": position}
                )
                for log_index, event in enumerate(events.get(original["hash"], [])):
                    event_id += 1
                    event_rows.append(
                        {
                            **event,
                            "id": event_id,
                            "height": height,
                            "tx_hash": tx_hash,
                            "log_index": log_index,
                        }
                    )
                    for subject in subjects.get(event["id"], []):
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
            c.execute(insert(t.signers), signers)
    with target.engine.begin() as c:
        c.execute(
            insert(t.cursor).values(
                id=1, height=blocks_count - 1, block_hash=block_rows[-1]["hash"]
            )
        )
    seconds = time.perf_counter() - started
    with target.read() as c:
        sample_tx = c.execute(
            select(t.transactions.c.hash).where(t.transactions.c.height == blocks_count // 2)
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
    return {
        "blocks": blocks_count,
        "transactions": blocks_count * TXS_PER_BLOCK,
        "events": event_id,
        "seconds": seconds,
        "search_plans": plans,
        "samples": {
            "tx": sample_tx,
            "record": sample_record,
            "license": sample_license,
            "account": sample_account,
            "height": blocks_count // 2,
        },
    }


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
    chain: Any, index_url: str, samples: dict[str, Any], requests: int, folder: Path
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
        page_urls = {
            "overview": "/",
            "blocks": "/blocks",
            "block": f"/block/{samples['height']}",
            "transaction": f"/tx/{samples['tx']}",
            "department": f"/department/{DEPARTMENT_USCC}",
            "account": f"/address/{chain.accounts['dept-b'].lower()}",
            "validators": "/validators",
            "permissions": "/permissions",
            "record": f"/record/{samples['record']}",
            "license": f"/license/{samples['license']}",
        }
        searches = {
            "height": str(samples["height"]),
            "tx hash": samples["tx"],
            "USCC": DEPARTMENT_USCC,
            "license id": LICENSE_ID,
            "record root": samples["record"],
        }
        results: dict[str, Any] = {"pages": {}, "search": {}}
        for name, url in page_urls.items():
            client.get(url)
            results["pages"][name] = timed(client, url, requests, 200)
        client.follow_redirects = False
        for name, query in searches.items():
            results["search"][name] = timed(
                client, f"/search?{httpx.QueryParams({'q': query})}", requests, 303
            )
        results["server_peak_rss_mb"] = peak_rss_mb(process.pid)
        return results
    finally:
        process.terminate()
        process.wait(60)


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
        make_activity(chain)
        rate = block_rate(chain, args.blocks)
        indexed = catch_up(chain, folder)
        large = build_large_index(
            f"sqlite:///{folder / 'catchup.db'}",
            f"sqlite:///{folder / 'large.db'}",
            args.transactions,
        )
        served = pages(
            chain, f"sqlite:///{folder / 'large.db'}", large["samples"], args.requests, folder
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
        f"large index            {large['transactions']:,} transactions, "
        f"{large['events']:,} events, built in {large['seconds']:.0f} s"
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
    print(f"load average           {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"results: {RESULTS}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
