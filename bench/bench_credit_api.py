"""Public credit through the registry's API, on real processes (a dev chain node and the
registry, ``python -m registry.cli start``, on 127.0.0.1): ``check`` latency under an
open-loop load (goal: p99 <= 20 ms at 500 req/s offered), and 双公示 CSV import through the
API, validated and committed, in rows/s (goal: >= 5,000), with the signing of the events
it made (then handed to the anchoring pipeline): rows/s committed from upload to the last
event signed, with one department signature per event and with one signature over the Merkle
root of all of the import's events, rounds of the two alternating in the same run.

Each import round uploads a fresh file of new records (all-or-nothing mode); the time runs
from the upload's first byte to its answer. ``check`` requests are signed before the clock
starts and name subjects on a black list, subjects with records only, and unknown ones.
Beside the latencies, the registry's CPU time per check (its processes' user + system time
over the phase, divided by the checks answered: load moves it far less than the rates), and
with ``--profile`` the open-loop phase sampled by py-spy (collapsed stacks of every thread
of the registry's processes, or with ``--profile-gil`` of the thread holding the GIL in
each, ``bench/results/credit_check_profile.txt``).

Prints a table of medians and writes ``bench/results/credit_api.json``. The machine has 2
cores and is shared: the load average at start is recorded, and figures vary with it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "bench", ROOT / "tests" / "credit"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_credit_import import TreeRss  # noqa: E402
from bench_data_gateway import cpu_seconds, process_tree, record_profile, server_pid  # noqa: E402
from bench_registry import (  # noqa: E402
    CLIENT_USCC,
    DEPARTMENT_USCC,
    _lianxin_command,
    background,
    free_port,
    lianxin,
    load,
    load_at_rate,
    registry_server,
    signed_raw,
    wait_http,
)
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, penalty_row  # noqa: E402
from peers import ensure_py_spy  # noqa: E402

from chain.crypto import PrivateKey  # noqa: E402
from registry.bootstrap import bootstrap  # noqa: E402
from registry.chain_gateway import ChainGateway  # noqa: E402
from registry.cli import add_client  # noqa: E402
from registry.db import Database  # noqa: E402
from registry.department_keys import register_department_key  # noqa: E402
from registry.settings import RegistrySettings  # noqa: E402
from sdk.account import Sm2Account  # noqa: E402
from sdk.credit_client import CreditClient  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "credit_api.json"
PROFILE = ROOT / "bench" / "results" / "credit_check_profile.txt"

GOALS = {
    "import_csv_rows_per_s": (">=", 5_000),
    "check_p99_ms": ("<=", 20),
}
"""Figure → (comparison, goal)."""

ENTERPRISES = [
    "91350100M000100Y43",
]
"""Valid USCCs of subjects (tests/vectors/codes.json)."""


def penalty_csv(rows: int, tag: str) -> bytes:
    """A CSV of ``rows`` new penalties (decision numbers carry ``tag``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(PENALTY_HEADERS)
    for index in range(rows):
        values = penalty_row(decision_number=f"榕市监罚〔2023〕{tag}-{index}号")
        writer.writerow(cells(PENALTY_KEYS, values))
    return buffer.getvalue().encode("utf-8")


def import_round(client: CreditClient, rows: int, tag: str, *, per_event: bool) -> dict[str, Any]:
    data = penalty_csv(rows, tag)
    started = time.perf_counter()
    summary = client.import_file(data, table_format="csv")
    imported = time.perf_counter() - started
    assert summary.published == rows, summary
    started = time.perf_counter()
    signed = client.sign_pending(per_event=per_event)
    signing = time.perf_counter() - started
    return {
        "rows": rows,
        "signing": "per event" if per_event else "one signature",
        "bytes": len(data),
        "import_s": imported,
        "rows_per_s": rows / imported,
        "events_signed": len(signed),
        "sign_s": signing,
        "events_signed_per_s": len(signed) / signing if signing else 0.0,
        "committed_rows_per_s": rows / (imported + signing),
    }


def write_penalty_csv(path: Path, rows: int, tag: str) -> None:
    """:func:`penalty_csv` written row by row to ``path`` (a million rows never in memory)."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(PENALTY_HEADERS)
        for index in range(rows):
            values = penalty_row(decision_number=f"榕市监罚〔2023〕{tag}-{index}号")
            writer.writerow(cells(PENALTY_KEYS, values))


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``, its descendants, and the descendants that ended
    and were waited for (an import's worker process), from /proc."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def big_import(client: CreditClient, work: Path, rows: int, pid: int) -> dict[str, Any]:
    """One all-or-nothing import of a ``rows``-row file streamed from disk (its SM3
    declared), with the peak RSS of the registry's processes (``pid``, the one started,
    and its API processes) before and after, of the import's worker process, and of all
    of them together (sampled from /proc while the import runs)."""
    path = work / "big.csv"
    write_penalty_csv(path, rows, "big")
    ahead = TreeRss(pid)
    ahead.sample()
    before = ahead.others_peak()
    cpu_before = tree_cpu_seconds(pid)
    tree = TreeRss(pid, interval=0.2)
    tree.start()
    started = time.perf_counter()
    summary = client.import_file(path)
    seconds = time.perf_counter() - started
    tree.stop()
    assert summary.published == rows, summary
    return {
        "rows": rows,
        "file_mib": path.stat().st_size / 2**20,
        "import_s": seconds,
        "rows_per_s": rows / seconds,
        "registry_cpu_s": tree_cpu_seconds(pid) - cpu_before,
        "registry_peak_rss_mib_before": before,
        "registry_peak_rss_mib": tree.others_peak(),
        "registry_processes": len(tree.peaks) - len(tree.workers),
        "worker_processes": len(tree.workers),
        "worker_peak_rss_mib": tree.worker_peak(),
        "together_peak_rss_mib": tree.together,
        "worker_with_its_registry_process_peak_rss_mib": tree.worker_with_parent,
        "processes": tree.by_process(),
    }


def black_entry(index: int, penalty: str) -> dict[str, Any]:
    return {
        "subject": {
            "category": "法人及非法人组织",
            "name": "福州某某贸易有限公司",
            "uscc": ENTERPRISES[0],
            "legal_representative": "王某某",
        },
        "list_type": "black",
        "list_name": "严重违法失信名单",
        "decision_number": f"榕市监认〔2023〕{index}号",
        "reason": "拒不履行行政处罚决定",
        "legal_basis": "《市场监督管理严重违法失信名单管理办法》",
        "entry_date": "2023-06-01",
        "authority": "福州市市场监督管理局",
        "authority_uscc": CLIENT_USCC,
        "basis_records": [{"authority_uscc": CLIENT_USCC, "decision_number": penalty}],
    }


def check_requests(key: PrivateKey, client_id: str, count: int) -> list[bytes]:
    subjects = [ENTERPRISES[0], "11100000000013338W", "110105194912310021"]
    path = "/v1/credit/check"
    return [
        signed_raw(
            key,
            client_id,
            "POST",
            path,
            {
                "subject": subjects[index % len(subjects)],
                "activity": "government_procurement",
                "on": "2023-07-01",
            },
        )
        for index in range(count)
    ]


CHECK_PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("check log, its nonce and tracker entry (group commit)", ("CheckLogWriter._commit",)),
    ("nonce group commit", ("registry/intake.py",)),
    ("batcher and anchorer", ("registry/batcher.py", "run_anchorer", "Anchorer")),
    ("the check's entries (check_subject, check_kept_subject)", ("check_subject", "kept_subject")),
    ("the reasons' bundles (record_bundles, kept_record_bundles)", ("record_bundles",)),
    (
        "the answer's JSON and kept answers (check_answer_parts, KeptAnswer)",
        ("check_answer_json", "check_answer_parts", "KeptAnswer"),
    ),
    ("SM2 request signature and client", ("registry/auth.py", "current_client")),
    ("HTTP, routing, JSON (uvicorn, FastAPI)", ("uvicorn", "starlette", "fastapi")),
]
"""Part of a check → markers of its frames, the first part any frame of a stack names
taking the sample (so the SM2 check inside FastAPI's dependencies counts as SM2)."""

WAITING = ("Condition.wait", "_flock_by", "Event.wait", "select (selectors", "_worker (concurrent")
"""Innermost frames of threads waiting, not working (py-spy counts some as active)."""


def check_profile_shares(raw_profile: str) -> dict[str, float]:
    """Percent of the working samples of py-spy's raw output by :data:`CHECK_PARTS`."""
    counts: dict[str, int] = {}
    for line in raw_profile.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(marker in frames[-1] for marker in WAITING):
            continue
        part = next(
            (name for name, markers in CHECK_PARTS if any(m in stack for m in markers)), "other"
        )
        counts[part] = counts.get(part, 0) + int(count)
    total = sum(counts.values()) or 1
    return {name: 100 * n / total for name, n in sorted(counts.items(), key=lambda item: -item[1])}


def with_cpu(pid: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``'s figures with the registry's CPU milliseconds per answered request."""
    before = cpu_seconds(pid)
    figures = run()
    figures["cpu_ms_per_request"] = (
        1000 * (cpu_seconds(pid) - before) / max(sum(figures["statuses"].values()), 1)
    )
    return figures


def verdict(name: str, value: float) -> str:
    comparison, goal = GOALS[name]
    met = value >= goal if comparison == ">=" else value <= goal
    return f"{'met' if met else 'MISSED'} ({comparison} {goal})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per import round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entries", type=int, default=20, help="black-list entries")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop checks/s")
    parser.add_argument(
        "--rate-seconds", type=float, default=None, help="seconds of checks (10; --quick: 4)"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=200, help="checks one at a time")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 rows, 4 s of checks (unless given)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="registry API processes (this machine: 2 cores)"
    )
    parser.add_argument("--imports-only", action="store_true", help="no check load")
    parser.add_argument(
        "--big-rows",
        type=int,
        default=0,
        help="only: one all-or-nothing import of a file of this many rows, streamed, with "
        "the peak RSS of the registry's processes, of its import worker process, and of "
        "them together (e.g. 1000000)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the open-loop checks with py-spy"
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL (the interpreter's work, "
        "without the waits)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rows = 2_000
    if args.rate_seconds is None:
        # --rate-seconds given with --quick is kept (it was overridden: 4 s whatever asked).
        args.rate_seconds = 4.0 if args.quick else 10.0

    work = Path(tempfile.mkdtemp(prefix="bench-credit-"))
    chain_dir, rpc_port, api_port = work / "chain", free_port(), free_port()
    lianxin("init", str(chain_dir), "--dev", "--rpc-port", str(rpc_port), "--json")
    node_command = [*_lianxin_command(), "node", "start", "--dir", str(chain_dir)]
    load_average = os.getloadavg()
    with background([*node_command, "--log-level", "WARNING"], work / "node.log") as node:
        node_url = f"http://127.0.0.1:{rpc_port}"
        wait_http(node_url, node, "the node")
        settings = RegistrySettings(
            data_dir=work / "registry",
            node_url=node_url,
            signer_keystore=chain_dir / "keys" / "dept-a.json",
            signer_password_file=chain_dir / "keystore-password",
            batch_interval=1.0,
            max_upload_bytes=256 * 1024 * 1024,
        )
        db = Database.open(settings)
        gateway = ChainGateway(settings, db)
        governance = Sm2Account.from_keystore(
            (chain_dir / "keys" / "admin.json").read_bytes(), settings.signer_password()
        )
        bootstrap(gateway, governance, uscc=DEPARTMENT_USCC, department_name="某区大数据管理局")
        key = PrivateKey.generate()
        register_department_key(
            gateway,
            governance,
            uscc=CLIENT_USCC,
            department_name="bench",
            public_key=key.public_key.to_bytes(),
        )
        gateway.close()
        client_row = add_client(
            db,
            name="bench",
            uscc=CLIENT_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=["credit", "verify"],
        )
        with registry_server(
            settings, api_port, work / "registry.log", workers=args.workers
        ) as base:
            timeout = 7200.0 if args.big_rows else 600.0
            client = CreditClient(base, client_row.id, key, timeout=timeout)
            client.sign_pending()  # the rule set's event, signed before the clock runs
            if args.big_rows:
                big = big_import(client, work, args.big_rows, server_pid(api_port))
                client.close()
                report_big(big, load_average)
                return
            imports = [
                import_round(client, args.rows, f"r{r}{mode}", per_event=mode == "e")
                for r in range(args.rounds)
                for mode in ("e", "o")
            ]
            if not args.imports_only:
                for index in range(args.entries):
                    client.publish_list_entry(black_entry(index, "榕市监罚〔2023〕r0o-0号"))
                client.sign_pending()
                requests = check_requests(key, client_row.id, int(args.rate * args.rate_seconds))
                pid = server_pid(api_port)
                # One at a time first: the service time of a check, without queueing.
                alone = with_cpu(
                    pid, lambda: asyncio.run(load(api_port, requests[: args.sequential], 1, 60.0))
                )

                def open_loop() -> dict[str, Any]:
                    return with_cpu(
                        pid,
                        lambda: asyncio.run(
                            load_at_rate(
                                api_port, requests[args.sequential :], args.rate, args.connections
                            )
                        ),
                    )

                if args.profile:
                    PROFILE.parent.mkdir(parents=True, exist_ok=True)
                    checks = record_profile(
                        ensure_py_spy(), pid, "raw", PROFILE, open_loop, gil=args.profile_gil
                    )
                    checks["profile_percent"] = check_profile_shares(
                        PROFILE.read_text(encoding="utf-8")
                    )
                else:
                    checks = open_loop()
            client.close()

    rows_per_s = statistics.median(r["rows_per_s"] for r in imports)
    per_event = [r for r in imports if r["signing"] == "per event"]
    at_once = [r for r in imports if r["signing"] == "one signature"]
    committed_per_event = statistics.median(r["committed_rows_per_s"] for r in per_event)
    committed_at_once = statistics.median(r["committed_rows_per_s"] for r in at_once)
    signed_per_event = statistics.median(r["events_signed_per_s"] for r in per_event)
    signed_at_once = statistics.median(r["events_signed_per_s"] for r in at_once)
    print(
        f"credit API on {platform.node()}, load average at start {load_average[0]:.2f}; "
        f"{args.rounds} import rounds of {args.rows} rows; checks open loop at "
        f"{args.rate:.0f}/s for {args.rate_seconds:.0f} s"
    )
    table = [
        ("CSV import through the API, rows/s (median)", f"{rows_per_s:,.0f}",
         verdict("import_csv_rows_per_s", rows_per_s)),
        ("  each round, rows/s", ", ".join(f"{r['rows_per_s']:,.0f}" for r in imports), ""),
        ("committed (import + signing), rows/s: per event", f"{committed_per_event:,.0f}",
         ", ".join(f"{r['committed_rows_per_s']:,.0f}" for r in per_event)),
        ("committed (import + signing), rows/s: one signature", f"{committed_at_once:,.0f}",
         ", ".join(f"{r['committed_rows_per_s']:,.0f}" for r in at_once)),
        ("  one signature / per event", f"{committed_at_once / committed_per_event:.2f}x", ""),
        ("events signed and handed to anchoring /s: per event", f"{signed_per_event:,.0f}", ""),
        ("events signed and handed to anchoring /s: one signature", f"{signed_at_once:,.0f}",
         ""),
    ]  # fmt: skip
    if not args.imports_only:
        table += [
            ("check one at a time, p50 / p99 ms",
             f"{alone['p50_ms']:.1f} / {alone['p99_ms']:.1f}", f"{alone['per_s']:.0f}/s"),
            ("check p50 ms", f"{checks['p50_ms']:.1f}", ""),
            ("check p99 ms", f"{checks['p99_ms']:.1f}",
             verdict("check_p99_ms", checks["p99_ms"])),
            ("check achieved /s", f"{checks['per_s']:.0f}", f"statuses {checks['statuses']}"),
            ("registry CPU ms per check: one at a time / open loop",
             f"{alone['cpu_ms_per_request']:.2f} / {checks['cpu_ms_per_request']:.2f}", ""),
        ]  # fmt: skip
        for part, share in checks.get("profile_percent", {}).items():
            table.append((f"  profile: {part}", f"{share:.1f} %", ""))
    width = max(len(name) for name, _, _ in table)
    for name, value, note in table:
        print(f"{name:<{width}}  {value:>18}  {note}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "host": platform.node(),
                "load_average_at_start": load_average,
                "arguments": vars(args),
                "imports": imports,
                "checks": None if args.imports_only else checks,
                "checks_one_at_a_time": None if args.imports_only else alone,
                "import_csv_rows_per_s": rows_per_s,
                "committed_rows_per_s_per_event_signatures": committed_per_event,
                "committed_rows_per_s_one_signature": committed_at_once,
                "check_p99_ms": None if args.imports_only else checks["p99_ms"],
                "check_cpu_ms": None if args.imports_only else checks["cpu_ms_per_request"],
            },
            indent=2,
        )
    )
    print(f"written to {RESULTS}")


def report_big(big: dict[str, Any], load_average: tuple[float, float, float]) -> None:
    print(
        f"credit API on {platform.node()}, load average at start {load_average[0]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f}; one all-or-nothing import streamed from disk"
    )
    table = [
        ("rows", f"{big['rows']:,}", ""),
        ("file MiB", f"{big['file_mib']:,.1f}", ""),
        ("import s (upload, validate, store, commit)", f"{big['import_s']:,.1f}", ""),
        ("  rows/s", f"{big['rows_per_s']:,.0f}", ""),
        ("  rows per registry CPU-second (with the worker's)",
         f"{big['rows'] / big['registry_cpu_s']:,.0f}", ""),
        ("registry peak RSS MiB, before the import (largest process)",
         f"{big['registry_peak_rss_mib_before']:,.1f}", ""),
        ("registry peak RSS MiB (largest process)", f"{big['registry_peak_rss_mib']:,.1f}",
         "goal < 500"),
        ("import worker process peak RSS MiB", f"{big['worker_peak_rss_mib']:,.1f}",
         f"{big['worker_processes']} process(es)"),
        ("the importing registry process + its worker, peak RSS MiB",
         f"{big['worker_with_its_registry_process_peak_rss_mib']:,.1f}", "goal < 500"),
        ("every registry process + worker, peak RSS MiB (summed)",
         f"{big['together_peak_rss_mib']:,.1f}", f"{big['registry_processes']} + "
         f"{big['worker_processes']} processes"),
    ]  # fmt: skip
    width = max(len(name) for name, _, _ in table)
    for name, value, note in table:
        print(f"{name:<{width}}  {value:>12}  {note}")
    out = RESULTS.with_name("credit_api_big_import.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    big = big | {"when": datetime.now(UTC).isoformat(), "load_average_at_start": load_average}
    out.write_text(json.dumps(big, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
