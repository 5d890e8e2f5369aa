"""Benchmark the data gateway: reads under authorization, each decided and logged.

Run by hand: ``.venv/bin/python bench/bench_data_gateway.py [--quick] [--workers N]
[--reads N] [--rounds R] [--concurrency C] [--rate R] [--rate-seconds S]``.

One run starts a lianxin dev node and the registry (uvicorn, ``--workers`` API processes)
as real processes on 127.0.0.1, deploys the trust contracts, issues one license, and has an
enterprise grant a department access to its metadata. Then, with requests signed before
the clock starts (the department's SM2 cost is not measured; the registry's is: one
signature check per request and one signature per log entry):

- gated reads per second, closed loop over ``--concurrency`` keep-alive connections: each
  read checks the seven rules, appends a signed, hash-chained log entry, stores the record
  that anchors it, and answers the data with its receipt;
- p50/p99 latency at a fixed offered rate (open loop, latency from each request's due
  time);
- access log entry → anchored: p50/p99 from an entry's record being stored to its batch's
  anchoring being confirmed, from the database, for the entries of the open-loop phase.

Each figure is the median over ``--rounds``. Prints a table, writes
``bench/results/data_gateway.json`` and reports each goal as met or missed. The machine's
load average is printed beside the figures: other processes share the cores.

With ``--profile``, one more closed-loop round runs while py-spy (on PATH, or installed
under ``bench/.peers/`` by :func:`peers.ensure_py_spy`) samples the registry's processes; the
raw profile and a flame graph go to ``bench/results/data_gateway_profile/`` and the table
gives the share of CPU samples by component (crypto, database, HTTP stack, gateway code…).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "bench"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import peers  # noqa: E402
from bench_registry import (  # noqa: E402
    CLIENT_USCC,
    DEPARTMENT_USCC,
    background,
    free_port,
    lianxin,
    load,
    load_at_rate,
    percentile,
    registry_server,
    signed_raw,
    wait_http,
)
from proc_tree import process_tree  # noqa: E402
from sqlalchemy import select  # noqa: E402

from chain.crypto import PrivateKey  # noqa: E402
from registry.authorizations.models import AccessLogRow  # noqa: E402
from registry.bootstrap import bootstrap  # noqa: E402
from registry.chain_gateway import ChainGateway  # noqa: E402
from registry.cli import add_client  # noqa: E402
from registry.db import Database  # noqa: E402
from registry.department_keys import register_department_key  # noqa: E402
from registry.models import Batch, Record  # noqa: E402
from registry.settings import RegistrySettings  # noqa: E402
from sdk.account import Sm2Account  # noqa: E402
from sdk.chain_reader import ChainUnavailable, RpcCallFailed  # noqa: E402
from sdk.data_client import DataClient  # noqa: E402
from sdk.identifiers import make_license_identifier  # noqa: E402
from sdk.trust import TrustClient  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "data_gateway.json"
RECIPIENT_USCC = "11350102MB00010016"
ENTERPRISE_USCC = "91350102MA2Y0001X6"
PURPOSE = "approval.food-business-license"
GOALS = {"reads_per_s": 2_000.0, "p99_ms_at_rate": 20.0, "anchor_p50_s": 2.0}
PROFILE_DIR = ROOT / "bench" / "results" / "data_gateway_profile"

IDLE = "waiting (lock, queue, selector)"
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (IDLE, ("threading.py", "queue.py", "selectors.py", "(time.sleep)", "concurrent/futures")),
    ("SM2/SM3/SM4 crypto", ("chain/crypto/", "gmssl", "registry/data_vault.py")),
    ("database (SQLAlchemy + driver)", ("sqlalchemy/", "sqlite3", "psycopg")),
    ("JSON + canonical encoding", ("json/", "sdk/commitments.py")),
    ("request authentication + nonce", ("registry/auth.py", "registry/intake.py", "sdk/trust")),
    ("gateway decision + log", ("registry/authorizations/", "authorizations/")),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", (
        "uvicorn", "starlette", "fastapi", "pydantic", "h11", "httptools", "anyio",
    )),
    ("asyncio", ("asyncio/",)),
)  # fmt: skip
"""Components of the registry, each recognised by markers in a py-spy frame; a sample
belongs to the innermost frame that carries one."""


def license_body() -> dict[str, Any]:
    return {
        "identifier": make_license_identifier(CLIENT_USCC + "032", CLIENT_USCC, "BENCH1", "001"),
        "license_name": "食品经营许可证",
        "holder_name": "福建示例科技有限公司",
        "holder_id_type": "uscc",
        "holder_id": ENTERPRISE_USCC,
        "issuer_name": "bench",
        "issue_date": "2024-03-15",
        "valid_from": "2024-03-15",
        "valid_until": "2099-03-14",
        "license_number": "JY13501000012345",
        "content": [{"name": "经营项目", "value": "预包装食品销售"}],
    }


def read_requests(
    key: PrivateKey, client_id: str, authorization_id: str, license_id: str, count: int
) -> list[bytes]:
    payload = {
        "authorization_id": authorization_id,
        "item": "license.metadata",
        "purpose": PURPOSE,
        "resource": license_id,
    }
    return [signed_raw(key, client_id, "POST", "/v1/data/read", payload) for _ in range(count)]


def anchoring_latencies(db: Database, since_seq: int, timeout_s: float) -> list[float]:
    """Seconds from each log record's storing to its batch's anchoring, for entries after
    ``since_seq``, once all are anchored (or the timeout passed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with db.read_session() as session:
            rows = session.execute(
                select(Record.created_at, Batch.anchored_at)
                .join(AccessLogRow, AccessLogRow.record_id == Record.id)
                .outerjoin(Batch, Record.batch_id == Batch.id)
                .where(AccessLogRow.seq > since_seq)
            ).all()
        if all(anchored is not None for _, anchored in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    latencies = []
    for created, anchored in rows:
        if anchored is None:
            continue
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        anchored = anchored if anchored.tzinfo else anchored.replace(tzinfo=UTC)
        latencies.append((anchored - created).total_seconds())
    return sorted(latencies)


def last_seq(db: Database) -> int:
    with db.read_session() as session:
        return int(
            session.scalar(select(AccessLogRow.seq).order_by(AccessLogRow.seq.desc()).limit(1)) or 0
        )


def classify_stack(frames: Sequence[str]) -> str:
    """The component of the innermost frame that belongs to a known one."""
    for frame in reversed(frames):
        for category, markers in PROFILE_CATEGORIES:
            if any(marker in frame for marker in markers):
                return category
    return "other"


def profile_breakdown(raw_profile: str) -> dict[str, Any]:
    """Shares of CPU samples by component, overall and per thread, from py-spy's
    ``--format raw --threads`` output."""
    shares: Counter[str] = Counter()
    by_thread: dict[str, Counter[str]] = {}
    unclassified: Counter[str] = Counter()
    for line in raw_profile.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        category = classify_stack(frames)
        shares[category] += int(count_text)
        if category == "other":
            unclassified[frames[-1]] += int(count_text)
        thread = next((frame for frame in frames if frame.startswith("thread")), "thread ?")
        by_thread.setdefault(thread.split("): ", 1)[-1], Counter())[category] += int(count_text)
    total = sum(shares.values()) or 1
    return {
        "samples": sum(shares.values()),
        "percent": {name: 100 * n / total for name, n in shares.most_common()},
        "samples_by_thread": {name: sum(c.values()) for name, c in by_thread.items()},
        "top_unclassified_frames": dict(unclassified.most_common(8)),
    }


def server_pid(port: int) -> int:
    """The pid of the registry process started on ``port`` (from /proc)."""
    wanted = ["registry.cli", "start", "--port", str(port)]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\x00")
        except OSError:
            continue
        if all(part in argv for part in wanted):
            return int(entry.name)
    raise RuntimeError(f"no registry process on port {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its descendants so far, those that
    ended included (from /proc; load moves it less than wall-clock rates). Each process
    counts its own time and its waited-for children's (``cutime``, ``cstime``): a worker
    that ends during a round (uvicorn's, or a process the registry started) is counted
    through its parent instead of dropping out of the sum."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), here from the state on.
        total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def closed_round(port: int, pid: int, requests: list[bytes], concurrency: int, limit: float) -> Any:
    """One closed-loop round, with the registry's CPU time per answered read."""
    before = cpu_seconds(pid)
    figures: dict[str, Any] = asyncio.run(load(port, requests, concurrency, limit))
    figures["cpu_ms_per_read"] = 1000 * (cpu_seconds(pid) - before) / max(figures["requests"], 1)
    return figures


def record_profile(
    py_spy: Path,
    pid: int,
    fmt: str,
    out: Path,
    workload: Callable[[], Any],
    *,
    gil: bool = False,
) -> Any:
    """Run ``workload`` while py-spy samples process ``pid`` (CPU, every thread; with
    ``gil``, only the thread holding the GIL) into ``out``; returns what the workload
    returned."""
    command = [str(py_spy), "record", "--pid", str(pid), "--format", fmt, "--output", str(out)]
    command += ["--rate", "200", "--nonblocking", "--threads", "--subprocesses"]
    if gil:
        command.append("--gil")
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        result = workload()
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
    if not out.exists():
        raise RuntimeError(f"py-spy wrote no {out.name} (ptrace not permitted?)")
    return result


def profile_reads(
    port: int, requests: list[bytes], concurrency: int, limit: float, *, gil: bool = False
) -> Any:
    """One closed-loop round sampled by py-spy twice over (raw for the breakdown, then a
    flame graph); the breakdown and the round's figures. With ``gil``, only the thread
    holding the GIL is sampled: the Python work that one process's interpreter does one
    thread at a time, without the waits."""
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    py_spy = peers.ensure_py_spy()
    pid = server_pid(port)
    half = len(requests) // 2
    raw = PROFILE_DIR / "registry_profile.txt"
    figures = record_profile(
        py_spy,
        pid,
        "raw",
        raw,
        lambda: asyncio.run(load(port, requests[:half], concurrency, limit)),
        gil=gil,
    )
    record_profile(
        py_spy,
        pid,
        "flamegraph",
        PROFILE_DIR / "registry_profile.svg",
        lambda: asyncio.run(load(port, requests[half:], concurrency, limit)),
        gil=gil,
    )
    return {"round": figures, **profile_breakdown(raw.read_text(encoding="utf-8"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=6_000, help="reads per closed-loop round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop reads/s")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1, help="registry API processes")
    parser.add_argument("--batch-interval", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    parser.add_argument(
        "--profile", action="store_true", help="sample the registry with py-spy (one more round)"
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL",
    )
    parser.add_argument(
        "--closed-only",
        action="store_true",
        help="closed-loop rounds only (no offered rate, no anchoring figures): CPU per read",
    )
    args = parser.parse_args()
    if args.quick:
        args.reads, args.rounds, args.rate_seconds = 2_000, 1, 4.0

    work = Path(tempfile.mkdtemp(prefix="bench-data-gateway-"))
    chain_dir, rpc_port, api_port = work / "chain", free_port(), free_port()
    lianxin("init", str(chain_dir), "--dev", "--rpc-port", str(rpc_port), "--json")
    load_before = os.getloadavg()
    node_command = ["lianxin", "node", "start", "--dir", str(chain_dir), "--log-level", "WARNING"]
    node_command[0] = str(Path(sys.executable).with_name("lianxin"))
    with background(node_command, work / "node.log") as node:
        node_url = f"http://127.0.0.1:{rpc_port}"
        wait_http(node_url, node, "the node")
        settings = RegistrySettings(
            data_dir=work / "registry",
            node_url=node_url,
            signer_keystore=chain_dir / "keys" / "dept-a.json",
            signer_password_file=chain_dir / "keystore-password",
            batch_interval=args.batch_interval,
        )
        db = Database.open(settings)
        gateway = ChainGateway(settings, db)
        governance = Sm2Account.from_keystore(
            (chain_dir / "keys" / "admin.json").read_bytes(), settings.signer_password()
        )
        for attempt in range(5):
            # A loaded machine's node may time out estimating the deployments; nothing is
            # sent before the estimate, so trying again is safe.
            try:
                bootstrap(
                    gateway, governance, uscc=DEPARTMENT_USCC, department_name="某区大数据管理局"
                )
                break
            except (ChainUnavailable, RpcCallFailed):
                if attempt == 4:
                    raise
                time.sleep(5)
        controller_key = PrivateKey.generate()
        register_department_key(
            gateway,
            governance,
            uscc=CLIENT_USCC,
            department_name="bench",
            public_key=controller_key.public_key.to_bytes(),
        )
        gateway.close()
        keys = {"recipient": PrivateKey.generate(), "enterprise": PrivateKey.generate()}
        controller = add_client(
            db, name="bench", uscc=CLIENT_USCC,
            public_key_pem=controller_key.public_key.to_pem(), roles=["licenses"],
        )  # fmt: skip
        recipient = add_client(
            db, name="recipient", uscc=RECIPIENT_USCC,
            public_key_pem=keys["recipient"].public_key.to_pem(), roles=["data"],
        )  # fmt: skip
        enterprise = add_client(
            db, name="enterprise", uscc=ENTERPRISE_USCC,
            public_key_pem=keys["enterprise"].public_key.to_pem(), roles=["subject"],
        )  # fmt: skip
        with registry_server(
            settings, api_port, work / "registry.log", workers=args.workers
        ) as base:
            with TrustClient(base, controller.id, controller_key) as licensing:
                license_id = licensing.issue_license(license_body()).identifier
            with (
                DataClient(base, recipient.id, keys["recipient"]) as department,
                DataClient(base, enterprise.id, keys["enterprise"]) as owner,
            ):
                _key, chain_id = owner.registry_facts()
                now = int(time.time())
                asked = department.request_authorization(
                    subject_kind="enterprise", subject_id=ENTERPRISE_USCC,
                    controller=CLIENT_USCC, recipient=RECIPIENT_USCC,
                    items=["license.metadata"], purpose=PURPOSE, legal_basis="consent",
                    valid_from=now - 60, valid_until=now + 86_400,
                )  # fmt: skip
                authorization_id = owner.grant(asked, chain_id=chain_id).id
            pid = server_pid(api_port)
            closed: list[dict[str, Any]] = []
            paced: list[dict[str, Any]] = []
            anchored: list[float] = []
            for _ in range(args.rounds):
                requests = read_requests(
                    keys["recipient"], recipient.id, authorization_id, license_id, args.reads
                )
                closed.append(
                    closed_round(api_port, pid, requests, args.concurrency, args.time_limit)
                )
                if args.closed_only:
                    continue
                since = last_seq(db)
                count = int(args.rate * args.rate_seconds)
                requests = read_requests(
                    keys["recipient"], recipient.id, authorization_id, license_id, count
                )
                paced.append(
                    asyncio.run(load_at_rate(api_port, requests, args.rate, args.concurrency))
                )
                anchored.extend(anchoring_latencies(db, since, timeout_s=60.0))
            profile = None
            if args.profile:
                requests = read_requests(
                    keys["recipient"], recipient.id, authorization_id, license_id, 2 * args.reads
                )
                profile = profile_reads(
                    api_port, requests, args.concurrency, args.time_limit, gil=args.profile_gil
                )
    anchored.sort()

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    figures = {
        "reads_per_s": statistics.median(r["per_s"] for r in closed),
        "closed_p50_ms": statistics.median(r["p50_ms"] for r in closed),
        "closed_p99_ms": statistics.median(r["p99_ms"] for r in closed),
        "cpu_ms_per_read": statistics.median(r["cpu_ms_per_read"] for r in closed),
        "p50_ms_at_rate": median([r["p50_ms"] for r in paced]),
        "p99_ms_at_rate": median([r["p99_ms"] for r in paced]),
        "achieved_per_s_at_rate": median([r["per_s"] for r in paced]),
        "anchor_p50_s": percentile(anchored, 0.50),
        "anchor_p99_s": percentile(anchored, 0.99),
        "anchored_entries": len(anchored),
    }
    statuses: dict[str, int] = {}
    for result in closed + paced:
        for status, n in result["statuses"].items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    rows = [
        ("gated reads with logging (closed loop)", f"{figures['reads_per_s']:,.0f} /s",
         f">= {GOALS['reads_per_s']:,.0f} /s", figures["reads_per_s"] >= GOALS["reads_per_s"]),
        (f"p99 at {args.rate:.0f} reads/s offered", f"{figures['p99_ms_at_rate']:.1f} ms",
         f"<= {GOALS['p99_ms_at_rate']:.0f} ms",
         figures["p99_ms_at_rate"] <= GOALS["p99_ms_at_rate"]),
        ("access log entry -> anchored, p50", f"{figures['anchor_p50_s']:.2f} s",
         f"<= {GOALS['anchor_p50_s']:.0f} s", figures["anchor_p50_s"] <= GOALS["anchor_p50_s"]),
    ]  # fmt: skip
    print(f"\nregistry API processes: {args.workers}")
    print(f"load average before: {load_before}, after: {os.getloadavg()}")
    print(f"{'figure':<42} {'measured':>14} {'goal':>12}  met")
    for name, value, goal, met in rows:
        print(f"{name:<42} {value:>14} {goal:>12}  {'yes' if met else 'NO'}")
    print(
        f"closed-loop p50/p99 {figures['closed_p50_ms']:.1f}/{figures['closed_p99_ms']:.1f} ms, "
        f"registry CPU {figures['cpu_ms_per_read']:.2f} ms per read; "
        f"at rate p50 {figures['p50_ms_at_rate']:.1f} ms, achieved "
        f"{figures['achieved_per_s_at_rate']:.0f}/s; anchoring p99 {figures['anchor_p99_s']:.2f} s "
        f"over {figures['anchored_entries']} entries; statuses {statuses}"
    )
    print(
        "registry CPU ms per read by closed-loop round: "
        + ", ".join(f"{r['cpu_ms_per_read']:.3f}" for r in closed)
    )
    if profile is not None:
        print(
            f"\nregistry profile over {profile['samples']} CPU samples "
            f"({profile['round']['per_s']:,.0f} reads/s while sampled), by component:"
        )
        for name, share in profile["percent"].items():
            print(f"  {name:<52} {share:5.1f} %")
        print(f"  samples by thread: {profile['samples_by_thread']}")
        print(f"  raw profile and flame graph in {PROFILE_DIR}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "load_average_before": load_before,
                "arguments": vars(args),
                "figures": figures,
                "goals": GOALS,
                "statuses": statuses,
                "rounds": {"closed": closed, "paced": paced},
                "profile": profile,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
