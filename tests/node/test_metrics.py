"""The node's /metrics on an in-process dev node: scraped over HTTP and parsed with
prometheus-client's own parser, its values move as blocks are committed, JSON-RPC calls are
timed by method, and the mempool's refusals are counted by their error code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from node_harness import (
    RpcClient,
    RpcFailure,
    make_chain,
    make_config,
    raw_hex,
    running_node,
    send_and_wait,
    signed_tx,
)
from prometheus_client.parser import text_string_to_metric_families

from chain.primitives import Address
from contracts.artifacts import load_artifact

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(session: aiohttp.ClientSession, url: str) -> Samples:
    """Every sample of one scrape, by name and labels."""
    async with session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a labelled series not created yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_node_metrics_move_as_blocks_are_committed(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with (
            running_node(chain, make_config(tmp_path)) as (_node, client),
            aiohttp.ClientSession() as session,
        ):
            metrics_url = client.url.rstrip("/") + "/metrics"
            before = await scrape(session, metrics_url)
            deploy = signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
            receipt = await send_and_wait(client, deploy)
            assert receipt["status"] == "0x1"
            anchor = Address(bytes.fromhex(receipt["contractAddress"][2:]))
            call = signed_tx(chain.sender, to=anchor, data=b"\x00" * 4, gas_limit=100_000)
            await send_and_wait(client, call)
            refusals = await _refused_sends(client, [raw_hex(call)])
            after = await scrape(session, metrics_url)

            head = value(after, "lianxin_head_height")
            assert head == int(await client.call("eth_blockNumber"), 16)
            assert head == value(before, "lianxin_head_height") + 2
            commits = "lianxin_commit_latency_seconds_count"
            assert value(after, commits) == value(before, commits) + 2
            assert (
                value(after, "lianxin_block_interval_seconds_count")
                == value(before, "lianxin_block_interval_seconds_count") + 2
            )
            assert value(after, "lianxin_store_bytes") > 0
            assert value(after, "lianxin_mempool_transactions") == 0
            send = "eth_sendRawTransaction"
            assert value(after, "lianxin_rpc_request_seconds_count", method=send) == 3
            # The duplicate was refused with its code, and counted under it.
            (code,) = refusals
            assert value(after, "lianxin_rpc_errors_total", method=send, code=str(code)) == 1
            # A dev node has no consensus driver: no consensus or peer series.
            assert not any(name.startswith("lianxin_consensus") for name, _ in after)

    asyncio.run(run())


async def _refused_sends(client: RpcClient, raws: list[str]) -> list[int]:
    """Send each of ``raws``, expecting a refusal; the refusal codes."""
    codes = []
    for raw in raws:
        try:
            await client.call("eth_sendRawTransaction", raw)
        except RpcFailure as refused:
            codes.append(int(refused.code or 0))
        else:
            raise AssertionError("a duplicate transaction was accepted")
    return codes
