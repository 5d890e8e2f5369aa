"""Dev-mode block production: blocks chain together with signed commit certificates, empty
blocks on an interval, transactions that can no longer be included are dropped with an
answer, blocks stay within the genesis ``max_block_bytes`` (what does not fit waits for the
next block), and the daemon process starts from a configuration file and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from node_harness import (
    make_chain,
    make_config,
    running_node,
    send_and_wait,
    signed_tx,
)

from chain.commit import precommit_sign_bytes
from chain.crypto import PublicKey
from chain.crypto.keystore import encrypt_keystore
from chain.genesis import genesis_to_toml
from chain.limits import MAX_TX_DATA_BYTES, MIN_BLOCK_BYTES
from chain.merkle import merkle_root
from node.config import ConfigError, load_config
from node.ledger import Ledger
from node.mempool import Outcome
from node.verify import verify_chain

ROOT = Path(__file__).resolve().parents[2]
TARGET = b"\x42" * 20


def _check_chain(ledger: Ledger, validator: PublicKey) -> None:
    """Every block links to its parent, carries the parent's certificate, and has its own
    certificate signed by the validator."""
    head = ledger.head.height
    previous = ledger.block(0)
    assert previous is not None
    assert previous.header.tx_root == merkle_root([])
    for height in range(1, head + 1):
        block = ledger.block(height)
        assert block is not None
        header = block.header
        assert header.parent_hash == previous.hash
        assert header.timestamp_ms > previous.header.timestamp_ms
        assert header.tx_root == merkle_root([tx.hash for tx in block.transactions])
        certificate = ledger.certificate(height)
        assert certificate is not None and certificate.block_hash == header.hash
        (signature,) = certificate.signatures
        assert signature.validator == validator.address
        validator.verify(
            signature.signature,
            precommit_sign_bytes(ledger.chain_id, height, certificate.round, header.hash),
        )
        if height >= 2:
            parent_certificate = ledger.certificate(height - 1)
            assert parent_certificate is not None
            assert block.last_commit == parent_certificate
            assert header.last_commit_hash == parent_certificate.hash
        previous = block
    # The chain also passes the operators' offline verifier (certificates against genesis).
    assert verify_chain(ledger.store, ledger.genesis) is None


def test_empty_blocks_on_interval_chain_together(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path, block_interval_ms=20)) as (
            node,
            client,
        ):
            deadline = time.monotonic() + 5
            while int(await client.call("eth_blockNumber"), 16) < 4:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            receipt = await send_and_wait(client, signed_tx(chain.sender, to=TARGET, data=b""))  # type: ignore[arg-type]
            assert receipt["status"] == "0x1"
            assert node.ledger is not None
            _check_chain(node.ledger, chain.validator.public_key)

    asyncio.run(run())


def test_blocks_only_when_transactions_arrive(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (node, client):
            await asyncio.sleep(0.2)
            assert await client.call("eth_blockNumber") == "0x0"
            for _ in range(3):
                await send_and_wait(client, signed_tx(chain.sender, to=TARGET, data=b""))  # type: ignore[arg-type]
            assert node.ledger is not None
            assert 1 <= node.ledger.head.height <= 3
            _check_chain(node.ledger, chain.validator.public_key)

    asyncio.run(run())


def test_uncommittable_transactions_are_dropped_with_an_answer(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path, receipt_wait_ms=0)) as (
            node,
            client,
        ):
            await send_and_wait(client, signed_tx(chain.sender, to=TARGET, data=b""))  # type: ignore[arg-type]
            mempool = node.mempool
            assert mempool is not None
            # "sender" holds no balance: a value transfer is inapplicable at execution.
            broke = signed_tx(chain.sender, to=TARGET, data=b"", value=1)  # type: ignore[arg-type]
            # Admitted earlier, expired by now (bypasses the admission check on purpose).
            stale = signed_tx(chain.sender, to=TARGET, data=b"", block_limit=1)  # type: ignore[arg-type]
            fine = signed_tx(chain.sender, to=TARGET, data=b"\x01")  # type: ignore[arg-type]
            waiters = []
            for tx in (broke, stale, fine):
                mempool.add(tx)
                waiter = mempool.waiter(tx.hash)
                assert waiter is not None
                waiters.append(waiter)
            outcomes: list[Outcome] = await asyncio.wait_for(asyncio.gather(*waiters), 5)
            assert outcomes[0].height is None and "not applicable" in outcomes[0].reason
            assert outcomes[1].height is None and "expired" in outcomes[1].reason
            assert outcomes[2].height is not None
            for dropped in (broke, stale):
                reply = await client.call("eth_getTransactionReceipt", "0x" + dropped.hash.hex())
                assert reply is None
            assert len(mempool) == 0

    asyncio.run(run())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rpc(port: int, method: str) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


def test_daemon_starts_from_config_and_stops_on_sigterm(tmp_path: Path) -> None:
    chain = make_chain()
    (tmp_path / "genesis.toml").write_text(genesis_to_toml(chain.genesis), encoding="utf-8")
    (tmp_path / "validator.json").write_bytes(
        encrypt_keystore(chain.validator, b"secret", iterations=1_000)
    )
    port = _free_port()
    (tmp_path / "node.toml").write_text(
        "\n".join(
            [
                'data_dir = "data"',
                'genesis = "genesis.toml"',
                'validator_keystore = "validator.json"',
                f"rpc_port = {port}",
                "block_interval_ms = 30",
            ]
        ),
        encoding="utf-8",
    )
    config = load_config(tmp_path / "node.toml")
    assert config.data_dir == tmp_path / "data"
    env = {**os.environ, "LIANXIN_KEYSTORE_PASSWORD": "secret", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "node.daemon", "--config", str(tmp_path / "node.toml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        height = 0
        while time.monotonic() < deadline:
            try:
                height = int(str(_rpc(port, "eth_blockNumber")), 16)
            except OSError:
                height = 0
            if height >= 2:
                break
            time.sleep(0.05)
        assert height >= 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read().decode() if process.stdout else ""
    assert "shutting down" in output
    # The chain survived the shutdown whole.
    ledger = Ledger.open(tmp_path / "data", chain.genesis, None)
    try:
        assert ledger.head.height >= height
        _check_chain(ledger, chain.validator.public_key)
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('genesis = "g.toml"', "missing required key 'data_dir'"),
        (
            'data_dir = "d"\ngenesis = "g.toml"\nrpc_prot = 1',
            "unknown configuration keys: rpc_prot",
        ),
        ('data_dir = "d"\ngenesis = "g.toml"\nrpc_port = "80"', "rpc_port must be of type int"),
        ('data_dir = "d"\ngenesis = "g.toml"\nrpc_port = 70000', "rpc_port must be within"),
        ('data_dir = "d"\ngenesis = "g.toml"\nmax_batch = 0', "max_batch must be >= 1"),
        ("data_dir = [", "invalid TOML"),
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "missing.toml")


def test_blocks_stay_within_max_block_bytes_and_what_does_not_fit_waits(tmp_path: Path) -> None:
    chain = make_chain()
    chain = dataclasses.replace(
        chain, genesis=dataclasses.replace(chain.genesis, max_block_bytes=MIN_BLOCK_BYTES)
    )
    big = [
        signed_tx(chain.sender, to=TARGET, data=bytes([n + 1]) * MAX_TX_DATA_BYTES)  # type: ignore[arg-type]
        for n in range(3)
    ]

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (node, _):
            mempool, ledger = node.mempool, node.ledger
            assert mempool is not None and ledger is not None
            waiters = []
            for tx in big:
                mempool.add(tx)
                waiter = mempool.waiter(tx.hash)
                assert waiter is not None
                waiters.append(waiter)
            outcomes: list[Outcome] = await asyncio.wait_for(asyncio.gather(*waiters), 30)
            # Two of them would not fit in one block: each waits for a block of its own.
            heights = [outcome.height for outcome in outcomes]
            assert None not in heights and len(set(heights)) == 3, outcomes
            for height in heights:
                block = ledger.block(height)  # type: ignore[arg-type]
                assert block is not None and len(block.encode()) <= MIN_BLOCK_BYTES

    asyncio.run(run())
