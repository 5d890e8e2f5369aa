"""Benchmark of what the registry's outer boundary and its canonical JSON cost per request,
against what the request costs anyway, measured in the same run.

- Boundary check (``registry.boundary.BoundedRequests``: UTF-8, depth scan, strict parse only
  where a value could lack a canonical form) of a verify body, of bulk notarization bodies of
  100 and 1,000 records, and of a 400,000-level nesting bomb (refused), next to
  ``json.loads`` of the same bytes — the parse FastAPI does after it.
- Canonical JSON of a typical record's metadata: RFC 8785 (``sdk.canonical``, fast path),
  the general walk (a float in it), and version 1 (sorted ``json.dumps``); and the intake
  check of ``registry.schemas`` (depth, strict encoding, size).

Run: ``.venv/bin/python bench/bench_boundary.py [--rounds R]``. Prints a table, writes
``bench/results/boundary.json``. Each figure is the median over R rounds of the mean of a
batch of calls (``time.perf_counter``), all in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.crypto import sm3
from chain.limits import MIB
from registry.boundary import BoundedRequests
from registry.schemas import check_canonical_json
from sdk.canonical import canonical_json, legacy_canonical_json

RESULTS = Path(__file__).resolve().parent / "results" / "boundary.json"

METADATA = {
    "department": "区行政审批局",
    "case": 12345,
    "title": "建设工程规划许可证",
    "date": "2024-03-15",
    "items": [1, 2, 3],
    "urgent": False,
}
"""A typical record's metadata."""


def bulk_body(records: int) -> bytes:
    """A bulk notarization body of ``records`` records, as the SDK sends it."""
    items = [
        {
            "digest": sm3(index.to_bytes(4, "big")).hex(),
            "metadata": {**METADATA, "case": index},
            "metadata_salt": os.urandom(16).hex(),
            "department_signature": "MEUCIQ" + "A" * 90,
        }
        for index in range(records)
    ]
    return json.dumps({"records": items}).encode()


def per_call(function: Callable[[], Any], rounds: int, batch: int) -> float:
    """Median over ``rounds`` of the mean seconds per call of ``batch`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batch):
            function()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    boundary = BoundedRequests(lambda *_: None, max_body_bytes=8 * MIB)  # type: ignore[arg-type]
    bodies = {
        "verify body": json.dumps({"digest": sm3(b"document").hex()}).encode(),
        "bulk, 100 records": bulk_body(100),
        "bulk, 1,000 records": bulk_body(1_000),
    }
    rows: list[dict[str, Any]] = []
    for name, body in bodies.items():
        assert boundary._check_json(body) is None
        batch = max(1, 200_000 // len(body))
        check = per_call(partial(boundary._check_json, body), args.rounds, batch)
        parse = per_call(partial(json.loads, body), args.rounds, batch)
        rows.append(
            {
                "what": f"boundary check, {name}",
                "bytes": len(body),
                "seconds": check,
                "json_loads_seconds": parse,
                "ratio_to_json_loads": check / parse,
            }
        )
    bomb = b"[" * 400_000 + b"]" * 400_000
    refusal = boundary._check_json(bomb)
    assert refusal is not None and refusal.reason == "too_deep"
    seconds = per_call(lambda: boundary._check_json(bomb), args.rounds, 1)
    rows.append(
        {
            "what": "boundary refusal, 400,000-level bomb",
            "bytes": len(bomb),
            "seconds": seconds,
            "json_loads_seconds": None,
            "ratio_to_json_loads": None,
        }
    )
    with_float = {**METADATA, "area_m2": 1234.5}
    legacy = per_call(lambda: legacy_canonical_json(METADATA), args.rounds, 2_000)
    for name, function in (
        ("version 1 (sorted json.dumps)", None),
        ("RFC 8785, typical metadata", lambda: canonical_json(METADATA)),
        ("RFC 8785, metadata with a float", lambda: canonical_json(with_float)),
        ("intake check of the metadata", lambda: check_canonical_json(METADATA)),
    ):
        seconds = legacy if function is None else per_call(function, args.rounds, 2_000)
        rows.append(
            {
                "what": name,
                "bytes": len(canonical_json(METADATA)),
                "seconds": seconds,
                "json_loads_seconds": None,
                "ratio_to_json_loads": None,
                "ratio_to_version_1": seconds / legacy,
            }
        )
    print(f"{'what':<45} {'bytes':>9} {'µs':>10} {'× json.loads':>13} {'× v1':>6}")
    for row in rows:
        loads = row.get("ratio_to_json_loads")
        v1 = row.get("ratio_to_version_1")
        print(
            f"{row['what']:<45} {row['bytes']:>9} {row['seconds'] * 1e6:>10.1f} "
            f"{'' if loads is None else f'{loads:.2f}':>13} {'' if v1 is None else f'{v1:.2f}':>6}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "load_average": os.getloadavg(),
                "rounds": args.rounds,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
