"""Four validators as real processes on 127.0.0.1 (``lianxin net init/start``), under a small
transaction load: they commit continuously; with one SIGKILLed the other three go on; the
restarted one catches up by block sync and signs later certificates again; with two
SIGSTOPped the chain halts without forking and resumes on SIGCONT. Forged votes, votes of
unknown validators, oversize frames, garbage bytes and wrong-chain handshakes sent to a live
node are rejected and counted while it keeps committing. After every phase all running
nodes agree on the block hashes at their common heights."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import pid_alive, run_cli
from net_harness import Net, assert_agreement, new_net, wait_until

from chain.consensus import Vote, VoteType, encode_message
from chain.crypto import PrivateKey
from chain.primitives import Address
from node.p2p.channel import Channel
from node.p2p.frames import FrameKind
from node.p2p.handshake import perform_handshake
from node.rpc_client import rpc_call
from sdk.account import Sm2Account
from sdk.transactions import build_transaction, encode_raw

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4


class Load(threading.Thread):
    """Sends a small stream of transfers to the running nodes, round robin."""

    def __init__(self, net: Net, account: Sm2Account, chain_id: int) -> None:
        super().__init__(daemon=True)
        self.net = net
        self.account = account
        self.chain_id = chain_id
        self.targets = list(range(VALIDATORS))
        self.stop = threading.Event()
        self.accepted = 0

    def run(self) -> None:
        counter = 0
        while not self.stop.is_set():
            index = self.targets[counter % len(self.targets)]
            counter += 1
            try:
                height = self.net.head(index)
                tx = build_transaction(
                    chain_id=self.chain_id,
                    to=bytes(20),
                    data=b"",
                    gas_limit=50_000,
                    block_limit=height + 500,
                    value=1,
                )
                rpc_call(
                    self.net.url(index),
                    "eth_sendRawTransaction",
                    [encode_raw(self.account.sign_transaction(tx))],
                    timeout=2,
                )
                self.accepted += 1
            except Exception:
                pass
            time.sleep(0.05)


async def _connect_as(
    port: int, key: PrivateKey, chain_id: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Channel]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = await perform_handshake(
        reader,
        writer,
        key=key,
        chain_id=chain_id,
        allowed=_ANY,
        initiator=True,
        max_bytes=1 << 20,
    )
    return reader, writer, session.channel


class _AnyKey(frozenset[bytes]):
    """The test client accepts whichever node key answers."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY = _AnyKey()


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Whether the node closes the connection within 5 s (reading and discarding until then)."""
    try:
        while await asyncio.wait_for(reader.read(1 << 16), 5):
            pass
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    return True


async def attack(net: Net, target: int, as_validator: int, chain_id: int) -> None:
    """Send forged and malformed traffic to validator ``target``."""
    port = net.p2p_base + target
    # Keys first: opening a keystore takes seconds here (its KDF is slow by design), and an
    # authenticated link that stays silent that long is closed by the node's heartbeat
    # (peer_timeout), while the heights the target is deciding move on meanwhile.
    impostor = net.key(as_validator)
    victim = net.key((target + 1) % VALIDATORS).public_key.address
    stranger = PrivateKey.generate()
    # Forged votes: signed by the impostor's key in the name of another validator, and votes
    # of a key that is not in the validator set, for the heights the target is deciding.
    reader, writer, channel = await _connect_as(port, impostor, chain_id)
    height = int(net.status(target)["height"], 16)
    for h in range(height, height + 4):
        for round_ in range(3):
            forged = Vote(VoteType.PREVOTE, h, round_, None, Address(victim))
            forged = forged.with_signature(impostor.sign(forged.sign_bytes(chain_id)))
            unknown = Vote(VoteType.PREVOTE, h, round_, None, stranger.public_key.address)
            unknown = unknown.with_signature(stranger.sign(unknown.sign_bytes(chain_id)))
            for message in (forged, unknown):
                writer.write(channel.encode(FrameKind.CONSENSUS, encode_message(message)))
    await writer.drain()
    await asyncio.sleep(1.5)
    # An oversize frame on the authenticated connection: the node drops the connection.
    writer.write((64 * 1024 * 1024).to_bytes(4, "big") + b"\x03" + b"x" * 1024)
    await writer.drain()
    assert await _closed_by_peer(reader)
    writer.close()
    # Garbage instead of a handshake.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x00\x00\x00\x10" + os.urandom(16))
    await writer.drain()
    assert await _closed_by_peer(reader)
    writer.close()
    # A handshake for another chain.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with contextlib.suppress(Exception):
        await perform_handshake(
            reader,
            writer,
            key=impostor,
            chain_id=chain_id + 1,
            allowed=_ANY,
            initiator=True,
            max_bytes=1 << 20,
        )
    writer.close()
    # A key that is not a configured peer.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with contextlib.suppress(Exception):
        await perform_handshake(
            reader,
            writer,
            key=stranger,
            chain_id=chain_id,
            allowed=_ANY,
            initiator=True,
            max_bytes=1 << 20,
        )
    writer.close()
    await asyncio.sleep(0.5)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with new_net(tmp_path / "net", VALIDATORS) as network:
        yield network


def test_four_validators_survive_faults(net: Net) -> None:
    started = time.monotonic()
    # At INFO the nodes log each p2p connect and disconnect (a few KB in all), which the last
    # check shows if it fails.
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "INFO")
    assert result.code == 0, result
    everyone = list(range(VALIDATORS))
    wait_until("first blocks", lambda: min(net.head(i) for i in everyone) >= 3)
    chain_id = int(rpc_call(net.url(0), "eth_chainId", []), 16)
    password = (net.root / "keystore-password").read_bytes().strip()
    account = Sm2Account.from_keystore((net.root / "keys" / "dept-a.json").read_bytes(), password)
    load = Load(net, account, chain_id)
    load.start()
    try:
        # Phase 1: all four commit continuously.
        start_head = net.head(0)
        t0 = time.monotonic()
        wait_until("10 blocks", lambda: min(net.head(i) for i in everyone) >= start_head + 10)
        block_time = (time.monotonic() - t0) / 10
        print(f"block time with 4 validators: {block_time * 1000:.0f} ms")
        assert_agreement(net, everyone)
        status = net.status(0)
        assert status["mode"] == "tendermint" and status["peers"] == VALIDATORS - 1

        # Phase 2: SIGKILL node 3; the other three keep committing.
        killed = 3
        os.kill(net.pid(killed), signal.SIGKILL)
        load.targets = [0, 1, 2]
        alive = [0, 1, 2]
        base = max(net.head(i) for i in alive)
        wait_until("3 validators commit", lambda: min(net.head(i) for i in alive) >= base + 5)
        assert_agreement(net, alive)

        # Forged and malformed traffic to node 0 (connecting with node 3's key while node 3
        # is down); rejected, counted, and node 0 keeps committing.
        before = net.status(0)["counters"]
        asyncio.run(attack(net, 0, killed, chain_id))
        after = net.status(0)["counters"]
        for counter in ("bad_signature", "unknown_validator", "p2p_oversize_frame",
                        "p2p_bad_frame", "p2p_wrong_chain", "p2p_unknown_key"):  # fmt: skip
            assert after.get(counter, 0) > before.get(counter, 0), (counter, before, after)
        base = net.head(0)
        wait_until("commits after the attack", lambda: net.head(0) >= base + 3)

        # Phase 3: restart node 3; it catches up by sync and signs certificates again.
        result = run_cli(
            "net", "start", "--dir", str(net.root), "--node", str(killed),
            "--log-level", "INFO",
        )  # fmt: skip
        assert result.code == 0, result
        load.targets = everyone
        rejoin = max(net.head(i) for i in alive)
        wait_until("node 3 catches up", lambda: net.head(killed) >= rejoin)
        address = "0x" + net.key(killed).public_key.address.hex()

        def signs_again() -> bool:
            top = net.head(0)
            return any(
                address in net.certificate_signers(i, h)
                for i in alive
                for h in range(max(rejoin + 1, top - 5), top + 1)
            )

        wait_until("node 3 signs certificates", signs_again)
        assert net.status(killed)["counters"].get("synced_blocks", 0) > 0
        assert_agreement(net, everyone)

        # Phase 4: SIGSTOP two validators; the chain halts without forking.
        stopped = [2, 3]
        running = [0, 1]
        for index in stopped:
            os.kill(net.pid(index), signal.SIGSTOP)
        load.targets = running
        time.sleep(1.5)
        halted = [net.head(i) for i in running]
        time.sleep(3)
        assert [net.head(i) for i in running] == halted, "committed without a quorum"
        assert_agreement(net, running)
        for index in stopped:
            os.kill(net.pid(index), signal.SIGCONT)
        load.targets = everyone
        wait_until(
            "resume after SIGCONT", lambda: min(net.head(i) for i in everyone) >= max(halted) + 3
        )
        assert_agreement(net, everyone)
        assert load.accepted > 0
        for index in everyone:
            assert pid_alive(net.pid(index))
    finally:
        load.stop.set()
        load.join(timeout=5)
    # Links cut by the pause come back: net status reports every validator healthy (exit 0).
    statuses = []

    def everyone_healthy() -> bool:
        statuses.append(run_cli("net", "status", "--dir", str(net.root), "--json"))
        return statuses[-1].code == 0

    try:
        wait_until("every validator healthy", everyone_healthy)
    except AssertionError as exc:
        # Say which validator was not healthy, and why, as net status last reported it, and
        # what each validator logged of its links (connected, disconnected, timeouts).
        links = {f"node-{i}": net.log_lines(i, "p2p: ")[-25:] for i in everyone}
        report = f"last net status: {statuses[-1:]}; p2p logs: {links}"
        raise AssertionError(f"{exc}; {report}") from None
    result = run_cli("net", "status", "--dir", str(net.root), "--json")
    assert [row["health"] for row in result.json()] == ["ok"] * VALIDATORS, result
    result = run_cli("net", "stop", "--dir", str(net.root))
    assert result.code == 0, result
    print(f"consensus network test took {time.monotonic() - started:.1f} s")
