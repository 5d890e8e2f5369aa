"""Where request handlers run blocking work (database reads and writes, SM2 checks, chain
calls): one thread pool per registry process, entered through :func:`run_blocking`.

It is asyncio's own ``run_in_executor`` on a pool sized like Starlette's default (40
threads, so a slow node cannot take every thread), without the per-call bookkeeping of
``starlette.concurrency.run_in_threadpool``: half the cost per hop here, and a verify
request makes two."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

POOL_THREADS = 40
"""Threads of the pool."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="registry-io")
        return _pool


async def run_blocking(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` on the pool, awaited without blocking the loop."""
    call = functools.partial(function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)
