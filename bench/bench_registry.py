"""Benchmark the registry as department systems and citizens see it.

Run by hand: ``.venv/bin/python bench/bench_registry.py [--quick] [--records N] [--rounds R]
[--concurrency C] [--database-url URL]``.

One run starts a lianxin dev node (``lianxin init --dev``, ``lianxin node start``) and the
registry (``python -m registry.cli start``, uvicorn) as real processes on 127.0.0.1, deploys
the trust contracts (bootstrap) and registers one department client. Then:

- notarization: N signed ``POST /v1/records`` requests and bulk ``POST /v1/records/bulk``
  requests (signed before the clock starts, so the client's SM2 cost is not measured) sent
  by a lean client — raw HTTP/1.1 keep-alive connections over asyncio streams; records
  accepted per second;
- anchoring: bulk requests sent open loop at a fixed record rate, then accepted → anchored
  latency (p50, p99) of those records and their batch sizes, from the database;
- capacity: one anchor of 100,000 records (a registry with that batch size, fed in bulk);
- the citizen's verify page ``GET /v/{identifier}`` of one issued license, and
  ``POST /v1/verify`` of anchored records' digests (pre-signed; another record per request,
  and one record repeated): saturated requests per second (closed loop), and p50/p99 at a
  fixed offered rate (open loop, latency from each request's due time);
- offline proof-bundle verification (sdk.bundle.verify_bundle) per second, in process;
- what department signatures cost per record, in process: signing (the department), the
  intake check (the registry), the offline department link (a verifier) — for records signed
  one by one and for bulk requests signed once (over the Merkle root of their commitments).

Bulk intake is measured both ways in the same run, rounds interleaved: requests signed once
(what the SDK sends) and requests whose every record carries its own signature.
``--intake-only`` stops after the intake phases and the in-process costs. ``--only
bulk,paced`` (any of single, bulk, bulk-per-record, paced) runs those phases alone, with the
registry's CPU time per record (all its processes, and each: with ``--workers 2`` one of
them also seals and anchors) and its CPU per second with no request, and writes
``bench/results/registry_only.json``.

Each figure is the median over ``--rounds``. Prints a table, writes
``bench/results/registry.json`` and reports every goal as met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from chain.crypto import PrivateKey, sm3  # noqa: E402
from registry.bootstrap import bootstrap  # noqa: E402
from registry.chain_gateway import ChainGateway  # noqa: E402
from registry.cli import add_client  # noqa: E402
from registry.db import Database  # noqa: E402
from registry.department_keys import register_department_key  # noqa: E402
from registry.models import Batch, Client, Record  # noqa: E402
from registry.notarization import prepare_records  # noqa: E402
from registry.record_schemas import SignedRecordCreate  # noqa: E402
from registry.settings import RegistrySettings  # noqa: E402
from sdk.account import Sm2Account  # noqa: E402
from sdk.bundle import department_sign_bytes, verify_bundle  # noqa: E402
from sdk.bundle_links import check_department  # noqa: E402
from sdk.identifiers import make_license_identifier  # noqa: E402
from sdk.record_signing import commit_record, sign_record, sign_records  # noqa: E402
from sdk.trust import TrustClient, signed_headers  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "registry.json"
DEPARTMENT_USCC = "91350100M000100Y43"
CLIENT_USCC = "11100000000013338W"
START_TIMEOUT_S = 120.0

GOALS = {
    "records_accepted_per_s": (">=", 5_000),
    "records_per_anchor_tx": (">=", 100_000),
    "accepted_to_anchored_p50_s": ("<=", 2.0),
    "verify_page_req_per_s": (">=", 500),
    "verify_page_p99_ms": ("<=", 100),
    "verify_api_req_per_s": (">=", 500),
    "verify_api_p99_ms": ("<=", 100),
}
"""Figure → (comparison, goal)."""

ONLY_PHASES = {"single", "bulk", "bulk-per-record", "paced"}
"""Phases ``--only`` may name."""


# -- processes ---------------------------------------------------------------------------------


def lianxin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_lianxin_command(), *args], capture_output=True, text=True, check=True, timeout=120
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


@contextlib.contextmanager
def background(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# -- the lean load generator -------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: write a request, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def raw_request(
    method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 request's bytes."""
    headers = headers or {}
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def load(
    port: int, requests: Sequence[bytes], concurrency: int, time_limit_s: float
) -> dict[str, Any]:
    """Send ``requests`` over ``concurrency`` connections until done or the time limit;
    returns counts, rate and latency percentiles."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)
    started = time.perf_counter()
    deadline = started + time_limit_s

    async def worker() -> None:
        connection = await Connection.open(port)
        try:
            for raw in queue:
                if time.perf_counter() > deadline:
                    return
                sent = time.perf_counter()
                status = await connection.request(raw)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "statuses": statuses,
    }


async def load_at_rate(
    port: int, requests: Sequence[bytes], rate: float, connections: int
) -> dict[str, Any]:
    """Open loop: request ``i`` is due at ``i / rate`` seconds, whatever happened to the
    earlier ones, and its latency runs from when it was due (so a stalled server is not
    hidden by a client that waits for it: no coordinated omission). Up to ``connections``
    requests are in flight; one that finds none free waits for one, and that wait counts."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()

    async def one(raw: bytes, due: float) -> None:
        connection = await pool.get()
        try:
            status = await connection.request(raw)
        finally:
            pool.put_nowait(connection)
        latencies.append(time.perf_counter() - due)
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
    latencies.sort()
    return {
        "offered_per_s": rate,
        "requests": len(latencies),
        "seconds": elapsed,
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * latencies[-1],
        "statuses": statuses,
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


# -- phases --------------------------------------------------------------------------------------


def signed_raw(key: PrivateKey, client_id: str, method: str, path: str, payload: Any) -> bytes:
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = signed_headers(key, client_id=client_id, method=method, path=path, body=body)
    if payload is not None:
        headers["Content-Type"] = "application/json"
    return raw_request(method, path, body, headers)


def signed_record(key: PrivateKey, chain_id: int, name: str) -> dict[str, Any]:
    """The body of the record whose digest is SM3 of ``name``, salted and signed by the
    department (before any clock starts)."""
    return sign_record(key, chain_id, idempotency_key=name, digest=sm3(name.encode())).body


def notarization_round(
    port: int,
    key: PrivateKey,
    client_id: str,
    chain_id: int,
    records: int,
    concurrency: int,
    tag: str,
) -> dict[str, Any]:
    requests = [
        signed_raw(
            key, client_id, "POST", "/v1/records", signed_record(key, chain_id, f"{tag}-{i}")
        )
        for i in range(records)
    ]
    result = asyncio.run(load(port, requests, concurrency, time_limit_s=600))
    assert result["statuses"].get(202) == records, result["statuses"]
    return result


def bulk_body(
    key: PrivateKey, chain_id: int, names: Sequence[str], *, signed_once: bool
) -> dict[str, Any]:
    """The body of ``POST /v1/records/bulk`` of the records whose digests are SM3 of
    ``names``: signed once over the Merkle root of their commitments, or each on its own."""
    if not signed_once:
        return {"records": [signed_record(key, chain_id, name) for name in names]}
    committed = [
        commit_record(key, idempotency_key=name, digest=sm3(name.encode())) for name in names
    ]
    return sign_records(key, chain_id, committed).body()


def bulk_requests(
    key: PrivateKey,
    client_id: str,
    chain_id: int,
    count: int,
    size: int,
    tag: str,
    *,
    signed_once: bool = True,
) -> list[bytes]:
    """``count`` signed ``POST /v1/records/bulk`` requests of ``size`` department-signed
    records each (see :func:`bulk_body`); the digest of record ``i`` of request ``r`` is SM3
    of ``"<tag>-<r>-<i>"``."""
    return [
        signed_raw(
            key,
            client_id,
            "POST",
            "/v1/records/bulk",
            bulk_body(
                key, chain_id, [f"{tag}-{r}-{i}" for i in range(size)], signed_once=signed_once
            ),
        )
        for r in range(count)
    ]


def bulk_round(
    port: int,
    key: PrivateKey,
    client_id: str,
    chain_id: int,
    requests: int,
    size: int,
    concurrency: int,
    tag: str,
    *,
    signed_once: bool = True,
    server: int | None = None,
) -> dict[str, Any]:
    """``requests`` signed ``POST /v1/records/bulk`` of ``size`` digests each; records/s,
    and with ``server`` (the registry's pid) the CPU time its processes spent per record."""
    raws = bulk_requests(key, client_id, chain_id, requests, size, tag, signed_once=signed_once)
    before = None if server is None else process_cpu_s(server)
    result = asyncio.run(load(port, raws, concurrency, time_limit_s=600))
    assert result["statuses"].get(202) == requests, result["statuses"]
    result["records"] = requests * size
    result["records_per_s"] = requests * size / result["seconds"]
    if server is not None and before is not None:
        result.update(cpu_per_record(before, process_cpu_s(server), requests * size))
    return result


def wait_until_anchored(db: Database, timeout_s: float) -> bool:
    """Wait until no record waits for anchoring; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        with db.session() as session:
            waiting = session.scalar(select(Record.id).where(Record.status != "anchored").limit(1))
        if waiting is None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def anchoring_figures(
    db: Database, timeout_s: float, since: datetime | None = None
) -> dict[str, Any]:
    """Batch sizes and accepted → anchored latency of the records accepted since ``since``
    (all records if None), once every record is anchored."""
    deadline = time.monotonic() + timeout_s
    while True:
        with db.session() as session:
            waiting = session.scalar(select(Record.id).where(Record.status != "anchored").limit(1))
        if waiting is None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    with db.session() as session:
        query = select(Record.created_at, Batch.anchored_at, Batch.id).join(
            Batch, Record.batch_id == Batch.id
        )
        if since is not None:
            query = query.where(Record.created_at >= since)
        rows = session.execute(query).all()
        batch_ids = {batch_id for _, _, batch_id in rows}
        batches = session.scalars(select(Batch).where(Batch.id.in_(batch_ids))).all()
    delays = sorted(
        (anchored.replace(tzinfo=UTC) - created.replace(tzinfo=UTC)).total_seconds()
        for created, anchored, _ in rows
        if anchored is not None
    )
    sizes = [batch.leaf_count for batch in batches if batch.status == "anchored"]
    return {
        "batches": len(sizes),
        "records_per_anchor_tx_median": statistics.median(sizes) if sizes else 0,
        "records_per_anchor_tx_max": max(sizes, default=0),
        "accepted_to_anchored_p50_s": percentile(delays, 0.5),
        "accepted_to_anchored_p99_s": percentile(delays, 0.99),
        "all_anchored": waiting is None,
    }


def paced_notarization(
    port: int,
    db: Database,
    key: PrivateKey,
    client_id: str,
    chain_id: int,
    records_per_s: float,
    seconds: float,
    tag: str,
    server: int | None = None,
) -> dict[str, Any]:
    """Open-loop bulk notarization at ``records_per_s`` (requests of 250 records, 8
    connections) for ``seconds``; then the latency from acceptance to anchoring of exactly
    those records, and with ``server`` (the registry's pid) the CPU time its processes
    spent per record from the first request until every record was anchored."""
    size = 250
    count = max(1, int(records_per_s * seconds / size))
    raws = bulk_requests(key, client_id, chain_id, count, size, tag)
    since = datetime.now(UTC)
    before = None if server is None else process_cpu_s(server)
    sent = asyncio.run(load_at_rate(port, raws, records_per_s / size, 8))
    assert sent["statuses"].get(202) == count, sent["statuses"]
    figures = anchoring_figures(db, timeout_s=120, since=since)
    if server is not None and before is not None:
        figures.update(cpu_per_record(before, process_cpu_s(server), count * size))
    figures["offered_records_per_s"] = records_per_s
    figures["request_p50_ms"] = sent["p50_ms"]
    figures["request_p99_ms"] = sent["p99_ms"]
    return figures


def offline_verifications_per_s(
    bundle: Any, validators: Any, chain_id: int, seconds: float
) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        assert verify_bundle(bundle, validators, chain_id=chain_id).valid
        count += 1
    return count / (time.perf_counter() - started)


def department_signature_costs(
    key: PrivateKey, chain_id: int, bundle: Any, count: int = 500, bulk_size: int = 1_000
) -> dict[str, float]:
    """Microseconds per record, in process, of what department signatures add: the
    department salting, committing and signing a record (client side), the registry
    checking it at intake (recomputing the commitment and verifying the SM2 signature), and
    the offline department link of a bundle (one SM2 verification); and the same for a bulk
    request of ``bulk_size`` records signed once (client: salting and committing each, the
    Merkle tree, one signature; intake: recomputing each commitment, the tree and its
    paths, one verification)."""
    client = Client(
        id="bench", name="bench", uscc=CLIENT_USCC, public_key=key.public_key.to_bytes().hex()
    )
    started = time.perf_counter()
    bodies = [signed_record(key, chain_id, f"cost-{i}") for i in range(count)]
    sign_us = (time.perf_counter() - started) / count * 1e6
    payloads = [SignedRecordCreate(**body) for body in bodies]
    started = time.perf_counter()
    prepare_records(client, payloads, "cost", chain_id)
    check_us = (time.perf_counter() - started) / count * 1e6
    message = department_sign_bytes(chain_id, bytes(32))
    signature = key.sign(message)
    started = time.perf_counter()
    for _ in range(count):
        key.public_key.verify(signature, message)
    verify_us = (time.perf_counter() - started) / count * 1e6
    department = bundle.department
    assert department is not None and bundle.record.department_key is not None
    commitment = bundle.record.commitment()
    started = time.perf_counter()
    for _ in range(count):
        check_department(
            department,
            bundle.record.department_key,
            commitment,
            chain_id=chain_id,
            height=bundle.header.height,
            issuer_registry=bundle.issuer_key.issuer_registry,
        )
    link_us = (time.perf_counter() - started) / count * 1e6
    names = [f"cost-once-{i}" for i in range(bulk_size)]
    started = time.perf_counter()
    body = bulk_body(key, chain_id, names, signed_once=True)
    sign_once_us = (time.perf_counter() - started) / bulk_size * 1e6
    payloads = [SignedRecordCreate(**record) for record in body["records"]]
    started = time.perf_counter()
    prepare_records(
        client, payloads, "cost-once", chain_id, request_signature=body["department_signature"]
    )
    check_once_us = (time.perf_counter() - started) / bulk_size * 1e6
    return {
        "department_sign_us_per_record": sign_us,
        "department_sign_once_us_per_record": sign_once_us,
        "intake_check_us_per_record": check_us,
        "intake_check_once_us_per_record": check_once_us,
        "sm2_verify_us": verify_us,
        "offline_department_link_us_per_record": link_us,
    }


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants that
    are alive (Linux ``/proc``; 0 where it cannot be read)."""
    total, pending = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return total


def process_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by process ``pid`` and by each of its
    descendants that are alive, by pid (Linux ``/proc``)."""
    used: dict[int, float] = {}
    pending = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            used[current] = (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return used


def idle_cpu(pid: int, seconds: float) -> float:
    """CPU milliseconds per second that the registry (``pid`` and its descendants) spends
    over ``seconds`` with no request."""
    before = sum(process_cpu_s(pid).values())
    time.sleep(seconds)
    return 1e3 * (sum(process_cpu_s(pid).values()) - before) / seconds


def cpu_per_record(
    before: Mapping[int, float], after: Mapping[int, float], records: int
) -> dict[str, Any]:
    """The registry's CPU microseconds per record between two :func:`process_cpu_s`
    readings: all its processes together, and each (largest first; with ``--workers 2``
    one API process also runs the batcher and anchorer, so it spends more)."""
    spent = sorted((after[pid] - before.get(pid, 0.0) for pid in after), reverse=True)
    return {
        "registry_cpu_us_per_record": 1e6 * sum(spent) / max(records, 1),
        "registry_cpu_us_per_record_by_process": [1e6 * s / max(records, 1) for s in spent],
    }


def median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rounds))


@contextlib.contextmanager
def registry_server(
    settings: RegistrySettings,
    port: int,
    log: Path,
    pids: list[int] | None = None,
    **overrides: Any,
) -> Iterator[str]:
    """The registry as a real process (``python -m registry.cli start``) with ``settings``
    and ``overrides`` in its environment; yields its base URL once it answers (and appends
    its process id to ``pids`` if given)."""
    env = dict(os.environ)
    values = {**settings.model_dump(), **overrides}
    for name, value in values.items():
        if value is not None:
            env[f"LIANXIN_REGISTRY_{name.upper()}"] = str(value)
    command = [sys.executable, "-m", "registry.cli", "start", "--port", str(port)]
    with background(command, log, env) as registry:
        if pids is not None:
            pids.append(registry.pid)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/openapi.json").status_code == 200:
                    break
            if registry.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text())
            time.sleep(0.1)
        yield base


def capacity_round(
    settings: RegistrySettings,
    db: Database,
    key: PrivateKey,
    client_id: str,
    work: Path,
    records: int,
    bulk_size: int,
    workers: int,
    chain: tuple[Any, int],
) -> dict[str, Any]:
    """One anchor for ``records`` records: a registry whose batch holds ``records`` and
    whose interval is long, fed by bulk requests; the size trigger seals them at once."""
    port = free_port()
    with registry_server(
        settings,
        port,
        work / "registry-capacity.log",
        batch_size=records,
        batch_interval=600.0,
        workers=workers,
    ) as base:
        with db.session() as session:
            before = session.scalar(select(func.max(Batch.id))) or 0
        accepted = bulk_round(
            port,
            key,
            client_id,
            chain[1],
            records // bulk_size,
            bulk_size,
            4,
            f"cap{time.time()}",
        )
        last_accepted = time.time()
        anchored = wait_until_anchored(db, timeout_s=300)
        with db.session() as session:
            batch = session.scalars(select(Batch).where(Batch.id > before)).first()
            assert batch is not None and batch.anchored_at is not None
            leaf_count, root, tx_hash = batch.leaf_count, batch.root, batch.tx_hash
            sealed = batch.created_at.replace(tzinfo=UTC).timestamp()
            done = batch.anchored_at.replace(tzinfo=UTC).timestamp()
            record_id = session.scalar(
                select(Record.id).where(Record.batch_id == batch.id).order_by(Record.seq.desc())
            )
            created = session.scalars(
                select(Record.created_at).where(Record.batch_id == batch.id)
            ).all()
        waits = sorted(done - c.replace(tzinfo=UTC).timestamp() for c in created)
        trust = TrustClient(base, client_id, key, timeout=60)
        started = time.perf_counter()
        record = trust.wait_until_anchored(str(record_id), timeout=60)
        first_view_s = time.perf_counter() - started
        trust.close()
    assert record.bundle is not None
    validators, chain_id = chain
    verdict = verify_bundle(record.bundle, validators, chain_id=chain_id)
    return {
        "records": records,
        "all_anchored": anchored,
        "records_per_anchor_tx": leaf_count,
        "batch_root": root,
        "anchor_tx": tx_hash,
        "accept_records_per_s": accepted["records_per_s"],
        "last_accepted_to_sealed_s": sealed - last_accepted,
        "sealed_to_anchored_s": done - sealed,
        "accepted_to_anchored_p50_s": percentile(waits, 0.5),
        "first_bundle_view_s": first_view_s,
        "bundle_merkle_path_length": len(record.bundle.batch.proof.path),
        "bundle_verifies_offline": verdict.valid,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="single-record requests")
    parser.add_argument("--bulk-requests", type=int, default=40)
    parser.add_argument("--bulk-size", type=int, default=1_000)
    parser.add_argument("--capacity", type=int, default=100_000, help="records in one anchor")
    parser.add_argument("--paced-records", type=float, default=5_000.0, help="records/s")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--page-requests", type=int, default=5_000)
    parser.add_argument("--verify-requests", type=int, default=2_000)
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="registry API processes")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    parser.add_argument(
        "--intake-only", action="store_true", help="intake phases and in-process costs only"
    )
    parser.add_argument(
        "--verify-only",
        action="store_true",
        help="bulk intake of the records to verify, then POST /v1/verify only",
    )
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=None,
        help="comma-separated phases to run, then stop: single, bulk (signed once), "
        "bulk-per-record, paced (e.g. --only bulk,paced)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results)")
    args = parser.parse_args()
    if args.only is not None and not args.only <= ONLY_PHASES:
        parser.error(f"--only: phases are {', '.join(sorted(ONLY_PHASES))}")
    if args.quick:
        args.records, args.rounds, args.bulk_requests, args.capacity = 2_000, 1, 10, 20_000
        args.page_requests, args.verify_requests, args.rate_seconds = 1_000, 500, 4.0
        args.paced_seconds = 4.0

    work = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    chain_dir, rpc_port, api_port = work / "chain", free_port(), free_port()
    lianxin("init", str(chain_dir), "--dev", "--rpc-port", str(rpc_port), "--json")
    # Deploying the trust contracts is dry-run by eth_estimateGas, which the node stops after
    # call_timeout_ms (5 s): too short on a shared machine, and not what is measured here.
    config = chain_dir / "node.toml"
    config.write_text(config.read_text() + "call_timeout_ms = 60000\n")
    node_command = [*_lianxin_command(), "node", "start", "--dir", str(chain_dir)]
    load_average = os.getloadavg()
    with background([*node_command, "--log-level", "WARNING"], work / "node.log") as node:
        node_url = f"http://127.0.0.1:{rpc_port}"
        wait_http(node_url, node, "the node")
        settings = RegistrySettings(
            data_dir=work / "registry",
            database_url=args.database_url,
            node_url=node_url,
            signer_keystore=chain_dir / "keys" / "dept-a.json",
            signer_password_file=chain_dir / "keystore-password",
            batch_interval=1.0,
        )
        db = Database.open(settings)
        gateway = ChainGateway(settings, db)
        governance = Sm2Account.from_keystore(
            (chain_dir / "keys" / "admin.json").read_bytes(), settings.signer_password()
        )
        bootstrap(gateway, governance, uscc=DEPARTMENT_USCC, department_name="某区大数据管理局")
        validators, chain_id = gateway.validator_set(), gateway.chain_id()
        key = PrivateKey.generate()
        # The department's key in IssuerRegistry: its signed records' bundles verify.
        register_department_key(
            gateway,
            governance,
            uscc=CLIENT_USCC,
            department_name="bench",
            public_key=key.public_key.to_bytes(),
        )
        gateway.close()
        client = add_client(
            db,
            name="bench",
            uscc=CLIENT_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=["notarize", "verify", "licenses"],
        )
        server_pids: list[int] = []
        with registry_server(
            settings, api_port, work / "registry.log", server_pids, workers=args.workers
        ) as base:
            phases = args.only or ONLY_PHASES
            notarize = [
                notarization_round(
                    api_port, key, client.id, chain_id, args.records, args.concurrency, f"r{r}"
                )
                for r in range(0 if args.verify_only or "single" not in phases else args.rounds)
            ]
            bulk: list[dict[str, Any]] = []
            bulk_per_record: list[dict[str, Any]] = []
            for r in range(args.rounds):
                # Interleaved, in alternating order, so that load changes touch both alike.
                ways = [
                    (True, bulk, f"b{r}", "bulk"),
                    (False, bulk_per_record, f"p{r}", "bulk-per-record"),
                ]
                ways = [way for way in ways if way[3] in phases]
                if args.verify_only:
                    ways = ways[:1]  # the records to verify
                for signed_once, rounds, tag, _ in ways if r % 2 == 0 else ways[::-1]:
                    rounds.append(
                        bulk_round(
                            api_port,
                            key,
                            client.id,
                            chain_id,
                            args.bulk_requests,
                            args.bulk_size,
                            4,
                            tag,
                            signed_once=signed_once,
                            server=server_pids[0],
                        )
                    )
            for once, each in zip(bulk, bulk_per_record, strict=False):
                once["vs_signed_per_record"] = once["records_per_s"] / each["records_per_s"]
            if args.only is not None:
                anchoring = None
                if "paced" in phases:
                    wait_until_anchored(db, timeout_s=120)
                    anchoring = paced_notarization(
                        api_port,
                        db,
                        key,
                        client.id,
                        chain_id,
                        args.paced_records,
                        args.paced_seconds,
                        "paced",
                        server=server_pids[0],
                    )
                # What the registry spends with no request at all (its background loops),
                # which every per-record figure includes for as long as a phase lasts;
                # measured once it has settled (right after start it is still warming up).
                wait_until_anchored(db, timeout_s=120)
                idle_cpu_ms_per_s = idle_cpu(server_pids[0], 5.0)
                report_only(
                    args,
                    load_average,
                    notarize,
                    bulk,
                    bulk_per_record,
                    anchoring,
                    idle_cpu_ms_per_s,
                )
                return
            if args.verify_only:
                assert wait_until_anchored(db, timeout_s=300), "records not anchored"
                trust = TrustClient(base, client.id, key, timeout=30)
                verify_runs = verify_phase(args, api_port, key, client.id, trust, server_pids[0])
                trust.close()
                report_verify(args, load_average, verify_runs)
                return
            if args.intake_only:
                trust = TrustClient(base, client.id, key, timeout=30)
                accepted = trust.notarize(digest=sm3(b"bench intake"))
                record = trust.wait_until_anchored(accepted.record_id, timeout=120)
                trust.close()
                assert record.bundle is not None
                costs = [
                    department_signature_costs(
                        key, chain_id, record.bundle, bulk_size=args.bulk_size
                    )
                    for _ in range(args.rounds)
                ]
                report_intake(args, load_average, notarize, bulk, bulk_per_record, costs)
                return
            saturated_anchoring = anchoring_figures(db, timeout_s=120)
            anchoring = paced_notarization(
                api_port,
                db,
                key,
                client.id,
                chain_id,
                args.paced_records,
                args.paced_seconds,
                "paced",
            )

            trust = TrustClient(base, client.id, key, timeout=30)
            identifier = make_license_identifier(CLIENT_USCC + "032", CLIENT_USCC, "BENCH1", "001")
            trust.issue_license(
                {
                    "identifier": identifier,
                    "license_name": "食品经营许可证",
                    "holder_name": "福建示例科技有限公司",
                    "holder_id_type": "uscc",
                    "holder_id": DEPARTMENT_USCC,
                    "issue_date": "2024-03-15",
                    "valid_from": "2024-03-15",
                    "valid_until": None,
                }
            )
            page_request = raw_request("GET", f"/v/{identifier}")
            pages = [
                asyncio.run(
                    load(api_port, [page_request] * args.page_requests, 32, args.time_limit)
                )
                for _ in range(args.rounds)
            ]
            paced = int(args.rate * args.rate_seconds)
            pages_at_rate = [
                asyncio.run(load_at_rate(api_port, [page_request] * paced, args.rate, 64))
                for _ in range(args.rounds)
            ]
            runs = verify_phase(args, api_port, key, client.id, trust, server_pids[0])
            verifies, verifies_at_rate = runs["verify_api"], runs["verify_api_at_rate"]
            same_record = runs["verify_same_record"]
            same_record_at_rate = runs["verify_same_record_at_rate"]
            record = runs["record"]
            trust.close()
            assert record.bundle is not None
            offline = [
                offline_verifications_per_s(record.bundle, validators, chain_id, 2.0)
                for _ in range(args.rounds)
            ]
            costs = [
                department_signature_costs(key, chain_id, record.bundle, bulk_size=args.bulk_size)
                for _ in range(args.rounds)
            ]
        capacity = capacity_round(
            settings,
            db,
            key,
            client.id,
            work,
            args.capacity,
            args.bulk_size,
            args.workers,
            (validators, chain_id),
        )
    db.close()

    figures = {
        "records_accepted_per_s": median_of(bulk, "records_per_s"),
        "records_accepted_per_s_signed_per_record": median_of(bulk_per_record, "records_per_s"),
        "bulk_signed_once_vs_per_record": median_of(bulk, "vs_signed_per_record"),
        "records_accepted_per_s_single": median_of(notarize, "per_s"),
        "records_accept_p50_ms_single": median_of(notarize, "p50_ms"),
        "records_accept_p99_ms_single": median_of(notarize, "p99_ms"),
        "bulk_request_p50_ms": median_of(bulk, "p50_ms"),
        "records_per_anchor_tx": capacity["records_per_anchor_tx"],
        "capacity_sealed_to_anchored_s": capacity["sealed_to_anchored_s"],
        "capacity_accepted_to_anchored_p50_s": capacity["accepted_to_anchored_p50_s"],
        "records_per_anchor_tx_paced": anchoring["records_per_anchor_tx_median"],
        "accepted_to_anchored_p50_s": anchoring["accepted_to_anchored_p50_s"],
        "accepted_to_anchored_p99_s": anchoring["accepted_to_anchored_p99_s"],
        "accepted_to_anchored_p50_s_saturated": saturated_anchoring["accepted_to_anchored_p50_s"],
        "verify_page_req_per_s": median_of(pages, "per_s"),
        "verify_page_p99_ms_saturated": median_of(pages, "p99_ms"),
        "verify_page_p50_ms": median_of(pages_at_rate, "p50_ms"),
        "verify_page_p99_ms": median_of(pages_at_rate, "p99_ms"),
        **verify_figures(runs),
        "offline_bundle_verifications_per_s": float(statistics.median(offline)),
        **{name: median_of(costs, name) for name in costs[0]},
    }
    goals = {}
    for name, (comparison, goal) in GOALS.items():
        value = figures[name]
        met = value >= goal if comparison == ">=" else value <= goal
        goals[name] = {"goal": f"{comparison} {goal}", "value": value, "met": met}

    print(
        f"registry workers: {args.workers}; database: "
        f"{'postgresql' if args.database_url else 'sqlite'}; load average at start: "
        f"{load_average[0]:.2f}; open-loop rate {args.rate:.0f}/s for {args.rate_seconds:.0f} s"
    )
    print(f"{'figure':40} {'median':>14}  goal")
    for name, value in figures.items():
        reached = goals.get(name)
        mark = (
            ""
            if reached is None
            else f"{reached['goal']:>12}  {'met' if reached['met'] else 'MISSED'}"
        )
        print(f"{name:40} {value:14.2f}  {mark}")
    out = args.out or RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "figures": figures,
                "goals": goals,
                "runs": {
                    "notarization_single": notarize,
                    "notarization_bulk": bulk,
                    "notarization_bulk_signed_per_record": bulk_per_record,
                    "anchoring_paced": anchoring,
                    "anchoring_saturated": saturated_anchoring,
                    "capacity": capacity,
                    "verify_page": pages,
                    "verify_page_at_rate": pages_at_rate,
                    "verify_api": verifies,
                    "verify_api_at_rate": verifies_at_rate,
                    "verify_same_record": same_record,
                    "verify_same_record_at_rate": same_record_at_rate,
                    "offline_per_s": offline,
                    "department_signature_costs": costs,
                },
                "parameters": vars(args),
                "database": "postgresql" if args.database_url else "sqlite",
                "load_average_at_start": load_average,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out}")


def verify_phase(
    args: argparse.Namespace,
    port: int,
    key: PrivateKey,
    client_id: str,
    trust: TrustClient,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """``POST /v1/verify`` rounds, once every bulk record of ``b<round>`` is anchored: per
    round, saturated (closed loop) and at ``--rate`` (open loop), another record per request
    and one record repeated; with ``server_pid``, also the registry's CPU time per request
    (all its processes: the figure the shared machine's load disturbs least). Returns the
    runs by name, and the repeated record."""
    accepted = trust.notarize(digest=sm3(b"bench verify"))
    record = trust.wait_until_anchored(accepted.record_id, timeout=60)
    # Every request of a round asks about another record (all anchored by now), so
    # per-record caches do not flatter the figures; the "same record" rows show a
    # record verified again and again (a popular license, say).
    population = [
        f"b{r}-{q}-{i}"
        for r in range(args.rounds)
        for q in range(args.bulk_requests)
        for i in range(args.bulk_size)
    ]
    picker = random.Random(20261127)

    def verify_requests(count: int, same: bool) -> list[bytes]:
        names = picker.sample(population, min(count, len(population)))
        return [
            signed_raw(
                key,
                client_id,
                "POST",
                "/v1/verify",
                {"digest": accepted.digest if same else sm3(name.encode()).hex()},
            )
            for name in names
        ]

    paced = int(args.rate * args.rate_seconds)
    runs: dict[str, Any] = {
        name: []
        for name in (
            "verify_api",
            "verify_api_at_rate",
            "verify_same_record",
            "verify_same_record_at_rate",
        )
    }

    def measured(run: Any) -> dict[str, Any]:
        before = None if server_pid is None else tree_cpu_s(server_pid)
        result: dict[str, Any] = asyncio.run(run)
        if before is not None and server_pid is not None:
            used = tree_cpu_s(server_pid) - before
            result["server_cpu_ms_per_request"] = 1000 * used / max(1, result["requests"])
        return result

    for _ in range(args.rounds):
        for same, name in ((False, "verify_api"), (True, "verify_same_record")):
            requests = verify_requests(args.verify_requests, same)
            runs[name].append(measured(load(port, requests, 32, args.time_limit)))
            requests = verify_requests(paced, same)
            runs[f"{name}_at_rate"].append(measured(load_at_rate(port, requests, args.rate, 64)))
    runs["record"] = record
    return runs


def verify_figures(runs: dict[str, Any]) -> dict[str, float]:
    """The ``POST /v1/verify`` figures (medians over rounds) of :func:`verify_phase` runs."""
    cpu = {
        "verify_api_server_cpu_ms_per_request": "verify_api",
        "verify_same_record_server_cpu_ms_per_request": "verify_same_record",
    }
    return {
        **{
            figure: median_of(runs[name], "server_cpu_ms_per_request")
            for figure, name in cpu.items()
            if all("server_cpu_ms_per_request" in run for run in runs[name])
        },
        "verify_api_req_per_s": median_of(runs["verify_api"], "per_s"),
        "verify_api_p99_ms_saturated": median_of(runs["verify_api"], "p99_ms"),
        "verify_api_p50_ms": median_of(runs["verify_api_at_rate"], "p50_ms"),
        "verify_api_p99_ms": median_of(runs["verify_api_at_rate"], "p99_ms"),
        "verify_same_record_req_per_s": median_of(runs["verify_same_record"], "per_s"),
        "verify_same_record_p50_ms": median_of(runs["verify_same_record_at_rate"], "p50_ms"),
        "verify_same_record_p99_ms": median_of(runs["verify_same_record_at_rate"], "p99_ms"),
    }


def report_verify(
    args: argparse.Namespace, load_average: tuple[float, float, float], runs: dict[str, Any]
) -> None:
    """Print and write the figures of a ``--verify-only`` run, with the load before and
    after (the machine is shared: compare runs made back to back, as ratios)."""
    figures = verify_figures(runs)
    load_after = os.getloadavg()
    print(
        f"registry workers: {args.workers}; database: "
        f"{'postgresql' if args.database_url else 'sqlite'}; load average at start "
        f"{load_average[0]:.2f}, at end {load_after[0]:.2f}; verify only, {args.rounds} rounds; "
        f"open-loop rate {args.rate:.0f}/s for {args.rate_seconds:.0f} s"
    )
    print(f"{'figure':40} {'median':>14}  goal")
    for name, value in figures.items():
        goal = GOALS.get(name)
        mark = ""
        if goal is not None:
            met = value >= goal[1] if goal[0] == ">=" else value <= goal[1]
            mark = f"{goal[0] + ' ' + str(goal[1]):>12}  {'met' if met else 'MISSED'}"
        print(f"{name:40} {value:14.2f}  {mark}")
    print("per round, another record each request (req/s saturated, p99 ms at rate, server CPU")
    print("ms per request saturated):")
    for saturated, at_rate in zip(runs["verify_api"], runs["verify_api_at_rate"], strict=True):
        cpu = saturated.get("server_cpu_ms_per_request", float("nan"))
        print(f"  {saturated['per_s']:8.1f} {at_rate['p99_ms']:8.1f} {cpu:8.2f}")
    out = args.out or RESULTS.with_name("registry_verify.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "figures": figures,
                "runs": {name: value for name, value in runs.items() if name != "record"},
                "parameters": vars(args),
                "load_average_at_start": load_average,
                "load_average_at_end": load_after,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out}")


def report_intake(
    args: argparse.Namespace,
    load_average: tuple[float, float, float],
    notarize: list[dict[str, Any]],
    bulk: list[dict[str, Any]],
    bulk_per_record: list[dict[str, Any]],
    costs: list[dict[str, float]],
) -> None:
    """Print and write the intake figures of an ``--intake-only`` run."""
    figures = {
        "records_accepted_per_s": median_of(bulk, "records_per_s"),
        "records_accepted_per_s_signed_per_record": median_of(bulk_per_record, "records_per_s"),
        "bulk_signed_once_vs_per_record": median_of(bulk, "vs_signed_per_record"),
        "bulk_request_p50_ms": median_of(bulk, "p50_ms"),
        "bulk_request_p50_ms_signed_per_record": median_of(bulk_per_record, "p50_ms"),
        "records_accepted_per_s_single": median_of(notarize, "per_s"),
        **{name: median_of(costs, name) for name in costs[0]},
    }
    print(
        f"registry workers: {args.workers}; database: "
        f"{'postgresql' if args.database_url else 'sqlite'}; load average at start: "
        f"{load_average[0]:.2f}; intake only, {args.rounds} rounds"
    )
    print(f"{'figure':44} {'median':>14}")
    for name, value in figures.items():
        print(f"{name:44} {value:14.2f}")
    print("per round, bulk records/s signed once vs per record:")
    for once, each in zip(bulk, bulk_per_record, strict=True):
        print(
            f"  {once['records_per_s']:10.0f} {each['records_per_s']:10.0f}  "
            f"{once['vs_signed_per_record']:.2f}x"
        )
    out = RESULTS.with_name("registry_intake.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "figures": figures,
                "runs": {
                    "notarization_single": notarize,
                    "notarization_bulk": bulk,
                    "notarization_bulk_signed_per_record": bulk_per_record,
                    "department_signature_costs": costs,
                },
                "parameters": vars(args),
                "load_average_at_start": load_average,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out}")


def report_only(
    args: argparse.Namespace,
    load_average: tuple[float, float, float],
    notarize: list[dict[str, Any]],
    bulk: list[dict[str, Any]],
    bulk_per_record: list[dict[str, Any]],
    anchoring: dict[str, Any] | None,
    idle_cpu_ms_per_s: float | None = None,
) -> None:
    """Print and write the figures of an ``--only`` run: the phases it ran, each bulk
    round's records/s and the registry's CPU per record (by process), and the paced
    phase's accepted → anchored latency."""
    figures: dict[str, float] = {}
    if idle_cpu_ms_per_s is not None:
        figures["registry_idle_cpu_ms_per_s"] = idle_cpu_ms_per_s
    if notarize:
        figures["records_accepted_per_s_single"] = median_of(notarize, "per_s")
    for name, rounds in (("", bulk), ("_signed_per_record", bulk_per_record)):
        if rounds:
            figures[f"records_accepted_per_s{name}"] = median_of(rounds, "records_per_s")
            figures[f"bulk_request_p50_ms{name}"] = median_of(rounds, "p50_ms")
            figures[f"bulk_registry_cpu_us_per_record{name}"] = median_of(
                rounds, "registry_cpu_us_per_record"
            )
    if anchoring is not None:
        for name in (
            "accepted_to_anchored_p50_s",
            "accepted_to_anchored_p99_s",
            "records_per_anchor_tx_median",
            "request_p50_ms",
            "request_p99_ms",
            "registry_cpu_us_per_record",
        ):
            figures[f"paced_{name}"] = float(anchoring[name])
    load_at_end = os.getloadavg()
    print(
        f"registry workers: {args.workers}; database: "
        f"{'postgresql' if args.database_url else 'sqlite'}; load average at start "
        f"{load_average[0]:.2f}, at end {load_at_end[0]:.2f}; phases "
        f"{','.join(sorted(args.only))}, {args.rounds} rounds"
    )
    print(f"{'figure':44} {'median':>14}")
    for name, value in figures.items():
        print(f"{name:44} {value:14.2f}")
    for name, rounds in (("signed once", bulk), ("signed per record", bulk_per_record)):
        for index, run in enumerate(rounds):
            by_process = " ".join(
                f"{us:.0f}" for us in run["registry_cpu_us_per_record_by_process"]
            )
            print(
                f"bulk {name} round {index}: {run['records_per_s']:.0f} records/s, "
                f"registry CPU {run['registry_cpu_us_per_record']:.0f} us/record "
                f"(by process: {by_process})"
            )
    if anchoring is not None:
        by_process = " ".join(
            f"{us:.0f}" for us in anchoring["registry_cpu_us_per_record_by_process"]
        )
        print(f"paced: registry CPU per record by process (us): {by_process}")
    out = args.out or RESULTS.with_name("registry_only.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "figures": figures,
                "runs": {
                    "notarization_single": notarize,
                    "notarization_bulk": bulk,
                    "notarization_bulk_signed_per_record": bulk_per_record,
                    "anchoring_paced": anchoring,
                },
                "parameters": {**vars(args), "only": sorted(args.only)},
                "load_average_at_start": load_average,
                "load_average_at_end": load_at_end,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out}")


def _lianxin_command() -> list[str]:
    script = Path(sys.executable).parent / "lianxin"
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]


if __name__ == "__main__":
    main()
