"""Benchmark the e-archive domain, side by side in one run on the same bags.

Run by hand: ``.venv/bin/python bench/bench_archives.py [--quick]``.

1. Ingest + validation throughput against bagit's own validation (what ``bagit.py
   --validate`` runs: ``bagit.Bag(path).validate()``, one process by default; with
   ``processes=2`` too), on three bag shapes (many small files, mixed, few large files),
   each made by ``bagit.make_bag`` with its default manifests (sha256 + sha512) and with an
   SM3 manifest alone; payload files are text (an allowed format). Ours is the whole
   ingest: bagit's structure checks, every manifest entry verified plus SM3 in one read per
   file on two worker processes (the format identified and the file opened for the 四性
   usability check by the same worker, a text file from that read), the 四性 check, the
   write-once copy into the store with SM3 manifests. Also our validation alone
   (``read_bag``). Medians of ``--rounds``, alternating. Goal: ingest >= 2x bagit. Beside
   each, the bound hashing alone sets (single-core hashlib MiB/s of each algorithm,
   measured in the same run): bagit pays its algorithms on one core, ours pays them and
   SM3 on two.
2. A fixity audit of a generated store of ``--audit-files`` files, ``--audit-gib`` GiB in
   all (the store is written directly, entries hashed once, no bagit), run in a fresh child
   process: peak RSS of the audit process, of its largest worker and of all of them
   together, sampled from /proc. Goal: < 300 MB.
3. SM3 across both cores: the audit's worker pool hashing the same page-cached files as
   one core running ``hashlib`` SM3 over them. Goal: >= 0.8 x 2 x single core. The CPU
   seconds of the workers over the wall seconds say how many cores the machine gave them.

Prints a table and writes ``bench/results/archives.json``. The machine has 2 cores and
other work runs on it: the load average at start and end is printed; expect noise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proc_tree import process_tree, status_mib  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "archives.json"
GOAL_INGEST_RATIO = 2.0
GOAL_AUDIT_RSS_MB = 300
GOAL_PARALLEL_SM3 = 0.8 * 2

_PRINTABLE = bytes(range(0x20, 0x7F)) * 3
_TABLE = bytes(_PRINTABLE[i % len(_PRINTABLE)] for i in range(256))

DESCRIPTION = {
    "全宗号": "J001",
    "档号": "J001-WS·2025-Y-BGS-{n:04d}",
    "题名": "基准测试档案",
    "责任者": "某区档案馆",
    "形成时间": "2025",
    "保管期限": "永久",
    "密级": "公开",
}


def _text(size: int) -> bytes:
    """``size`` bytes of printable text (identified as TXT, opens as text)."""
    data = os.urandom(size).translate(_TABLE)
    lines = b"\n".join(data[i : i + 99] for i in range(0, len(data), 100))
    return ("档案正文\n".encode() + lines)[:size]


def make_bags(
    folder: Path, count: int, files: int, file_bytes: int, checksums: list[str] | None = None
) -> list[Path]:
    """``count`` bags of ``files`` text files of ``file_bytes`` each, made by bagit (its
    default manifests unless ``checksums``)."""
    import bagit

    bags = []
    for n in range(count):
        bag = folder / f"bag{n}"
        (bag / "docs").mkdir(parents=True)
        for i in range(files):
            (bag / "docs" / f"{i:05d}.txt").write_bytes(_text(file_bytes))
        info = {k: v.format(n=n) for k, v in DESCRIPTION.items()} | {"件数": str(files)}
        if checksums is None:
            bagit.make_bag(str(bag), info)
        else:
            bagit.make_bag(str(bag), info, checksums=checksums)
        bags.append(bag)
    return bags


def _bagit_validate(bag: Path, processes: int) -> float:
    # bagit's own Bag.validate; for SM3 bags through the subclass that finds their
    # manifests (bagit alone finds none), which changes nothing else.
    from archives.bag_reader import _Sm3Bag

    started = time.perf_counter()
    _Sm3Bag(str(bag)).validate(processes=processes)
    return time.perf_counter() - started


def _our_validate(bag: Path) -> float:
    from archives.bag_reader import read_bag

    started = time.perf_counter()
    read_bag(bag, processes=2).require_valid()
    return time.perf_counter() - started


def _our_ingest(bag: Path, store_dir: Path) -> float:
    from archives.ingest import ingest
    from archives.store import LocalArchiveStore

    shutil.rmtree(store_dir, ignore_errors=True)
    store = LocalArchiveStore(store_dir)
    started = time.perf_counter()
    ingest(bag, store, now=datetime.now(UTC), processes=2)
    elapsed = time.perf_counter() - started
    shutil.rmtree(store_dir, ignore_errors=True)
    return elapsed


SHAPES = {
    "many small files": (2, 2000, 4),
    "mixed": (4, 100, 512),
    "few large files": (2, 4, 32 * 1024),
}
"""Bag shapes: name -> (bags, files per bag, KiB per file)."""

QUICK_SHAPES = {
    "many small files": (1, 500, 4),
    "mixed": (2, 50, 256),
    "few large files": (1, 2, 8 * 1024),
}


def bench_ingest(
    folder: Path, shape: tuple[int, int, int], rounds: int, checksums: list[str] | None
) -> dict[str, Any]:
    count, files, kib = shape
    bags = make_bags(folder / "bags", count, files, kib * 1024, checksums)
    payload = count * files * kib * 1024
    runs: dict[str, list[float]] = {
        "bagit_validate_1_process": [],
        "bagit_validate_2_processes": [],
        "ours_validate": [],
        "ours_ingest": [],
    }
    for _ in range(rounds):
        for name in runs:
            total = 0.0
            for bag in bags:
                if name == "bagit_validate_1_process":
                    total += _bagit_validate(bag, 1)
                elif name == "bagit_validate_2_processes":
                    total += _bagit_validate(bag, 2)
                elif name == "ours_validate":
                    total += _our_validate(bag)
                else:
                    total += _our_ingest(bag, folder / "store")
            runs[name].append(total)
    shutil.rmtree(folder, ignore_errors=True)
    medians = {name: statistics.median(times) for name, times in runs.items()}
    return {
        "bags": count,
        "files_per_bag": files,
        "kib_per_file": kib,
        "payload_mib": payload / 2**20,
        "manifests": "+".join(checksums or ["sha256", "sha512"]),
        "seconds": runs,
        "mib_per_second_median": {name: payload / 2**20 / t for name, t in medians.items()},
        "ingest_vs_bagit_1": medians["bagit_validate_1_process"] / medians["ours_ingest"],
        "ingest_vs_bagit_2": medians["bagit_validate_2_processes"] / medians["ours_ingest"],
        "validate_vs_bagit_1": medians["bagit_validate_1_process"] / medians["ours_validate"],
    }


def algorithm_rates(rounds: int) -> dict[str, float]:
    """Single-core hashlib MiB/s of each algorithm over 64 MiB in memory (best of
    ``rounds``): what bounds a validation whatever its file handling."""
    data = os.urandom(64 * 2**20)
    rates = {}
    for name in ("sha256", "sha512", "sm3", "md5"):
        best = float("inf")
        for _ in range(rounds):
            hasher = hashlib.new(name)
            started = time.perf_counter()
            for i in range(0, len(data), 2**20):
                hasher.update(data[i : i + 2**20])
            best = min(best, time.perf_counter() - started)
        rates[name] = 64 / best
    return rates


def ingest_bound(rates: dict[str, float], bagit_algorithms: list[str]) -> float:
    """The best ingest / bagit (1 process) ratio hashing alone allows: bagit pays its
    algorithms once per byte on one core; ours pays them and SM3 on two cores, with nothing
    else counted (no I/O, no copy, no 四性 check, perfect scaling)."""
    theirs = sum(1 / rates[name] for name in bagit_algorithms)
    ours = sum(1 / rates[name] for name in {*bagit_algorithms, "sm3"})
    return 2 * theirs / ours


def make_store(root: Path, files: int, total_bytes: int, packages: int) -> int:
    """A store of ``packages`` package versions holding ``files`` files and about
    ``total_bytes`` bytes, written directly (the entries are hashed once); returns bytes."""
    from archives.hashing import sm3_hex
    from archives.package import ManifestEntry, package_root
    from archives.store import PackageVersion

    average = max(1, total_bytes // files)
    block = _text(4 * average + 4096)
    written = 0
    per_package = files // packages
    for p in range(packages):
        package_id = f"{p:032x}"
        bag = root / package_id / "v1" / "bag" / "data"
        bag.mkdir(parents=True)
        entries = []
        for i in range(per_package):
            size = average // 2 + (i * 7919) % average
            start = (i * 131) % (len(block) - size)
            data = block[start : start + size]
            (bag / f"{i:06d}.txt").write_bytes(data)
            entries.append(ManifestEntry(f"data/{i:06d}.txt", sm3_hex(data), size))
            written += size
        version = PackageVersion(
            package_id=package_id,
            version=1,
            entries=tuple(entries),
            root=package_root(entries),
            description={},
            report_sm3="0" * 64,
        )
        (root / package_id / "v1" / "package.json").write_text(json.dumps(version.to_json()))
    return written


def _descendants() -> list[int]:
    """The processes this one started, and theirs (the audit's workers)."""
    own = os.getpid()
    return [pid for pid in process_tree(own) if pid != own]


class RssSampler(threading.Thread):
    """Samples this process and its children (the audit's workers) every 0.1 s from
    /proc: the peak VmHWM of each, and the peak of their summed VmRSS. (ru_maxrss would
    not do: a process started by fork and exec keeps the RSS its parent had at the fork
    as its own maximum.)"""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.own = 0.0
        self.workers: dict[int, float] = {}
        self.together = 0.0

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.sample()

    def sample(self) -> None:
        self.own = max(self.own, status_mib(os.getpid(), "VmHWM"))
        total = status_mib(os.getpid(), "VmRSS")
        for pid in _descendants():
            self.workers[pid] = max(self.workers.get(pid, 0.0), status_mib(pid, "VmHWM"))
            total += status_mib(pid, "VmRSS")
        self.together = max(self.together, total)


def _audit_child(store_dir: str, checkpoint: str, queue: Any) -> None:
    from archives.audit import audit_store
    from archives.store import LocalArchiveStore

    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    result = audit_store(LocalArchiveStore(Path(store_dir)), Path(checkpoint), processes=2)
    elapsed = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    sampler.sample()
    queue.put(
        {
            "seconds": elapsed,
            "files": result.files,
            "bytes": result.bytes,
            "ok": result.ok,
            "peak_rss_mb_audit_process": sampler.own,
            "peak_rss_mb_largest_worker": max(sampler.workers.values(), default=0.0),
            "peak_rss_mb_audit_and_workers_together": sampler.together,
            "workers_seen": len(sampler.workers),
            "ru_maxrss_mb_audit_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def bench_audit(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    store = folder / "audit-store"
    started = time.perf_counter()
    written = make_store(store, args.audit_files, int(args.audit_gib * 2**30), args.audit_packages)
    generated = time.perf_counter() - started
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_audit_child, args=(str(store), str(folder / "ckpt"), queue))
    child.start()
    outcome: dict[str, Any] = queue.get()
    child.join()
    outcome.update(
        {
            "generated_files": args.audit_files,
            "generated_gib": written / 2**30,
            "generation_seconds": generated,
            "mib_per_second": outcome["bytes"] / 2**20 / outcome["seconds"],
        }
    )
    shutil.rmtree(store, ignore_errors=True)
    return outcome


def _single_core(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        hasher = hashlib.new("sm3")
        with path.open("rb") as stream:
            while block := stream.read(1024 * 1024):
                hasher.update(block)
    return time.perf_counter() - started


def _timed_hash(root: str, paths: list[str]) -> tuple[list[tuple[str, str, int]], float]:
    from archives.hashing import hash_files

    started = time.process_time()
    result = hash_files(root, paths)
    return result, time.process_time() - started


def _pool(paths: list[Path], pool: ProcessPoolExecutor) -> tuple[float, float]:
    """Wall seconds for the audit's hashing (archives.hashing.hash_files) of ``paths`` on
    the pool, one file a task, and the CPU seconds its workers spent."""
    started = time.perf_counter()
    results = list(pool.map(_timed_hash, [str(p.parent) for p in paths], [[p.name] for p in paths]))
    return time.perf_counter() - started, sum(cpu for _, cpu in results)


def bench_sm3(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    directory = folder / "sm3"
    directory.mkdir()
    paths = []
    for i in range(args.sm3_files):
        path = directory / f"{i}.bin"
        path.write_bytes(os.urandom(args.sm3_file_mib * 2**20))
        paths.append(path)
    total = args.sm3_files * args.sm3_file_mib
    _single_core(paths)  # into the page cache
    single: list[float] = []
    single_cpu: list[float] = []
    parallel: list[float] = []
    parallel_cpu: list[float] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        _pool(paths[:2], pool)  # start the workers
        for _ in range(args.rounds):
            cpu = time.process_time()
            single.append(_single_core(paths))
            single_cpu.append(time.process_time() - cpu)
            wall, workers = _pool(paths, pool)
            parallel.append(wall)
            parallel_cpu.append(workers)
    return {
        "mib": total,
        "single_core_mib_per_second": total / statistics.median(single),
        "two_processes_mib_per_second": total / statistics.median(parallel),
        "ratio": statistics.median(single) / statistics.median(parallel),
        "cores_used_by_the_pool": statistics.median(
            cpu / wall for cpu, wall in zip(parallel_cpu, parallel, strict=True)
        ),
        "single_core_mib_per_cpu_second": total / statistics.median(single_cpu),
        "pool_mib_per_cpu_second": total / statistics.median(parallel_cpu),
        "seconds": {"single": single, "pool": parallel},
        "cpu_seconds": {"single": single_cpu, "pool_workers": parallel_cpu},
    }


def _ingest_lines(name: str, ingest: dict[str, Any], bound: float) -> list[tuple[str, float, str]]:
    rates = ingest["mib_per_second_median"]
    shape = f"{ingest['bags']}x{ingest['files_per_bag']} files of {ingest['kib_per_file']} KiB"
    return [
        (f"[{name}: {shape}, {ingest['manifests']}] MiB", ingest["payload_mib"], ""),
        (
            "  bagit validate, 1 process (bagit.py --validate) MiB/s",
            rates["bagit_validate_1_process"],
            "",
        ),
        ("  bagit validate, 2 processes MiB/s", rates["bagit_validate_2_processes"], ""),
        ("  ours: validate (+SM3, one read, 2 processes) MiB/s", rates["ours_validate"], ""),
        ("  ours: whole ingest MiB/s", rates["ours_ingest"], ""),
        (
            "  ingest / bagit 1 process (same run)",
            ingest["ingest_vs_bagit_1"],
            f"{GOAL_INGEST_RATIO}",
        ),
        ("  ingest / bagit 2 processes (same run)", ingest["ingest_vs_bagit_2"], ""),
        ("  validate / bagit 1 process (same run)", ingest["validate_vs_bagit_1"], ""),
        ("  hashing-only bound of ingest / bagit 1 process", bound, ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--audit-files", type=int, default=100_000)
    parser.add_argument("--audit-gib", type=float, default=2.0)
    parser.add_argument("--audit-packages", type=int, default=10)
    parser.add_argument("--sm3-files", type=int, default=16)
    parser.add_argument("--sm3-file-mib", type=int, default=16)
    parser.add_argument("--skip-audit", action="store_true")
    parser.add_argument("--only-audit", action="store_true")
    parser.add_argument(
        "--only-sm3", action="store_true", help="only SM3 across both cores (a quiet minute)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
        args.audit_files, args.audit_gib, args.sm3_files, args.sm3_file_mib = 10_000, 0.2, 8, 8
    load_at_start = os.getloadavg()
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average_at_start": load_at_start,
        "bagit": subprocess.run(
            [sys.executable, "-c", "import bagit; print(bagit.VERSION)"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
    }
    lines: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-archives-") as name:
        folder = Path(name)
        if not args.only_audit and not args.only_sm3:
            rates = results["algorithm_mib_per_second"] = algorithm_rates(args.rounds)
            lines += [
                (f"hashlib {name}, one core, in memory MiB/s", rate, "")
                for name, rate in rates.items()
            ]
            shapes = QUICK_SHAPES if args.quick else SHAPES
            results["ingest"] = {}
            for name, shape in shapes.items():
                for checksums in (None, ["sm3"]):
                    key = f"{name}, {'+'.join(checksums or ['sha256', 'sha512'])}"
                    measured = bench_ingest(folder / "ingest", shape, args.rounds, checksums)
                    bound = ingest_bound(rates, checksums or ["sha256", "sha512"])
                    measured["hashing_bound_vs_bagit_1"] = bound
                    results["ingest"][key] = measured
                    lines += _ingest_lines(name, measured, bound)
                    print(
                        f"... {key}: ingest / bagit {measured['ingest_vs_bagit_1']:.2f}", flush=True
                    )
        if not args.only_audit:
            results["sm3"] = bench_sm3(folder, args)
            sm3 = results["sm3"]
            lines += [
                ("SM3 single core hashlib MiB/s", sm3["single_core_mib_per_second"], ""),
                ("SM3 audit pool, 2 processes MiB/s", sm3["two_processes_mib_per_second"], ""),
                ("SM3 2 processes / single core (same run)", sm3["ratio"], f"{GOAL_PARALLEL_SM3}"),
                ("  cores the pool got (worker CPU s / wall s)", sm3["cores_used_by_the_pool"], ""),
                ("  single core MiB per CPU second", sm3["single_core_mib_per_cpu_second"], ""),
                ("  pool MiB per worker CPU second", sm3["pool_mib_per_cpu_second"], ""),
            ]
        if not args.skip_audit and not args.only_sm3:
            audit = results["audit"] = bench_audit(folder, args)
            lines += [
                (
                    f"audit {audit['files']:,} files {audit['generated_gib']:.2f} GiB: MiB/s",
                    audit["mib_per_second"],
                    "",
                ),
                (
                    "  peak RSS audit process MB",
                    audit["peak_rss_mb_audit_process"],
                    f"{GOAL_AUDIT_RSS_MB}",
                ),
                ("  peak RSS largest worker MB", audit["peak_rss_mb_largest_worker"], ""),
                (
                    "  peak RSS audit process + workers together MB",
                    audit["peak_rss_mb_audit_and_workers_together"],
                    f"{GOAL_AUDIT_RSS_MB}",
                ),
            ]
    load_at_end = os.getloadavg()
    results["load_average_at_end"] = load_at_end
    out = RESULTS.with_name("archives_sm3.json") if args.only_sm3 else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False), "utf-8")
    print(f"load average at start {load_at_start[0]:.2f}, at end {load_at_end[0]:.2f} (2 cores)")
    print(f"{'measurement':<66}{'value':>10}{'goal':>8}")
    for label, value, goal in lines:
        print(f"{label:<66}{value:>10,.2f}{goal:>8}")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
