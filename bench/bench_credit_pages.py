"""Credit reports and the public credit pages: the report PDF's latency (goal: p50 <= 300 ms)
and the public page's latency under open-loop load (goal: p99 <= 100 ms at 500 req/s
offered).

- Report PDF: in this process, on a SQLite registry database holding ``--subjects``
  enterprises with ``--penalties`` penalties each on display: (a) rendering a report's PDF
  alone, (b) issuing a report (public profile query, content, PDF, SM3, stored with its
  credit event), each timed ``--reports`` times after one warm-up (the first document of a
  process reads the CJK font: reported apart).
- Public pages: the registry as a real process (``python -m registry.cli start``) on the
  same database, no chain needed; requests are due at ``i / rate`` s whatever happened to
  the earlier ones (no coordinated omission), half searches by name, half subject pages,
  over ``--connections`` keep-alive connections; with the registry's CPU time per page (its
  processes' user + system time over the run, divided by the pages answered: load moves it
  far less than the rates). The run's latencies are also split at its second second: the
  pages are requested in turn (500 distinct pages with the default arguments, 200 of them
  asked for by the warm-up), so at first nearly every request is a first view in its
  process, read and rendered, and afterwards nearly every one is a kept page. Before the
  run, what this process holds (the database it made, the reports) is frozen out of its
  garbage collector, whose full collections paused the load generator itself.

Run by hand: ``.venv/bin/python bench/bench_credit_pages.py [--quick]``. Prints a table and
writes ``bench/results/credit_pages.json``. The machine has 2 cores and is shared: the load
average at start is recorded, and the figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "bench", ROOT / "tests" / "credit"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_credit_api import with_cpu  # noqa: E402
from bench_credit_import import _uscc  # noqa: E402
from bench_data_gateway import server_pid  # noqa: E402
from bench_registry import (  # noqa: E402
    Connection,
    free_port,
    load_at_rate,
    percentile,
    raw_request,
    registry_server,
)
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, penalty_row  # noqa: E402

from chain.crypto import PrivateKey  # noqa: E402
from credit.report import report_from_payload  # noqa: E402
from credit.rulesets import bundled_rule_set  # noqa: E402
from registry.cli import add_client  # noqa: E402
from registry.credit.imports import import_bytes  # noqa: E402
from registry.credit.keys import CreditKeys  # noqa: E402
from registry.credit.report_pdf import render_report_pdf  # noqa: E402
from registry.credit.reports import issue_report  # noqa: E402
from registry.credit.store import Publisher  # noqa: E402
from registry.db import Database  # noqa: E402
from registry.settings import RegistrySettings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "credit_pages.json"
GOAL_PDF_P50_MS = 300.0
GOAL_PAGE_P99_MS = 100.0
FIRST_SECONDS = 2.0
"""Where the run's latencies are split: requests due before, and from, this second."""
AUTHORITY_USCC = "11100000000013338W"


def _name(index: int) -> str:
    return f"福州市第{index}号贸易有限公司"


def penalty_file(subjects: int, penalties: int, decided: datetime.date) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(PENALTY_HEADERS)
    for subject in range(subjects):
        for number in range(penalties):
            row = penalty_row(
                name=_name(subject),
                code_1=_uscc(subject + 1),
                decision_number=f"榕市监罚〔{decided.year}〕{subject}-{number}号",
                decision_date=decided.isoformat(),
            )
            writer.writerow(cells(PENALTY_KEYS, row))
    return buffer.getvalue().encode("utf-8")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p90_ms": 1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max_ms": 1000 * ordered[-1],
        "samples": len(ordered),
    }


def report_figures(db: Database, keys: CreditKeys, client: Any, count: int) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC)
    base = "https://zx.example.gov.cn"

    def issue() -> Any:
        return issue_report(
            db,
            keys,
            client,
            subject=_uscc(1),
            subject_name="",
            as_of=now,
            issued_at=now,
            purpose="政府采购投标",
            base_url=base,
        )

    started = time.perf_counter()
    first = issue()
    first_s = time.perf_counter() - started
    report = report_from_payload(first.report)
    renders, render_cpu, issues = [], [], []
    for _ in range(count):
        started = time.perf_counter()
        cpu_started = time.process_time()
        pdf = render_report_pdf(report, first.verify_url)
        render_cpu.append(time.process_time() - cpu_started)
        renders.append(time.perf_counter() - started)
        started = time.perf_counter()
        issue()
        issues.append(time.perf_counter() - started)
    return {
        "first_report_in_process_ms": 1000 * first_s,
        "records_in_report": len(report.records),
        "pdf_bytes": len(pdf),
        "render": _percentiles(renders),
        "render_cpu": _percentiles(render_cpu),
        "issue": _percentiles(issues),
    }


def page_requests(subjects: int, count: int) -> list[bytes]:
    requests = []
    for index in range(count):
        subject = index % subjects
        if index % 2:
            path = f"/credit/subjects/{_uscc(subject + 1)}"
        else:
            path = "/credit/?q=" + quote(_name(subject)[2:8])
        requests.append(raw_request("GET", path))
    return requests


