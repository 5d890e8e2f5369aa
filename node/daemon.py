"""The node process: load the configuration, open the ledger, start block production and the
JSON-RPC server, and shut down cleanly on SIGINT or SIGTERM.

:class:`Node` assembles the parts and is what tests start in-process; :func:`main` is the
process entry (``python -m node.daemon --config node.toml``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chain.crypto import PrivateKey
from chain.crypto.backend import log_backend_choice
from chain.crypto.keystore import decrypt_keystore
from chain.errors import ChainError
from chain.genesis import Genesis
from node.config import ConfigError, NodeConfig, load_config
from node.consensus_driver import ConsensusDriver
from node.genesis_file import load_genesis
from node.keyring import Keyring
from node.ledger import CommittedBlock, Ledger, LedgerError
from node.mempool import Mempool, Permissions
from node.metrics import NodeMetrics, metrics_handler
from node.producer import DevProducer
from node.restore_guard import check_restored
from node.rpc.errors import InvalidParams
from node.rpc.methods import RpcApi
from node.rpc.server import RpcServer
from node.storage.mempool_store import MempoolStore
from node.upgrade_schedule import adopt_schedule
from node.validator_sets import transport_keys
from node.version import SoftwareVersion
from node.wal import WalError

log = logging.getLogger("lianxin.node")

_READER_THREADS = 4


def load_validator_key(config: NodeConfig) -> PrivateKey | None:
    """Decrypt the validator keystore named by the configuration (``None`` if none is set)."""
    if config.validator_keystore is None:
        return None
    try:
        data = config.validator_keystore.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read validator_keystore: {exc}") from exc
    return decrypt_keystore(data, config.keystore_password().encode())


class Node:
    """One running node: ledger, mempool, block production and JSON-RPC server.

    Block production is the dev-mode producer when genesis has a single validator, and the
    Tendermint consensus driver with p2p to the configured peers when it has more."""

    def __init__(
        self,
        config: NodeConfig,
        genesis: Genesis,
        validator_key: PrivateKey | None,
        software: SoftwareVersion | None = None,
    ) -> None:
        """Nothing is opened until :meth:`start`. ``software`` is what the node reports it
        runs (by default the installed version, no build label)."""
        self.config = config
        self.genesis = genesis
        self.validator_key = validator_key
        self.software = software or SoftwareVersion.current({}, genesis.upgrades)
        self.ledger: Ledger | None = None
        self.mempool: Mempool | None = None
        self.server: RpcServer | None = None
        self.producer: DevProducer | None = None
        self.driver: ConsensusDriver | None = None
        self.metrics: NodeMetrics | None = None
        self._producer_run: asyncio.Future[None] | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="lianxin-writer")
        # Dev mode: writes executed blocks to disk while the writer executes the next.
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="lianxin-committer")
        self._readers = ThreadPoolExecutor(_READER_THREADS, thread_name_prefix="lianxin-reader")

    @classmethod
    def from_config(cls, config: NodeConfig) -> Node:
        """Load genesis and the validator key named by ``config``; the build label comes
        from this process's environment (:data:`node.version.BUILD_ENV`)."""
        genesis = load_genesis(config.genesis)
        software = SoftwareVersion.current(os.environ, genesis.upgrades)
        return cls(config, genesis, load_validator_key(config), software)

    @property
    def port(self) -> int:
        """The bound JSON-RPC port (after :meth:`start`)."""
        assert self.server is not None and self.server.port is not None
        return self.server.port

    async def start(self) -> int:
        """Open the ledger, start producing blocks and serving; returns the RPC port."""
        ledger = Ledger.open(self.config.data_dir, self.genesis, self.validator_key)
        self.ledger = ledger
        try:
            # Before anything is produced, voted or served: a schedule this node cannot
            # take on (an entry at a height it passed without it) refuses the start.
            adopt_schedule(self.config.data_dir, self.genesis.upgrades, ledger.head.height)
        except BaseException:
            ledger.close()
            self.ledger = None
            raise
        self._log_schedule(ledger.head.height)
        self.mempool = Mempool(
            ledger.rules,
            Permissions.at_head(ledger),
            capacity=self.config.mempool_size,
            nonce_committed=ledger.nonce_committed,
            next_height=lambda: ledger.head.height + 1,
            store=MempoolStore.open(self.config.data_dir / "mempool"),
        )
        # Transactions admitted before a restart and not yet committed are pooled again.
        restored = self.mempool.restore()
        if restored.restored or restored.refused:
            log.info(
                "mempool: %d transactions kept from before the restart, %d no longer admissible",
                restored.restored,
                len(restored.refused),
            )
        if len(self.genesis.validators) > 1:
            if self.validator_key is None:
                raise ConfigError("a chain with several validators needs validator_keystore")
            keyring = Keyring.for_keystore(
                self.validator_key,
                self.config.validator_keystore,
                self.config.keystore_password().encode(),
            )
            self.driver = ConsensusDriver(
                ledger, self.mempool, self.validator_key, self.config, self._writer, self._readers,
                keyring=keyring,
            )  # fmt: skip
            api = RpcApi(ledger, self.mempool, self.config, self._readers, peers=self.driver.peers)
            api.table["lianxin_getConsensusStatus"] = self._consensus_status
            api.table["lianxin_checkValidatorChange"] = self._check_validator_change
            self.server = RpcServer(api, self.config)
            self.driver.add_listener(self.server.on_block)
            self._follow_validator_set()
            self.driver.add_listener(self._follow_validator_set)
            await self.driver.start()
        else:
            api = RpcApi(ledger, self.mempool, self.config, self._readers)
            self.server = RpcServer(api, self.config)
        if self.validator_key is not None and self.driver is None:
            self.producer = DevProducer(
                ledger,
                self.mempool,
                self._writer,
                committer=self._committer,
                max_block_txs=self.config.max_block_txs,
                block_interval_ms=self.config.block_interval_ms,
                clock_ms=api.dev_clock.now_ms,
            )
            api.attach_block_maker(self.producer)
            self.producer.add_listener(self.server.on_block)
            self._producer_run = asyncio.ensure_future(self.producer.run())
        api.table["web3_clientVersion"] = self._client_version
        api.table["lianxin_getNodeVersion"] = self._node_version
        self._attach_metrics(api)
        port = await self.server.start()
        log.info(
            "node %s serving JSON-RPC on %s:%d, chain %d at height %d",
            self.software.full_version,
            self.config.rpc_host,
            port,
            ledger.chain_id,
            ledger.head.height,
        )
        return port

    def _log_schedule(self, head: int) -> None:
        """Say which parameter changes this node applies, and which are still to come."""
        schedule = self.genesis.upgrades
        for upgrade in schedule.upgrades:
            state = "in force" if upgrade.height <= head else "scheduled"
            log.info("parameter schedule: %s (%s)", upgrade.describe(), state)
        if schedule.upgrades:
            log.info("parameter schedule digest 0x%s", schedule.digest().hex())

    async def _client_version(self, params: list[object]) -> str:
        """``web3_clientVersion``: the software and build this process runs."""
        if params:
            raise InvalidParams("web3_clientVersion takes no parameters")
        return self.software.client_version

    async def _node_version(self, params: list[object]) -> dict[str, object]:
        """``lianxin_getNodeVersion``: version, build label and the parameter schedule this
        node loaded (with its digest, equal on nodes that loaded the same one)."""
        if params:
            raise InvalidParams("lianxin_getNodeVersion takes no parameters")
        return self.software.describe()

    def _attach_metrics(self, api: RpcApi) -> None:
        """Serve ``/metrics`` (loopback only), time every JSON-RPC method, and observe
        each commit (:mod:`node.metrics`)."""
        assert self.server is not None
        self.metrics = NodeMetrics(self)
        for name, handler in list(api.table.items()):
            api.table[name] = self.metrics.timed(name, handler)
        self.server.app.router.add_get("/metrics", metrics_handler(self.metrics))
        if self.driver is not None:
            self.driver.add_listener(self.metrics.on_block)
        if self.producer is not None:
            self.producer.add_listener(self.metrics.on_block)

    def _follow_validator_set(self, committed: CommittedBlock | None = None) -> None:
        """Let p2p admit the validators of the next height (and the configured observers)
        only: a validator removed by governance is refused and disconnected. A validator
        that rotated its key stays admitted under its configured node key."""
        assert self.driver is not None and self.ledger is not None
        head = self.ledger.head
        ruling = self.ledger.validator_set(head.height + 1)
        self.driver.network.follow_validator_set(
            transport_keys(
                self.ledger, head, ruling.validators, (p.public_key for p in self.config.peers)
            )
        )

    async def _consensus_status(self, params: list[object]) -> dict[str, object]:
        """``lianxin_getConsensusStatus`` in consensus mode: the driver's view."""
        if params:
            raise InvalidParams("lianxin_getConsensusStatus takes no parameters")
        assert self.driver is not None
        return self.driver.status()

    async def _check_validator_change(self, params: list[object]) -> dict[str, object]:
        """``lianxin_checkValidatorChange(publicKey, power)``: the dry run of a validator
        change, the ValidatorGovernance contract's own quorum verdict in the next block (see
        :func:`node.validator_check.check_validator_change`)."""
        if len(params) != 2 or not isinstance(params[0], str) or not isinstance(params[1], int):
            raise InvalidParams("lianxin_checkValidatorChange takes [publicKey hex, power int]")
        try:
            public_key = bytes.fromhex(params[0].removeprefix("0x"))
        except ValueError as exc:
            raise InvalidParams("publicKey must be hex") from exc
        if len(public_key) != 65 or public_key[0] != 4 or params[1] < 0:
            raise InvalidParams("publicKey must be an uncompressed SM2 key, power >= 0")
        assert self.driver is not None
        try:
            return self.driver.check_validator_change(public_key, params[1])
        except LedgerError as exc:
            raise InvalidParams(str(exc)) from exc

    async def stop(self) -> None:
        """Stop serving, let an in-progress block commit, and close the ledger. Logs how
        long each part took (a slow stop delays a rolling restart)."""
        steps: list[tuple[str, float]] = []
        started = time.monotonic()

        def done(step: str) -> None:
            nonlocal started
            now = time.monotonic()
            steps.append((step, now - started))
            started = now

        if self.server is not None:
            await self.server.stop()
            done("rpc")
        if self.driver is not None:
            await self.driver.stop()
            done("consensus")
        if self._producer_run is not None:
            self._producer_run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer_run
            done("producer")
        # A block being committed on the writer thread finishes before the store closes.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._writer.shutdown, True)
        await loop.run_in_executor(None, self._committer.shutdown, True)
        self._readers.shutdown(wait=True)
        done("workers")
        if self.mempool is not None:
            self.mempool.close()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        done("store")
        log.info("stopped (%s)", ", ".join(f"{step} {seconds:.2f} s" for step, seconds in steps))


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (it comes with ``uvicorn[standard]``), else
    ``None``: asyncio's own. uvloop spends less of the interpreter per request (socket reads
    and writes, callbacks from the worker threads) than asyncio's selector loop, and the
    interpreter is what the event loop and the block writer share: measured, 2.5 instead of
    3.2 ms of node CPU per pipelined transaction. The node behaves the same on either."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def run(config: NodeConfig) -> None:
    """Run a node until SIGINT or SIGTERM."""
    node = Node.from_config(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await node.start()
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await node.stop()


def main(argv: list[str] | None = None) -> int:
    """Process entry: ``--config PATH``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="lianxin-node", description="Run a lianxin node.")
    parser.add_argument("--config", type=Path, required=True, help="node TOML configuration")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument(
        "--confirm-restored-wal",
        action="store_true",
        help="start a validator restored from a backup (double-sign risk: see node.backup)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log_backend_choice(log)
    try:
        config = load_config(args.config)
        check_restored(config, confirmed=args.confirm_restored_wal)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(run(config))
    except (ConfigError, ChainError, LedgerError, WalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
