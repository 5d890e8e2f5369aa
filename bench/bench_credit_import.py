"""Benchmark the import of 双公示 tables: parse + validate, the domain part of an import,
and the registry's all-or-nothing import committed to SQLite.

Run by hand: ``.venv/bin/python bench/bench_credit_import.py [--quick]``;
``--only committed`` runs the committed import alone (``--committed-rows``, ``--rounds``),
with its CPU per row, to compare versions on a shared machine.

- CSV rows/s and XLSX rows/s: a generated penalty table (organisations and natural persons,
  CSV in GB18030 as Chinese Excel saves it), read, validated and handed to a sink that keeps
  nothing, in VALID_ROWS mode (one pass); median of ``--rounds`` runs.
- XLSX reading alone, with calamine (the default) and openpyxl (the reference).
- CSV committed: the registry's all-or-nothing import (registry.credit.imports.import_bytes)
  into a fresh SQLite database — validated, stored with windows and commitments, committed.
- Peak RSS of an all-or-nothing import (one validating pass spooling the valid rows to a
  temporary file, then the hand-over) of a 1,000,000-row CSV generated here.

Each measurement runs in a fresh child process so that its peak resident memory
(``ru_maxrss``) is its own. Prints a table of medians and writes
``bench/results/credit_import.json``. Goals: CSV ≥ 5,000 rows/s, XLSX ≥ 2,000 rows/s,
1,000,000 rows < 500 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from credit.columns import PENALTY_COLUMNS  # noqa: E402
from credit.importing import ImportedRow, ImportMode, TableFormat, import_file  # noqa: E402
from credit.importing.xlsx_source import read_xlsx_rows  # noqa: E402
from sdk.identifiers import compute_resident_id_check, compute_uscc_check  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "credit_import.json"
GOAL_CSV_ROWS_PER_SECOND = 5_000
GOAL_XLSX_ROWS_PER_SECOND = 2_000
GOAL_PEAK_RSS_MIB = 500


def _uscc(number: int) -> str:
    body = f"91{350100 + number % 1000:06d}{number:09d}"
    return body + compute_uscc_check(body)


def _resident_id(number: int) -> str:
    born = f"{1950 + number % 50:04d}{1 + number % 12:02d}{1 + number % 28:02d}"
    body = f"440301{born}{number % 1000:03d}"
    return body + compute_resident_id_check(body)


def _row(number: int) -> dict[str, object]:
    person = number % 5 == 0
    return {
        "name": "张三丰" if person else f"某某贸易有限公司{number}",
        "category": "自然人" if person else "法人及非法人组织",
        "code_1": "" if person else _uscc(number),
        "legal_representative": "" if person else "王某某",
        "id_type": "身份证" if person else "",
        "id_number": _resident_id(number) if person else "",
        "decision_number": f"市监罚〔2023〕{number}号",
        "violation_type": "虚假宣传",
        "violation_facts": "在网站发布虚假广告，误导消费者",
        "legal_basis": "《中华人民共和国广告法》第五十五条",
        "categories": "警告;罚款" if number % 3 else "罚款",
        "content": "罚款人民币贰万元",
        "fine_wan": f"{number % 100},{number % 1000:03d}.5",
        "decision_date": ("2023/5/1", "2023年5月1日", "20230501", 45047)[number % 4],
        "publication_deadline": "2024-05-01",
        "authority": "市市场监督管理局",
        "authority_uscc": "11100000000013338W",
        "data_source": "市市场监督管理局",
        "data_source_uscc": "11220000013544541J",
    }


def _table_rows(count: int) -> Any:
    yield [column.header for column in PENALTY_COLUMNS]
    keys = [column.key for column in PENALTY_COLUMNS]
    for number in range(1, count + 1):
        row = _row(number)
        yield [row.get(key, "") for key in keys]


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="gb18030", newline="") as file:
        csv.writer(file).writerows(_table_rows(count))


def write_xlsx(path: Path, count: int) -> None:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for row in _table_rows(count):
        sheet.append(row)
    workbook.save(path)


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (an import's worker
    process: it is waited for before the import returns)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _run_import(path: str, mode: str) -> dict[str, float]:
    handed = 0

    def sink(row: ImportedRow) -> None:
        nonlocal handed
        handed += 1

    start = time.perf_counter()
    cpu_start = time.process_time()
    report = import_file(Path(path), sink, mode=ImportMode(mode))
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if not report.ok or handed != report.rows_read:
        raise RuntimeError(f"import rejected rows: {report.issues[:3]}")
    return {
        "rows": handed,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _run_committed(path: str, worker: bool = True) -> dict[str, float]:
    """The registry's import of the file (all or nothing) into a fresh SQLite database:
    validated, stored with windows, commitments and events, committed. Its CPU time
    includes the import's worker process."""
    import datetime

    from chain.crypto import PrivateKey
    from credit.rulesets import bundled_rule_set
    from registry.cli import add_client
    from registry.credit.imports import import_bytes
    from registry.credit.keys import CreditKeys
    from registry.credit.store import Publisher
    from registry.db import Database
    from registry.settings import RegistrySettings

    folder = Path(path).parent / f"registry-{os.getpid()}"
    db = Database.open(RegistrySettings(data_dir=folder))
    client = add_client(
        db,
        name="市市场监督管理局",
        uscc="11220000013544541J",
        public_key_pem=PrivateKey.generate().public_key.to_pem(),
        roles=["credit"],
    )
    publisher = Publisher(
        client,
        CreditKeys(b"bench: fixed master secret"),
        bundled_rule_set("cn.ndrc.order-58"),
        datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC),
    )
    if not worker:
        import registry.credit.imports

        registry.credit.imports.WORKER_MIN_BYTES = dict.fromkeys(TableFormat, 1 << 62)
    data = Path(path).read_bytes()
    table_format = TableFormat.XLSX if path.endswith(".xlsx") else TableFormat.CSV
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    outcome = import_bytes(db, publisher, data, table_format=table_format)
    seconds = time.perf_counter() - start
    cpu_seconds = _cpu_seconds() - cpu_start
    db.close()
    return {
        "rows": outcome.published,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _run_read(path: str, reader: str) -> dict[str, float]:
    """Only reading an XLSX file's rows, with one reader."""
    start = time.perf_counter()
    cpu_start = time.process_time()
    rows = sum(1 for _ in read_xlsx_rows(Path(path), reader=reader))
    return {
        "rows": rows,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _in_child(path: Path, mode: ImportMode | str, worker: bool = True) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        if isinstance(mode, ImportMode):
            result: dict[str, float] = pool.apply(_run_import, (str(path), mode.value))
        elif mode == "committed":
            result = pool.apply(_run_committed, (str(path), worker))
        else:
            result = pool.apply(_run_read, (str(path), mode))
    return result


def _throughput(path: Path, rounds: int, mode: ImportMode | str = ImportMode.VALID_ROWS) -> Any:
    runs = [_in_child(path, mode) for _ in range(rounds)]
    rates = [run["rows"] / run["seconds"] for run in runs]
    cpu_rates = [run["rows"] / run["cpu_seconds"] for run in runs]
    return {
        "rows": runs[0]["rows"],
        "rows_per_second_median": statistics.median(rates),
        "rows_per_second_runs": rates,
        "rows_per_cpu_second_median": statistics.median(cpu_rates),
        "peak_rss_mib_max": max(run["peak_rss_mib"] for run in runs),
    }


def _committed_only(rows: int, rounds: int, table_format: str, worker: bool) -> None:
    """The committed import alone: each round in a fresh child and database, with the load
    average before it; prints rows/s and CPU per row of each round and their medians."""
    with tempfile.TemporaryDirectory(prefix="bench-credit-") as folder:
        path = Path(folder) / f"committed.{table_format}"
        (write_xlsx if table_format == "xlsx" else write_csv)(path, rows)
        cpu_per_row, rates = [], []
        for number in range(1, rounds + 1):
            load = os.getloadavg()[0]
            run = _in_child(path, "committed", worker)
            cpu_per_row.append(run["cpu_seconds"] / run["rows"] * 1e6)
            rates.append(run["rows"] / run["seconds"])
            print(
                f"round {number}: {run['rows']:,.0f} rows, {rates[-1]:,.0f} rows/s wall, "
                f"{cpu_per_row[-1]:.1f} us CPU a row (load {load:.2f})"
            )
    print(
        f"median: {statistics.median(rates):,.0f} rows/s wall, "
        f"{statistics.median(cpu_per_row):.1f} us CPU a row "
        f"({1e6 / statistics.median(cpu_per_row):,.0f} rows per CPU-second)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-rows", type=int, default=50_000)
    parser.add_argument("--xlsx-rows", type=int, default=20_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--committed-rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller files, one round")
    parser.add_argument(
        "--only", choices=["committed"], help="run only the committed import (CPU per row)"
    )
    parser.add_argument(
        "--committed-format", choices=["csv", "xlsx"], default="csv", help="with --only"
    )
    parser.add_argument(
        "--no-worker", action="store_true", help="with --only: import in one process"
    )
    args = parser.parse_args()
    if args.quick:
        args.csv_rows, args.xlsx_rows, args.big_rows, args.rounds = 10_000, 5_000, 100_000, 1
        args.committed_rows = 2_000
    if args.only == "committed":
        _committed_only(args.committed_rows, args.rounds, args.committed_format, not args.no_worker)
        return
    load_at_start = os.getloadavg()
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average_at_start": load_at_start,
        "scope": (
            "csv/xlsx/big: parse + validate + identities; csv_committed: the registry's "
            "all-or-nothing import into SQLite (validate, store, commit)"
        ),
    }
    with tempfile.TemporaryDirectory(prefix="bench-credit-") as folder:
        directory = Path(folder)
        csv_path = directory / "penalties.csv"
        write_csv(csv_path, args.csv_rows)
        results["csv"] = _throughput(csv_path, args.rounds)
        xlsx_path = directory / "penalties.xlsx"
        write_xlsx(xlsx_path, args.xlsx_rows)
        results["xlsx"] = _throughput(xlsx_path, args.rounds)
        for reader in ("calamine", "openpyxl"):
            results[f"xlsx_read_{reader}"] = _throughput(xlsx_path, args.rounds, reader)
        committed_path = directory / "committed.csv"
        write_csv(committed_path, args.committed_rows)
        results["csv_committed"] = _throughput(committed_path, args.rounds, "committed")
        big_path = directory / "big.csv"
        write_csv(big_path, args.big_rows)
        big = _in_child(big_path, ImportMode.ALL_OR_NOTHING)
        big["file_mib"] = big_path.stat().st_size / (1024 * 1024)
        big["rows_per_second"] = big["rows"] / big["seconds"]
        big["rows_per_cpu_second"] = big["rows"] / big["cpu_seconds"]
        results["big_csv_all_or_nothing"] = big
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    load_at_end = os.getloadavg()
    results["load_average_at_end"] = load_at_end
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False), "utf-8")
    csv, xlsx = results["csv"], results["xlsx"]
    print(f"load average at start {load_at_start[0]:.2f}, at end {load_at_end[0]:.2f} (2 cores)")
    lines = [
        ("CSV rows/s, wall (median, one pass)", csv["rows_per_second_median"], "5,000"),
        ("CSV rows per CPU-second (median)", csv["rows_per_cpu_second_median"], ""),
        ("XLSX rows/s, wall (median, one pass)", xlsx["rows_per_second_median"], "2,000"),
        ("XLSX rows per CPU-second (median)", xlsx["rows_per_cpu_second_median"], ""),
        (
            "XLSX read only, calamine rows/s (median)",
            results["xlsx_read_calamine"]["rows_per_second_median"],
            "",
        ),
        (
            "XLSX read only, openpyxl rows/s (median)",
            results["xlsx_read_openpyxl"]["rows_per_second_median"],
            "",
        ),
        (
            "CSV committed to SQLite, rows/s wall (median)",
            results["csv_committed"]["rows_per_second_median"],
            "5,000",
        ),
        (
            "CSV committed, rows per CPU-second (median)",
            results["csv_committed"]["rows_per_cpu_second_median"],
            "",
        ),
        (
            "CSV/XLSX wall ratio (same run)",
            csv["rows_per_second_median"] / xlsx["rows_per_second_median"],
            "",
        ),
        (f"{args.big_rows:,}-row CSV all-or-nothing: peak MiB", big["peak_rss_mib"], "500"),
        ("  its rows/s (validate + hand-over), wall", big["rows_per_second"], ""),
        ("  its rows per CPU-second", big["rows_per_cpu_second"], ""),
    ]
    print(f"{'measurement':<46}{'value':>12}{'goal':>10}")
    for name, value, goal in lines:
        print(f"{name:<46}{value:>12,.1f}{goal:>10}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
