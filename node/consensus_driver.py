"""The consensus driver: runs the pure Tendermint core (:func:`chain.consensus.step`) in a node.

The core decides; this module does its I/O, the way the simulator's driver shim
(``tests/consensus/sim.py``) does it in virtual time:

- **Persist** → sign the message with the validator key and append the signed message to
  the write-ahead log (:mod:`node.wal`), fsync included. **Broadcast** → send the signed
  message recorded there to every peer and feed it back to the core. Since the core emits
  every Persist before the Broadcast of the same message, nothing leaves the node before it
  is durable, and the log refuses a second message in one slot, so the key never signs two
  different messages at one height, round and kind, across crashes too.
- **ScheduleTimeout** → an asyncio timer that feeds TimeoutFired; a propose timeout also
  has :mod:`node.proposer_presence` feed ProposerUnavailable if the proposer cannot propose.
- **PrepareProposal / ProcessProposal** → the ledger's ``prepare_block`` / ``process_block``
  on the writer thread (ABCI 2.0 shaped), answered with ProposalPrepared / ProposalProcessed.
- **Commit** → the ledger commits the block with the certificate the core built from the
  collected precommits; the mempool is settled; after ``commit_delay_ms`` the next height
  starts, with the own messages of that height replayed from the log.

What arrives from peers is verified at the boundary (:func:`chain.consensus.verify_vote`,
:func:`chain.consensus.verify_proposal`); rejects are counted in :attr:`counters` and dropped.
Messages for the next height are held until it starts. Every ``gossip_interval_ms`` the
driver re-sends its own messages of the current height (so a lost message or a restarted
peer does not stall a round), its committed height, and new mempool transactions
(:mod:`node.tx_gossip`).

Block sync (:mod:`node.block_sync`): a peer reporting a higher committed height is asked for
blocks; each goes through the same commit path as a decided block (:meth:`_apply`), and then
consensus starts at the new head.

Validator sets: the set of each height comes from the ledger
(:meth:`node.ledger.Ledger.validator_set`, read from the ValidatorGovernance contract), and
the proposer schedule restarts whenever the set changes. A node whose key is not in the set
of the height being decided is an observer: it follows proposals and votes, commits what
2/3 precommitted, and signs and sends nothing of its own.

Key rotation: with a :class:`node.keyring.Keyring`, the driver signs each height with the
keyring key the height's set holds, switching (ledger and state machine with it) at the first
height of a rotated key's set; p2p keeps the configured key as the node's identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

from chain import encoding as enc
from chain.consensus import (
    BadMessageSignature,
    Broadcast,
    Commit,
    ConsensusConfig,
    ConsensusState,
    Effect,
    EquivocationEvidence,
    Event,
    InvalidMessage,
    Message,
    Persist,
    PrepareProposal,
    ProcessProposal,
    Proposal,
    ProposalPrepared,
    ProposalProcessed,
    ProposalReceived,
    ProposerSchedule,
    ScheduleTimeout,
    StartHeight,
    Step,
    TimeoutConfig,
    TimeoutFired,
    UnknownValidator,
    Vote,
    VoteReceived,
    decode_message,
    encode_message,
    step,
    verify_proposal,
    verify_vote,
)
from chain.crypto import PrivateKey, PublicKey, sm3
from chain.errors import EncodingError
from chain.primitives import Hash32
from chain.types import Block, CommitCertificate
from node.block_sync import BlockSync
from node.config import NodeConfig
from node.consensus_status import consensus_status, peer_status
from node.keyring import Keyring
from node.late_precommits import LatePrecommits
from node.ledger import BlockRejected, CommittedBlock, Ledger, StaleBlock
from node.mempool import Mempool, Outcome, Permissions
from node.p2p import FrameKind, Network, transport_settings
from node.proposal_budget import ExecutionPace, fitting
from node.proposer_liveness import with_absent_proposers
from node.proposer_presence import ProposerPresence
from node.tx_gossip import TxGossip
from node.validator_check import check_validator_change
from node.wal import Wal

log = logging.getLogger(__name__)

MAX_FUTURE_MESSAGES = 2_000
"""Most messages of the next height held until it starts."""

BlockListener = Callable[[CommittedBlock], None]


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def block_hash_of(data: bytes) -> Hash32:
    """The hash consensus identifies a ledger block by: its header hash."""
    return Block.decode(data).hash


class ConsensusDriver:
    """Tendermint consensus for one validator node. Build, then :meth:`start`."""

    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        key: PrivateKey,
        config: NodeConfig,
        executor: Executor,
        readers: Executor,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        keyring: Keyring | None = None,
    ) -> None:
        """``executor`` runs ledger writes and execution in order (one worker); ``readers``
        runs transaction checks and block reads for sync; ``keyring`` holds the keys ``key``
        may be rotated to."""
        self.ledger = ledger
        self.mempool = mempool
        self.key = key
        self.keyring = keyring
        self.config = config
        self._executor = executor
        self._readers = readers
        self._clock_ms = clock_ms
        self.chain_id = ledger.chain_id
        self.validators = ledger.validator_set(ledger.head.height + 1).validators
        self.permissions = Permissions.at_head(ledger)
        mempool.use_permissions(self.permissions)
        timeouts = TimeoutConfig(
            propose_ms=config.timeout_propose_ms,
            propose_delta_ms=config.timeout_delta_ms,
            prevote_ms=config.timeout_prevote_ms,
            prevote_delta_ms=config.timeout_delta_ms,
            precommit_ms=config.timeout_precommit_ms,
            precommit_delta_ms=config.timeout_delta_ms,
        )
        self.state = ConsensusState.initial(
            ConsensusConfig(self.chain_id, key.public_key.address, timeouts)
        )
        self.counters: Counter[str] = Counter()
        self.network = Network(
            key=key,
            chain_id=self.chain_id,
            peers=config.peers,
            host=config.p2p_host,
            port=config.p2p_port,
            max_frame_bytes=config.max_frame_bytes,
            on_frame=self._on_frame,
            settings=transport_settings(config),
        )
        self.wal: Wal | None = None
        self._late_precommits = LatePrecommits()
        self._events: deque[Event] = deque()
        self._stepping = False
        self._schedule: tuple[int, ProposerSchedule] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._loops: list[asyncio.Future[None]] = []
        self._apply_lock = asyncio.Lock()
        self._future: dict[Hash32, Message] = {}
        self._seen: set[Hash32] = set()
        self._listeners: list[BlockListener] = []
        self._stopped = False
        self._busy = 0
        self._deferred: list[TimeoutFired] = []
        self._pace = ExecutionPace(config.timeout_propose_ms, config.max_block_txs)
        self.tx_gossip = TxGossip(mempool, self.network, readers)
        self.sync = BlockSync(
            ledger,
            self.network,
            readers,
            self.counters,
            apply=self._apply,
            on_applied=self._start_next_height,
            max_frame_bytes=config.max_frame_bytes,
        )
        self.presence = ProposerPresence(self.network, self.sync.peer_heights, self.counters,
                                         state=lambda: self.state, feed=self.feed)  # fmt: skip

    # -- life cycle ----------------------------------------------------------------------

    def add_listener(self, listener: BlockListener) -> None:
        """Call ``listener`` on the event loop after every committed block."""
        self._listeners.append(listener)

    async def start(self) -> int:
        """Open the log, start p2p, and start the height after the ledger's head, resuming
        from the log. Returns the bound p2p port."""
        self.wal = Wal.open(self.config.wal_path)
        if self.wal.stats.truncated_bytes:
            self.counters["wal_truncated_bytes"] += self.wal.stats.truncated_bytes
        port = await self.network.start()
        self.mempool.on_arrival(self.tx_gossip.schedule)
        self._start_next_height()
        self._loops.append(asyncio.ensure_future(self._gossip_loop()))
        log.info("consensus: p2p on %s:%d, starting at height %d", self.config.p2p_host, port,
                 self.state.height)  # fmt: skip
        return port

    async def stop(self) -> None:
        """Stop timers, tasks and p2p; close the log."""
        self._stopped = True
        self.presence.stop()
        for timer in self._timers:
            timer.cancel()
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.network.stop()
        if self.wal is not None:
            self.wal.close()

    def schedule_for(self, height: int) -> ProposerSchedule:
        """The proposer schedule of ``height``: the priorities start afresh at the first
        height of its validator set and advance one step per height after it."""
        ruling = self.ledger.validator_set(height)
        cached = self._schedule
        if cached is not None and cached[1].validators == ruling.validators:
            cached_height, schedule = cached
            if cached_height == height:
                return schedule
            if ruling.since <= cached_height < height:
                for _ in range(height - cached_height):
                    schedule = schedule.next_height()
                self._schedule = (height, schedule)
                return schedule
        schedule = ProposerSchedule.initial(ruling.validators)
        for _ in range(height - ruling.since):
            schedule = schedule.next_height()
        self._schedule = (height, schedule)
        return schedule

    @property
    def is_member(self) -> bool:
        """Whether this node's key is in the validator set of the height being decided."""
        return self.key.public_key.address in self.validators.by_address

    # -- the state machine ---------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Step the core with ``event`` and carry out the effects; events raised while doing
        so are queued and stepped in order (never re-entrantly)."""
        self._events.append(event)
        if self._stepping:
            return
        self._stepping = True
        try:
            while self._events and not self._stopped:
                next_event = self._events.popleft()
                self.state, effects = step(self.state, next_event)
                for effect in effects:
                    self._carry_out(effect)
        finally:
            self._stepping = False

    def _carry_out(self, effect: Effect) -> None:
        if isinstance(effect, Persist):
            self._persist(effect.message)
        elif isinstance(effect, Broadcast):
            self._broadcast(effect.message)
        elif isinstance(effect, ScheduleTimeout):
            self._schedule_timeout(effect)
        elif isinstance(effect, PrepareProposal):
            self._spawn(self._prepare(effect))
        elif isinstance(effect, ProcessProposal):
            self._spawn(self._process(effect))
        elif isinstance(effect, Commit):
            self._spawn(self._commit(effect))
        elif isinstance(effect, EquivocationEvidence):
            self.counters["equivocation_evidence"] += 1
            log.warning("consensus: equivocation: %s vs %s", effect.first, effect.second)

    def _persist(self, message: Message) -> None:
        """Sign, then make the signed message durable before anything sends it. A node
        outside the height's validator set (an observer) signs nothing."""
        assert self.wal is not None
        if not self.is_member:
            return
        if self.wal.recorded(message) is not None:
            return
        signed = message.with_signature(self.key.sign(message.sign_bytes(self.chain_id)))
        self.wal.append(signed)

    def _broadcast(self, message: Message) -> None:
        assert self.wal is not None
        if not self.is_member:
            return
        signed = self.wal.recorded(message)
        if signed is None:
            raise RuntimeError(f"refusing to send {message}: it was never persisted")
        self.network.broadcast(FrameKind.CONSENSUS, encode_message(signed))
        self._seen.add(sm3(encode_message(signed)))
        self.feed(_received(signed))

    def _schedule_timeout(self, effect: ScheduleTimeout) -> None:
        loop = asyncio.get_running_loop()
        event = TimeoutFired(effect.height, effect.round, effect.step)

        def fire() -> None:
            self._timers.discard(handle)
            if event.step is Step.PROPOSE and self._busy:
                self._deferred.append(event)
                return
            self.feed(event)

        handle = loop.call_later(effect.delay_ms / 1000, fire)
        self._timers.add(handle)
        if effect.step is Step.PROPOSE:
            self.presence.watch(effect.height, effect.round)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("consensus task failed", exc_info=task.exception())

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # -- application (ABCI 2.0 shaped) -------------------------------------------------------

    @contextlib.contextmanager
    def _application_busy(self) -> Iterator[None]:
        """Mark the application busy with a proposal; a propose timeout firing meanwhile
        waits until it is done (as CometBFT, whose proposal checks are synchronous), so a
        block that takes long to execute is not prevoted nil half-checked."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    def _release_deferred(self) -> None:
        if self._busy == 0 and self._deferred:
            deferred, self._deferred = self._deferred, []
            for event in deferred:
                self.feed(event)

    async def _prepare(self, request: PrepareProposal) -> None:
        with self._application_busy():
            await self._prepare_block(request)
        self._release_deferred()

    async def _prepare_block(self, request: PrepareProposal) -> None:
        """Offer the ledger the pending transactions that fit this block's gas, count and
        byte budgets, oldest first. What does not fit stays pending for a later block;
        only what the ledger finds can never be included (invalid, not permitted,
        inapplicable) leaves the pool, with its reason."""
        height = request.height
        self.mempool.drop_expired(height)
        candidates = fitting(
            self.mempool.pending(),
            gas=self.ledger.genesis.block_gas_limit_at(height),
            size=self.ledger.tx_bytes_budget(),
            count=self._pace.cap,
        )
        started = time.monotonic()
        prepared = await self._run(
            self.ledger.prepare_block,
            candidates,
            self._clock_ms(),
            self._late_precommits.certificate_of(height - 1),
        )
        self._pace.measured(started, len(candidates))
        if prepared.dropped:
            self.mempool.settle({tx.hash: Outcome(None, why) for tx, why in prepared.dropped})
        block = prepared.block
        if block.header.height != height:
            # Block sync committed this height while the block was being built.
            return
        self.feed(ProposalPrepared(height, request.round, block.hash, block.encode()))

    async def _process(self, request: ProcessProposal) -> None:
        with self._application_busy():
            started = time.monotonic()
            try:
                prepared = await self._run(self.ledger.process_encoded, request.block)
                self._pace.measured(started, len(prepared.block.transactions))
                accepted = True
            except StaleBlock:
                # Block sync committed another block at this height meanwhile: the height
                # is decided, and consensus moves on to the next one.
                accepted = False
            except BlockRejected as exc:
                self.counters["rejected_proposals"] += 1
                log.warning("consensus: rejecting proposal at height %d: %s", request.height, exc)
                accepted = False
            self.feed(ProposalProcessed(request.height, request.block_hash, accepted))
        self._release_deferred()

    async def _commit(self, decision: Commit) -> None:
        self._late_precommits.decided(decision.certificate)
        block = Block.decode(decision.block)
        await self._apply(block, decision.certificate)
        if self.config.commit_delay_ms:
            await asyncio.sleep(self.config.commit_delay_ms / 1000)
        self._start_next_height()

    async def _apply(self, block: Block, certificate: CommitCertificate) -> bool:
        """Commit ``block`` if it is the next one; returns whether it was applied. Raises
        BlockRejected for a block or certificate that does not verify."""
        async with self._apply_lock:
            if block.header.height != self.ledger.head.height + 1:
                return False
            committed: CommittedBlock = await self._run(
                self.ledger.commit_certified, block, certificate
            )
        height = committed.block.header.height
        self.mempool.settle_committed(height, committed.block.transactions)
        self.mempool.drop_expired(height + 1)
        self.network.broadcast(FrameKind.STATUS, enc.encode([enc.encode_int(height)]))
        for listener in self._listeners:
            try:
                listener(committed)
            except Exception:
                log.exception("block listener failed")
        return True

    def _start_next_height(self) -> None:
        """Start deciding the height after the ledger's head, unless already doing so."""
        assert self.wal is not None
        height = self.ledger.head.height + 1
        if self._stopped or self.state.height >= height:
            return
        self.wal.prune_below(height)
        self._seen.clear()
        replay = self.wal.messages_at(height)
        schedule = self.schedule_for(height)
        if self.config.skip_absent_proposers:
            schedule = with_absent_proposers(schedule, self.ledger, height)
        self.validators = schedule.validators
        self._use_key_of_set(height)
        self.feed(StartHeight(height, schedule, replay))
        held, self._future = self._future, {}
        for digest, message in held.items():
            self._seen.add(digest)
            self._deliver(message)

    def _use_key_of_set(self, height: int) -> None:
        """Sign ``height`` with the keyring key its validator set holds, if the key signing
        so far is not in it (a rotation rules from this height). The keyring folder is read
        at every height (only new or changed files are opened), so the status shows a rotated
        key as held before it rules."""
        if self.keyring is None:
            return
        self.keyring.scan()
        if self.is_member:
            return
        key = self.keyring.key_for(self.validators)
        if key is None or key is self.key:
            return
        address = key.public_key.address
        log.warning("consensus: signing with rotated key 0x%s from height %d (was 0x%s)",
                    address.hex(), height, self.key.public_key.address.hex())  # fmt: skip
        self.key = key
        self.ledger.use_validator_key(key)
        self.state = replace(self.state, config=replace(self.state.config, address=address))
        self.counters["key_rotations"] += 1

    # -- messages from peers ---------------------------------------------------------------

    def _on_frame(self, peer_key: bytes, kind: FrameKind, body: bytes) -> None:
        if kind is FrameKind.CONSENSUS:
            self._on_consensus(body)
        elif kind is FrameKind.TX:
            self._spawn(self.tx_gossip.on_frame(body))
        elif kind is FrameKind.STATUS:
            self.sync.on_status(peer_key, body)
        elif kind is FrameKind.SYNC_REQUEST:
            self._spawn(self.sync.on_request(peer_key, body))
        elif kind is FrameKind.SYNC_RESPONSE:
            self._spawn(self.sync.on_response(peer_key, body))

    def _on_consensus(self, body: bytes) -> None:
        digest = sm3(body)
        if digest in self._seen:
            return
        try:
            message = decode_message(body)
        except EncodingError:
            self.counters["malformed_messages"] += 1
            return
        height = self.state.height
        if message.height == height + 1:
            if len(self._future) < MAX_FUTURE_MESSAGES:
                self._future[digest] = message
            return
        if message.height != height:
            return
        self._seen.add(digest)
        self._deliver(message)

    def _deliver(self, message: Message) -> None:
        """Verify ``message`` at the boundary and feed it, or count and drop it."""
        if message.height != self.state.height:
            return
        try:
            if isinstance(message, Proposal):
                verify_proposal(message, self.validators, self.chain_id, hash_block=block_hash_of)
            else:
                verify_vote(message, self.validators, self.chain_id)
        except UnknownValidator:
            self.counters["unknown_validator"] += 1
            return
        except BadMessageSignature:
            self.counters["bad_signature"] += 1
            return
        except InvalidMessage:
            self.counters["invalid_messages"] += 1
            return
        self.counters["accepted_messages"] += 1
        if isinstance(message, Vote):
            self._late_precommits.offer(message)
        self.feed(_received(message))

    # -- gossip ----------------------------------------------------------------------------

    async def _gossip_loop(self) -> None:
        interval = self.config.gossip_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                self._regossip()
            except Exception:
                log.exception("consensus: gossip failed")

    def _regossip(self) -> None:
        """Re-send own messages of the current height, status, and sync if behind."""
        assert self.wal is not None
        own = self.wal.messages_at(self.state.height)
        if own:
            latest = max(m.round for m in own)
            for message in own:
                if message.round >= latest - 1 or (
                    not isinstance(message, Proposal) and message.block_hash is not None
                ):
                    self.network.broadcast(FrameKind.CONSENSUS, encode_message(message))
        head = self.ledger.head.height
        self.network.broadcast(FrameKind.STATUS, enc.encode([enc.encode_int(head)]))
        self.sync.maybe_sync()
        self.tx_gossip.flush()

    # -- status (JSON-RPC) -----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``lianxin_getConsensusStatus`` reports in consensus mode."""
        return consensus_status(self)

    def check_validator_change(self, public_key: bytes, power: int) -> dict[str, Any]:
        """Whether changing the validator with ``public_key`` to ``power`` (0 removes it)
        leaves a set the nodes online now can bring to quorum: the contract's verdict (its
        guard counts recent certificate signers), the connected peers for information; see
        :func:`node.validator_check.check_validator_change`."""
        online = {self.key.public_key.address}
        online |= {PublicKey.from_bytes(k).address for k in self.network.connected()}
        return check_validator_change(self.ledger, public_key, power, online)

    def peers(self) -> list[dict[str, Any]]:
        """What ``lianxin_getPeers`` reports: every configured peer and its state."""
        return peer_status(self.network, self.sync.peer_heights)


def _received(message: Message) -> Event:
    if isinstance(message, Proposal):
        return ProposalReceived(message)
    return VoteReceived(message)