async def pages_at_rate(
    port: int, requests: list[bytes], rate: float, connections: int
) -> dict[str, Any]:
    """:func:`bench_registry.load_at_rate` (open loop, request ``i`` due at ``i / rate`` s,
    latency from when it was due), with the p99 of the requests due in the first
    :data:`FIRST_SECONDS` and of the others."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    timed: list[tuple[float, float]] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()

    async def one(raw: bytes, due: float) -> None:
        connection = await pool.get()
        try:
            status = await connection.request(raw)
        finally:
            pool.put_nowait(connection)
        timed.append((due - started, time.perf_counter() - due))
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for index, raw in enumerate(requests):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(raw, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    latencies = sorted(latency for _, latency in timed)
    first = sorted(latency for due, latency in timed if due < FIRST_SECONDS)
    later = sorted(latency for due, latency in timed if due >= FIRST_SECONDS)
    return {
        "offered_per_s": rate,
        "requests": len(latencies),
        "seconds": elapsed,
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * latencies[-1],
        "first_seconds_p99_ms": 1000 * percentile(first, 0.99),
        "later_p99_ms": 1000 * percentile(later, 0.99),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--penalties", type=int, default=4)
    parser.add_argument("--reports", type=int, default=30)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="fewer subjects, reports, 4 s")
    parser.add_argument(
        "--workers", type=int, default=2, help="registry API processes (this machine: 2 cores)"
    )
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.reports, args.rate_seconds = 100, 10, 4.0
    load_at_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-credit-pages-"))
    settings = RegistrySettings(
        data_dir=work / "registry",
        node_url=f"http://127.0.0.1:{free_port()}",
        run_workers=False,
    )
    db = Database.open(settings)
    client = add_client(
        db,
        name="福州市公共信用信息中心",
        uscc="11220000013544541J",
        public_key_pem=PrivateKey.generate().public_key.to_pem(),
        roles=["credit_office"],
    )
    keys = CreditKeys(b"bench: fixed master secret")
    now = datetime.datetime.now(datetime.UTC)
    publisher = Publisher(client, keys, bundled_rule_set("cn.ndrc.order-58"), now)
    decided = (now - datetime.timedelta(days=30)).date()
    data = penalty_file(args.subjects, args.penalties, decided)
    import_bytes(db, publisher, data, table_format=_csv_format())
    reports = report_figures(db, keys, client, args.reports)
    db.close()

    requests = page_requests(args.subjects, int(args.rate * args.rate_seconds))
    port = free_port()
    with registry_server(settings, port, work / "registry.log", workers=args.workers):
        # One pass to warm the templates and the database's pages, not measured.
        asyncio.run(load_at_rate(port, requests[:200], 100.0, 8))
        # This process made the database and the reports: a full collection of what it
        # holds paused the load generator for about 100 ms in the run (sending late and
        # reading late, counted as the registry's latency). Frozen out of the collector.
        gc.collect()
        gc.freeze()
        try:
            pages = with_cpu(
                server_pid(port),
                lambda: asyncio.run(pages_at_rate(port, requests, args.rate, args.connections)),
            )
        finally:
            gc.unfreeze()
    load_at_end = os.getloadavg()

    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_at_end,
        "arguments": vars(args),
        "reports": reports,
        "pages": pages,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False), "utf-8")
    print(
        f"load average at start {load_at_start[0]:.2f}, at end {load_at_end[0]:.2f} (2 cores); "
        f"{args.subjects} subjects x {args.penalties} penalties on display"
    )
    lines = [
        ("report PDF render p50 ms", reports["render"]["p50_ms"], f"<= {GOAL_PDF_P50_MS:.0f}"),
        ("report PDF render p90 ms", reports["render"]["p90_ms"], ""),
        ("report PDF render CPU p50 ms (load-free)", reports["render_cpu"]["p50_ms"], ""),
        ("report issue (query+PDF+store) p50 ms", reports["issue"]["p50_ms"], ""),
        ("first report of a process ms (font read)", reports["first_report_in_process_ms"], ""),
        ("public pages p50 ms", pages["p50_ms"], ""),
        ("public pages p99 ms", pages["p99_ms"], f"<= {GOAL_PAGE_P99_MS:.0f}"),
        (
            f"  p99 ms of those due in the first {FIRST_SECONDS:.0f} s",
            pages["first_seconds_p99_ms"],
            "",
        ),
        ("  p99 ms of the others", pages["later_p99_ms"], ""),
        ("public pages achieved req/s", pages["per_s"], f"{args.rate:.0f} offered"),
        ("registry CPU ms per page", pages["cpu_ms_per_request"], ""),
    ]
    print(f"{'measurement':<44}{'value':>12}  goal")
    for name, value, goal in lines:
        print(f"{name:<44}{value:>12,.1f}  {goal}")
    print(f"statuses {pages['statuses']}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def _csv_format() -> Any:
    from credit.importing import TableFormat

    return TableFormat.CSV


if __name__ == "__main__":
    main()
