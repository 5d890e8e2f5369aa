"""The node's Prometheus metrics, served at ``/metrics`` on the JSON-RPC port to loopback
clients only (scrape on the host, or through a local agent; every other client gets 403).

Most values are read at scrape time from the running node (so a scrape costs nothing between
scrapes); what must be observed as it happens is recorded by a block listener (commit latency,
block interval) and by a timing wrapper around every JSON-RPC method (latency and errors by
method; refusals of ``eth_sendRawTransaction`` by code are the mempool's refusals).

=====================================  ========  ==============================================
name                                   type      what
=====================================  ========  ==============================================
lianxin_head_height                    gauge     height of the last committed block
lianxin_consensus_height / _round      gauge     height and round being decided (consensus)
lianxin_consensus_step                 gauge     1 for the current step label, 0 for the others
lianxin_seconds_since_last_commit      gauge     since this node last committed a block
lianxin_commit_latency_seconds         histogram block timestamp → committed here
lianxin_block_interval_seconds         histogram between two commits on this node
lianxin_peers                          gauge     configured peers by state (connected/missing)
lianxin_mempool_transactions           gauge     transactions waiting
lianxin_p2p_frames_total               counter   frames by direction and kind
lianxin_p2p_frame_bytes_total          counter   payload bytes by direction and kind
lianxin_p2p_events_total               counter   refusals, drops and closes by reason
lianxin_consensus_events_total         counter   the driver's counters (malformed, rejected…)
lianxin_wal_bytes                      gauge     size of the consensus WAL
lianxin_store_bytes                    gauge     size of the LMDB block store file
lianxin_rpc_request_seconds            histogram JSON-RPC latency by method
lianxin_rpc_errors_total               counter   JSON-RPC errors by method and code
=====================================  ========  ==============================================
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from chain.consensus import Step
from node.rpc.errors import RpcError, refusal_error

if TYPE_CHECKING:
    from node.daemon import Node
    from node.ledger import CommittedBlock

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

Handler = Callable[[list[Any]], Awaitable[Any]]


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class NodeMetrics(Collector):
    """The metrics of one node, in a registry of its own."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=False)
        self.commit_latency = Histogram(
            "lianxin_commit_latency_seconds",
            "From a block's timestamp to its commit on this node",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.block_interval = Histogram(
            "lianxin_block_interval_seconds",
            "Between two successive commits on this node",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rpc_latency = Histogram(
            "lianxin_rpc_request_seconds",
            "JSON-RPC request latency by method",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=self.registry,
        )
        self.rpc_errors = Counter(
            "lianxin_rpc_errors",
            "JSON-RPC errors by method and code",
            ["method", "code"],
            registry=self.registry,
        )
        self._last_commit = time.monotonic()
        self.registry.register(self)

    # -- observed as it happens ----------------------------------------------------------

    def on_block(self, committed: CommittedBlock) -> None:
        """Block listener: record commit latency and the interval since the last commit."""
        now = time.monotonic()
        self.block_interval.observe(now - self._last_commit)
        self._last_commit = now
        stamp = committed.block.header.timestamp_ms / 1000
        self.commit_latency.observe(max(0.0, time.time() - stamp))

    def timed(self, method: str, handler: Handler) -> Handler:
        """``handler`` with its latency and errors recorded under ``method``. A method's
        series appear on its first call, so a scrape carries only the methods in use."""
        histogram = self.rpc_latency
        latency: Any = None

        async def run(params: list[Any]) -> Any:
            nonlocal latency
            if latency is None:
                latency = histogram.labels(method)
            start = time.perf_counter()
            try:
                return await handler(params)
            except Exception as exc:
                error = exc if isinstance(exc, RpcError) else refusal_error(exc)
                code = "internal" if error is None else str(int(error.code))
                self.rpc_errors.labels(method, code).inc()
                raise
            finally:
                latency.observe(time.perf_counter() - start)

        return run

    # -- read at scrape time -------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        node = self.node
        ledger, driver, mempool = node.ledger, node.driver, node.mempool
        if ledger is not None:
            yield _gauge("lianxin_head_height", "Last committed height", ledger.head.height)
        yield _gauge(
            "lianxin_seconds_since_last_commit",
            "Seconds since this node last committed a block (or started)",
            time.monotonic() - self._last_commit,
        )
        if mempool is not None:
            yield _gauge("lianxin_mempool_transactions", "Transactions waiting", len(mempool))
        yield _gauge("lianxin_wal_bytes", "Consensus WAL size", _file_size(node.config.wal_path))
        yield _gauge(
            "lianxin_store_bytes",
            "LMDB block store file size",
            _file_size(node.config.data_dir / "blocks" / "data.mdb"),
        )
        if driver is None:
            return
        state = driver.state
        yield _gauge("lianxin_consensus_height", "Height being decided", state.height)
        yield _gauge("lianxin_consensus_round", "Round being decided", state.round)
        steps = GaugeMetricFamily(
            "lianxin_consensus_step", "1 for the current step", labels=["step"]
        )
        for step in Step:
            steps.add_metric([step.name.lower()], 1 if step is state.step else 0)
        yield steps
        network = driver.network
        infos = network.peer_info()
        peers = GaugeMetricFamily("lianxin_peers", "Configured peers by state", labels=["state"])
        peers.add_metric(["connected"], sum(1 for info in infos if info.connected))
        peers.add_metric(["missing"], sum(1 for info in infos if not info.connected))
        yield peers
        yield _labelled_counter(
            "lianxin_p2p_frames", "p2p frames", ["direction", "kind"], network.frames
        )
        yield _labelled_counter(
            "lianxin_p2p_frame_bytes",
            "p2p payload bytes",
            ["direction", "kind"],
            network.frame_bytes,
        )
        yield _labelled_counter(
            "lianxin_p2p_events",
            "p2p refusals, drops and closes by reason",
            ["reason"],
            {(reason,): count for reason, count in network.counters.items()},
        )
        yield _labelled_counter(
            "lianxin_consensus_events",
            "Consensus driver counters by name",
            ["name"],
            {(name,): count for name, count in driver.counters.items()},
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled_counter(
    name: str, documentation: str, labels: list[str], values: Any
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, count in sorted(values.items()):
        family.add_metric(list(key), count)
    return family


def _loopback(remote: str | None) -> bool:
    if remote is None:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def metrics_handler(metrics: NodeMetrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler of ``GET /metrics`` (loopback clients only)."""

    async def handle(request: web.Request) -> web.Response:
        if not _loopback(request.remote):
            return web.Response(status=403, text="metrics are served to loopback clients only\n")
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
