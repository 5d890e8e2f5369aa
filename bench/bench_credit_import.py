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
  temporary file, then the hand-over) of a 1,000,000-row CSV generated here, with a worker
  process from the size the registry starts one at: the importing process's, the worker's,
  and the two together (sampled from /proc, :class:`TreeRss`).

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
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proc_tree import command_line, process_tree, status_mib  # noqa: E402

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


WORKER_MARK = "credit.importing.workers"
"""What the command line of an import's worker process holds (its ``-c`` program)."""


class TreeRss(threading.Thread):
    """Peak resident memory of a process and its descendants (an import's worker process,
    a registry's API processes), sampled from ``/proc`` every ``interval`` seconds until
    :meth:`stop`: each process's own peak (``VmHWM``, exact whenever it was sampled
    alive); the peak of the summed ``VmRSS`` of the whole tree, and of an import worker
    with the process that started it (what they held at once, to within a sample; pages
    they share, such as libraries, count once per process). ``ru_maxrss`` would not do for
    the worker: a process started by fork and exec counts the RSS its parent had at the
    fork as its own maximum."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peaks: dict[int, float] = {}
        """pid → its peak RSS (VmHWM) in MiB, at its last sample."""
        self.commands: dict[int, str] = {}
        """pid → its command line (the first 120 characters)."""
        self.workers: set[int] = set()
        """The pids seen that were import worker processes."""
        self.together = 0.0
        """The peak of the whole tree's summed RSS, MiB."""
        self.worker_with_parent = 0.0
        """The peak of an import worker's RSS plus its parent's, MiB."""
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Read every process of the tree once."""
        tree = process_tree(self.root)
        resident: dict[int, float] = {}
        for pid in tree:
            if pid not in self.commands:
                self.commands[pid] = command_line(pid)[:120]
                if pid != self.root and WORKER_MARK in self.commands[pid]:
                    self.workers.add(pid)
            peak = status_mib(pid, "VmHWM")
            if peak:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak)
            resident[pid] = status_mib(pid, "VmRSS")
        self.together = max(self.together, sum(resident.values()))
        for pid in self.workers & resident.keys():
            pair = resident[pid] + resident.get(tree[pid], 0.0)
            self.worker_with_parent = max(self.worker_with_parent, pair)

    def stop(self) -> None:
        """End the sampling (after one last sample)."""
        self.sample()
        self._done.set()
        self.join()

    def worker_peak(self) -> float:
        """The largest peak RSS of an import worker process seen, MiB (0: none ran)."""
        return max((self.peaks.get(pid, 0.0) for pid in self.workers), default=0.0)

    def others_peak(self) -> float:
        """The largest peak RSS of the other processes of the tree, MiB."""
        return max(
            (peak for pid, peak in self.peaks.items() if pid not in self.workers), default=0.0
        )

    def by_process(self) -> list[dict[str, Any]]:
        """Each process seen: pid, command line, peak RSS MiB, whether an import worker."""
        return [
            {
                "pid": pid,
                "command": self.commands.get(pid, ""),
                "peak_rss_mib": peak,
                "import_worker": pid in self.workers,
            }
            for pid, peak in sorted(self.peaks.items())
        ]


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (an import's worker
    process: it is waited for before the import returns)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _with_tree_rss(figures: dict[str, float], tree: TreeRss) -> dict[str, float]:
    """``figures`` with the peaks ``tree`` sampled: the import's worker process and the
    importing process with it."""
    tree.stop()
    return figures | {
        "worker_processes": len(tree.workers),
        "worker_peak_rss_mib": tree.worker_peak(),
        "together_peak_rss_mib": tree.together,
        "worker_with_parent_peak_rss_mib": tree.worker_with_parent,
    }


def _run_import(path: str, mode: str, workers: int = 0) -> dict[str, float]:
    handed = 0

    def sink(row: ImportedRow) -> None:
        nonlocal handed
        handed += 1

    tree = TreeRss(os.getpid())
    tree.start()
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    report = import_file(Path(path), sink, mode=ImportMode(mode), workers=workers)
    seconds = time.perf_counter() - start
    cpu_seconds = _cpu_seconds() - cpu_start
    if not report.ok or handed != report.rows_read:
        raise RuntimeError(f"import rejected rows: {report.issues[:3]}")
    figures = {
        "rows": handed,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mib": _peak_rss_mib(),
    }
    return _with_tree_rss(figures, tree)


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
    tree = TreeRss(os.getpid())
    tree.start()
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    own_start = time.process_time()
    outcome = import_bytes(db, publisher, data, table_format=table_format)
    seconds = time.perf_counter() - start
    cpu_seconds = _cpu_seconds() - cpu_start
    own_seconds = time.process_time() - own_start
    db.close()
    figures = {
        "rows": outcome.published,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "importing_process_cpu_seconds": own_seconds,
        "worker_cpu_seconds": cpu_seconds - own_seconds,
        "peak_rss_mib": _peak_rss_mib(),
    }
    return _with_tree_rss(figures, tree)


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


def _in_child(
    path: Path, mode: ImportMode | str, worker: bool = True, import_workers: int = 0
) -> dict[str, float]:
    """A run in a fresh child process: a domain import (``mode`` an ImportMode, with
    ``import_workers`` worker processes), the committed import (with the worker process
    from the registry's threshold up, if ``worker``) or reading with an XLSX reader."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        if isinstance(mode, ImportMode):
            result: dict[str, float] = pool.apply(
                _run_import, (str(path), mode.value, import_workers)
            )
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
        # (An XLSX reader's run starts no import, and samples nothing.)
        "worker_peak_rss_mib_max": max(run.get("worker_peak_rss_mib", 0.0) for run in runs),
        "together_peak_rss_mib_max": max(
            run.get("together_peak_rss_mib", run["peak_rss_mib"]) for run in runs
        ),
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
                f"{cpu_per_row[-1]:.1f} us CPU a row (importing process "
                f"{run['importing_process_cpu_seconds']:.2f} s, worker "
                f"{run['worker_cpu_seconds']:.2f} s; load {load:.2f}); peak RSS MiB: "
                f"importing process {run['peak_rss_mib']:.1f}, worker "
                f"{run['worker_peak_rss_mib']:.1f}, together {run['together_peak_rss_mib']:.1f}"
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
        # With a worker process from the size the registry starts one at.
        from registry.credit.imports import WORKER_MIN_BYTES

        big_workers = int(big_path.stat().st_size >= WORKER_MIN_BYTES[TableFormat.CSV])
        big = _in_child(big_path, ImportMode.ALL_OR_NOTHING, import_workers=big_workers)
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
        ("  its worker process: peak MiB", big["worker_peak_rss_mib"], ""),
        ("  importing process + worker together: peak MiB", big["together_peak_rss_mib"], "500"),
        ("  its rows/s (validate + hand-over), wall", big["rows_per_second"], ""),
        ("  its rows per CPU-second", big["rows_per_cpu_second"], ""),
    ]
    print(f"{'measurement':<46}{'value':>12}{'goal':>10}")
    for name, value, goal in lines:
        print(f"{name:<46}{value:>12,.1f}{goal:>10}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
