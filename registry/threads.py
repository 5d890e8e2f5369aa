"""Where request handlers run blocking work (database reads and writes, SM2 checks, chain
calls): one thread pool per registry process, entered through :func:`run_blocking`.

It is asyncio's own ``run_in_executor`` on a pool sized like Starlette's default (40
threads, so a slow node cannot take every thread), without the per-call bookkeeping of
``starlette.concurrency.run_in_threadpool``: half the cost per hop here, and a verify
request makes two.

Verification (``POST /v1/verify``) is mostly Python work that holds the GIL: forty threads
of it at once spend their time handing the GIL to each other. It runs on a pool of its own
(:func:`run_verifying`, :data:`VERIFY_THREADS` threads). Measured with
``bench/bench_registry.py --workers 2`` on a quiet machine, a different record per request:
485–523 → 572 requests/s, and p99 at 500 requests/s offered 383–430 → 189 ms. A slow node
then holds up only verifications, each bounded by the chain client's timeout, never the rest
of the registry."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

POOL_THREADS = 40
"""Threads of the pool."""
VERIFY_THREADS = 4
"""Threads of the verification pool: a few more than the cores, so a verification waiting on
the database or the node does not leave a core idle."""

_pool: ThreadPoolExecutor | None = None
_verify_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="registry-io")
        return _pool


def _verify_executor() -> ThreadPoolExecutor:
    global _verify_pool
    with _pool_lock:
        if _verify_pool is None:
            _verify_pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="registry-verify")
        return _verify_pool


def start_threads(timeout_s: float = 10.0) -> None:
    """Start every thread of both pools now, as the registry starts, instead of on the first
    requests. A pool starts a thread when a call finds none idle, and ``Thread.start`` waits
    until the new thread runs, on the event loop that made the call: in the first seconds of
    traffic on a busy machine each such start held every request (once 70 ms at load 13).

    Each pool is given as many calls as it has threads, each waiting until all of them have
    begun, so that none can be served by a thread already started. A pool whose threads are
    busy elsewhere (a test process's earlier apps) is given up on after ``timeout_s``."""
    for executor, count in ((_executor(), POOL_THREADS), (_verify_executor(), VERIFY_THREADS)):
        barrier = threading.Barrier(count + 1, timeout=timeout_s)
        calls = [executor.submit(_wait_at, barrier) for _ in range(count)]
        _wait_at(barrier)
        for call in calls:
            call.result()


def _wait_at(barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()


async def run_blocking(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` on the pool, awaited without blocking the loop."""
    call = functools.partial(function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


async def run_verifying(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` on the verification pool (at most
    :data:`VERIFY_THREADS` at once), awaited without blocking the loop."""
    call = functools.partial(function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_verify_executor(), call)
