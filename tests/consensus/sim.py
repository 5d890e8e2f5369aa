"""A seeded, virtual-time network of nodes running the pure consensus core.

Each process runs :func:`chain.consensus.step` behind a small driver shim that does what the
node's driver does: persists its own messages to a write-ahead log before signing and
sending them, signs (real SM2 keys, or a fast deterministic stand-in for large randomized
runs), verifies what arrives at the boundary, answers the application requests, applies
commits and starts the next height, and replays its log after a restart.

The network delays, drops, duplicates and reorders messages, partitions processes and heals
them, holds chosen messages until a given time, and crashes and restarts processes. Between
processes, messages spread the way the consensus gossip layer spreads them: a process is
sent every message of the height it is deciding, again and again, until one copy arrives
(so loss before the network stabilises only delays delivery, and a lagging or restarted
process catches up from the messages of the heights it missed).

With ``presence`` on, the shim also does what :mod:`node.proposer_presence` does: from
:data:`~node.proposer_presence.PRESENCE_GRACE_MS` after a round starts, and every
:data:`~node.proposer_presence.PRESENCE_RECHECK_MS` while no proposal of the round has
arrived, it feeds ``ProposerUnavailable`` when the round's proposer is crashed, partitioned
away from the process (its connection is down), or behind (lacks more than one block below
the height).

"Twins" are two processes with one validator key; both run honest code, so together they
equivocate. Their key counts as Byzantine: invariants are checked on the other processes.

An "unauthorised" validator proposes blocks that carry a transaction the chain's permissions
forbid (a frozen or unauthorised sender), and votes for them; honest processes judge every
proposal by the block rules (``ProcessProposal``) and prevote nil on such a block. Its key
counts as Byzantine too.

Invariants, checked as the run goes, raise :class:`InvariantViolation` with the seed:

- agreement: no two honest processes commit different blocks at one height;
- no honest key signs two different votes (or proposals) at one height, round and type;
- each process commits heights 1, 2, 3, ... in order, never going back;
- every own message was persisted before it was sent;
- every commit carries a certificate that verifies against the validator set;
- no honest process commits a block that breaks the block rules (an unauthorised
  transaction).

Liveness (every honest process commits within a bounded time after the last fault) is
checked by :meth:`Simulation.check_liveness`.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, Protocol

from chain import encoding as enc
from chain.commit import (
    CommitError,
    Validator,
    ValidatorSet,
    verify_commit_certificate,
)
from chain.consensus import (
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
    ProposerUnavailable,
    ScheduleTimeout,
    StartHeight,
    Step,
    TimeoutConfig,
    TimeoutFired,
    Vote,
    VoteReceived,
    VoteType,
    step,
    verify_proposal,
    verify_vote,
)
from chain.crypto import PrivateKey, sm3
from chain.errors import EncodingError
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate
from node.proposer_presence import PRESENCE_GRACE_MS, PRESENCE_RECHECK_MS, unavailable_reason

CHAIN_ID = 1337
"""Chain id of every simulated network."""

SIM_TIMEOUTS = TimeoutConfig(
    propose_ms=1000,
    propose_delta_ms=500,
    prevote_ms=500,
    prevote_delta_ms=250,
    precommit_ms=500,
    precommit_delta_ms=250,
)
"""Round timeouts of simulated nodes (shorter than production, same shape)."""

LATE_RESTART_MS = 500
"""Downtime of a crash on proposing that happens after its planned restart time."""

MessageKind = Literal["proposal", "prevote", "precommit"]


class InvariantViolation(AssertionError):
    """A safety or liveness property failed; the message names the seed and the time."""


# -- fault plan --------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """Processes in different groups cannot reach each other between ``start_ms`` and
    ``end_ms``; a process listed in no group reaches everyone."""

    groups: tuple[frozenset[int], ...]
    """Disjoint groups of process ids."""
    start_ms: int
    """When the partition begins."""
    end_ms: int | None
    """When it heals; ``None`` never."""


@dataclass(frozen=True)
class Loss:
    """Each transmission is lost with probability ``rate`` between the two times."""

    rate: float
    """Probability of losing one transmission."""
    start_ms: int
    """When losses begin."""
    end_ms: int | None
    """When they stop; ``None`` never."""


@dataclass(frozen=True)
class Crash:
    """Process ``process`` stops at ``at_ms`` (or right after it broadcasts its proposal at
    ``when_proposing``) and restarts from its write-ahead log at ``restart_ms``. A crash on
    proposing that comes after ``restart_ms`` restarts :data:`LATE_RESTART_MS` later."""

    process: int
    """Process id."""
    at_ms: int | None
    """Crash time, or ``None`` to crash on proposing."""
    restart_ms: int | None
    """Restart time, ``None`` never."""
    when_proposing: int | None = None
    """Height at which to crash right after broadcasting a proposal."""


@dataclass(frozen=True)
class Hold:
    """Messages matching this rule are not delivered before ``until_ms``."""

    kind: MessageKind | None
    """Message kind, ``None`` for any."""
    height: int | None
    """Height, ``None`` for any."""
    round: int | None
    """Round, ``None`` for any."""
    authors: frozenset[int] | None
    """Validator indices whose messages are held, ``None`` for any."""
    targets: frozenset[int] | None
    """Receiving process ids, ``None`` for any."""
    until_ms: int
    """Earliest delivery time."""


@dataclass(frozen=True)
class Schedule:
    """Everything that defines one simulated run."""

    validators: int = 4
    """Number of validator keys (process ids 0..validators-1 hold them in address order)."""
    powers: tuple[int, ...] = ()
    """Voting power per validator; empty means 1 each."""
    twins: tuple[int, ...] = ()
    """Validators that get a second process (ids validators, validators+1, ...)."""
    unauthorised: tuple[int, ...] = ()
    """Validators whose processes propose blocks with an unauthorised transaction."""
    seed: int = 0
    """Seed of the network's random choices."""
    signer: Literal["sm2", "fast"] = "sm2"
    """Real SM2 signatures, or the fast deterministic stand-in."""
    delay_ms: tuple[int, int] = (5, 60)
    """Range of one transmission's delay."""
    duplicate_rate: float = 0.0
    """Probability that a transmission is delivered twice."""
    gossip_ms: int = 500
    """Period of the gossip sweep that resends undelivered messages."""
    commit_delay_ms: int = 250
    """Wait between committing a height and starting the next (``timeout_commit``)."""
    partitions: tuple[Partition, ...] = ()
    """Network partitions."""
    losses: tuple[Loss, ...] = ()
    """Lossy periods."""
    crashes: tuple[Crash, ...] = ()
    """Crashes and restarts."""
    holds: tuple[Hold, ...] = ()
    """Targeted delays."""
    run_ms: int = 20_000
    """How long the scenario runs."""
    presence: bool = False
    """Feed ``ProposerUnavailable`` for a proposer that is crashed, cut off or behind."""

    @property
    def processes(self) -> int:
        """Number of processes, twins included."""
        return self.validators + len(self.twins)

    @property
    def voting_powers(self) -> tuple[int, ...]:
        """Power per validator index."""
        return self.powers or tuple(1 for _ in range(self.validators))

    @property
    def stable_after_ms(self) -> int:
        """When the last fault ends (the global stabilisation time)."""
        ends = [0]
        ends += [p.end_ms if p.end_ms is not None else self.run_ms for p in self.partitions]
        ends += [x.end_ms if x.end_ms is not None else self.run_ms for x in self.losses]
        ends += [h.until_ms for h in self.holds]
        for crash in self.crashes:
            ends.append(crash.restart_ms if crash.restart_ms is not None else self.run_ms)
            if crash.at_ms is not None:
                ends.append(crash.at_ms)
        return max(ends)

    def validator_of(self, process: int) -> int:
        """The validator index whose key ``process`` holds."""
        return process if process < self.validators else self.twins[process - self.validators]

    def byzantine_validators(self) -> frozenset[int]:
        """Validators whose key is held by more than one process, or that propose blocks
        with unauthorised transactions."""
        return frozenset(self.twins) | frozenset(self.unauthorised)


# -- keys and signatures -----------------------------------------------------------------


@lru_cache(maxsize=16)
def validator_keys(count: int) -> tuple[PrivateKey, ...]:
    """``count`` fixed SM2 keys, sorted by address (so index order is proposer order)."""
    keys = [
        PrivateKey.from_bytes(sm3(b"lianxin-sim-validator" + i.to_bytes(4, "big")))
        for i in range(count)
    ]
    return tuple(sorted(keys, key=lambda k: k.public_key.address))


def sim_block_hash(block: bytes) -> Hash32:
    """How simulated blocks are hashed (SM3 of the bytes)."""
    return sm3(block)


def make_block(
    height: int, round_: int, process: int, time_ms: int, *, unauthorised: bool = False
) -> bytes:
    """The block a simulated application proposes: distinct per process (so twins conflict)
    and stamped with the proposer's clock, as a real header is; ``unauthorised`` marks a
    block that carries a transaction the permissions of its parent state forbid."""
    return enc.encode(
        [
            b"sim-block",
            enc.encode_int(height),
            enc.encode_int(round_),
            enc.encode_int(process),
            enc.encode_int(time_ms),
            enc.encode_int(1 if unauthorised else 0),
        ]
    )


def block_is_well_formed(block: bytes, block_hash: Hash32) -> bool:
    """Whether ``block`` decodes as a simulated block with this hash."""
    try:
        tag, *_ = enc.as_list(enc.decode(block), "SimBlock", 6)
    except EncodingError:
        return False
    return tag == b"sim-block" and sim_block_hash(block) == block_hash


def carries_unauthorised(block: bytes) -> bool:
    """Whether a well-formed simulated block carries an unauthorised transaction."""
    *_, flag = enc.as_list(enc.decode(block), "SimBlock", 6)
    return enc.decode_int(flag, "SimBlock.unauthorised") != 0


def block_is_valid(block: bytes, block_hash: Hash32) -> bool:
    """The simulated application's ``ProcessProposal``: well formed, and no unauthorised
    transaction (the permission rule every honest node applies to every block)."""
    return block_is_well_formed(block, block_hash) and not carries_unauthorised(block)


class Signer(Protocol):
    """Signing and boundary verification of one simulated network."""

    def sign(self, validator: int, message: Message) -> Message:
        """``message`` signed with validator ``validator``'s key."""
        ...

    def verify(self, message: Message, validators: ValidatorSet) -> None:
        """Raise InvalidMessage unless ``message`` is correctly signed."""
        ...

    def verify_certificate(
        self, certificate: CommitCertificate, validators: ValidatorSet, block_hash: Hash32
    ) -> None:
        """Raise CommitError unless ``certificate`` commits ``block_hash``."""
        ...


class Sm2Signer:
    """Real SM2 signatures, verified with :mod:`chain.consensus`'s boundary functions. Each
    distinct signed message is verified once per run (the network delivers the same bytes to
    every process; verifying them again proves nothing new and dominates run time)."""

    def __init__(self, keys: tuple[PrivateKey, ...]) -> None:
        self.keys = keys
        self.verified: set[Message] = set()

    def sign(self, validator: int, message: Message) -> Message:
        return message.with_signature(self.keys[validator].sign(message.sign_bytes(CHAIN_ID)))

    def verify(self, message: Message, validators: ValidatorSet) -> None:
        if message in self.verified:
            return
        if isinstance(message, Proposal):
            verify_proposal(message, validators, CHAIN_ID, hash_block=sim_block_hash)
        else:
            verify_vote(message, validators, CHAIN_ID)
        self.verified.add(message)

    def verify_certificate(
        self, certificate: CommitCertificate, validators: ValidatorSet, block_hash: Hash32
    ) -> None:
        verify_commit_certificate(
            certificate,
            validators,
            chain_id=CHAIN_ID,
            block_hash=block_hash,
            height=certificate.height,
        )


class FastSigner:
    """A deterministic keyed-hash stand-in for SM2, for speed in large randomized runs. It
    proves nothing cryptographically; it keeps the data flow identical."""

    def __init__(self, keys: tuple[PrivateKey, ...]) -> None:
        self.secrets = {k.public_key.address: k.to_bytes() for k in keys}
        self.addresses = [k.public_key.address for k in keys]

    def _tag(self, author: Address, sign_bytes: bytes) -> bytes:
        return bytes(sm3(self.secrets[author] + sign_bytes))

    def sign(self, validator: int, message: Message) -> Message:
        tag = self._tag(self.addresses[validator], message.sign_bytes(CHAIN_ID))
        return message.with_signature(tag)

    def verify(self, message: Message, validators: ValidatorSet) -> None:
        author = message.proposer if isinstance(message, Proposal) else message.validator
        if author not in validators.by_address or author not in self.secrets:
            raise InvalidMessage("unknown author")
        if message.signature != self._tag(author, message.sign_bytes(CHAIN_ID)):
            raise InvalidMessage("bad signature")
        if isinstance(message, Proposal) and sim_block_hash(message.block) != message.block_hash:
            raise InvalidMessage("block hash mismatch")

    def verify_certificate(
        self, certificate: CommitCertificate, validators: ValidatorSet, block_hash: Hash32
    ) -> None:
        if certificate.block_hash != block_hash:
            raise CommitError("certificate for another block")
        power = 0
        for entry in certificate.signatures:
            vote = Vote(
                type=VoteType.PRECOMMIT,
                height=certificate.height,
                round=certificate.round,
                block_hash=block_hash,
                validator=entry.validator,
            )
            if entry.signature != self._tag(entry.validator, vote.sign_bytes(CHAIN_ID)):
                raise CommitError("bad precommit signature")
            power += validators.by_address[entry.validator].power
        if power < validators.quorum_power:
            raise CommitError("below quorum")


# -- processes ---------------------------------------------------------------------------

MessageId = tuple[object, ...]


def message_id(message: Message) -> MessageId:
    """Identity of a message's content (two signatures of one content are one message)."""
    if isinstance(message, Proposal):
        return ("proposal", message.height, message.round, message.proposer, message.block_hash)
    return ("vote", int(message.type), message.height, message.round, message.validator,
            message.block_hash)  # fmt: skip


def kind_of(message: Message) -> MessageKind:
    """``proposal``, ``prevote`` or ``precommit``."""
    if isinstance(message, Proposal):
        return "proposal"
    return "prevote" if int(message.type) == 1 else "precommit"


@dataclass
class CommittedBlock:
    """One height as a process committed it."""

    height: int
    """The height."""
    round: int
    """The round it was decided in."""
    block_hash: Hash32
    """The block."""
    time_ms: int
    """Virtual time of the commit."""


@dataclass
class Process:
    """One simulated node: durable log and chain, volatile consensus state."""

    pid: int
    """Process id."""
    validator: int
    """Index of the validator key it holds."""
    honest: bool
    """False for the twins of a Byzantine key."""
    state: ConsensusState | None = None
    """The consensus state; ``None`` while crashed."""
    incarnation: int = 0
    """Bumped at every crash, so that timers of a previous life are ignored."""
    wal: dict[int, list[Message]] = field(default_factory=dict)
    """Own unsigned messages per height (durable)."""
    committed: list[CommittedBlock] = field(default_factory=list)
    """Committed heights in order (durable)."""
    delivered: set[MessageId] = field(default_factory=set)
    """Messages delivered since the last restart (volatile)."""
    crashed_at_ms: int | None = None
    """Virtual time of the last crash."""

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.state is not None

    @property
    def height(self) -> int:
        """Height the process is deciding (0 when crashed)."""
        return 0 if self.state is None else self.state.height


@dataclass(order=True)
class _Item:
    time_ms: int
    seq: int
    action: Callable[[], None] = field(compare=False)


@dataclass
class Stats:
    """Counters of one run."""

    steps: int = 0
    """State-machine steps taken."""
    transmissions: int = 0
    """Messages put on the wire (gossip resends included)."""
    deliveries: int = 0
    """Messages delivered to a process."""
    rejected: int = 0
    """Messages refused at the boundary."""
    refused_proposals: int = 0
    """Proposals an honest process judged invalid (``ProcessProposal`` said no)."""


StepFunction = Callable[[ConsensusState, Event], tuple[ConsensusState, list[Effect]]]


class Simulation:
    """One seeded run of a :class:`Schedule`. Deterministic: the same schedule gives the
    same run."""

    def __init__(self, schedule: Schedule, *, step_function: StepFunction = step) -> None:
        self.schedule = schedule
        self.step_function = step_function
        self.rng = random.Random(schedule.seed)
        keys = validator_keys(schedule.validators)
        self.addresses = [k.public_key.address for k in keys]
        self.validator_set = ValidatorSet.of(
            Validator(k.public_key.to_bytes(), p)
            for k, p in zip(keys, schedule.voting_powers, strict=True)
        )
        self.signer: Signer = Sm2Signer(keys) if schedule.signer == "sm2" else FastSigner(keys)
        byzantine = schedule.byzantine_validators()
        self.processes = [
            Process(pid, schedule.validator_of(pid), schedule.validator_of(pid) not in byzantine)
            for pid in range(schedule.processes)
        ]
        self.now_ms = 0
        self.queue: list[_Item] = []
        self.seq = 0
        self.log: dict[int, dict[MessageId, tuple[int, Message]]] = {}
        self.in_flight: set[tuple[int, MessageId]] = set()
        self.decisions: dict[int, Hash32] = {}
        self.signed: dict[tuple[int, int, int, str], Message] = {}
        self.evidence: list[EquivocationEvidence] = []
        self.stats = Stats()
        self.schedules: list[ProposerSchedule] = [ProposerSchedule.initial(self.validator_set)]
        self.crash_on_propose = {
            (c.process, c.when_proposing): c for c in schedule.crashes if c.when_proposing
        }
        self.pending_restarts = 0
        self.last_restart_ms = 0
        self._plan()

    # -- plumbing ------------------------------------------------------------------------

    def fail(self, what: str) -> None:
        """Raise an InvariantViolation naming the seed and the virtual time."""
        raise InvariantViolation(f"seed={self.schedule.seed} t={self.now_ms}ms: {what}")

    def at(self, time_ms: int, action: Callable[[], None]) -> None:
        """Run ``action`` at virtual time ``time_ms``."""
        self.seq += 1
        heapq.heappush(self.queue, _Item(max(time_ms, self.now_ms), self.seq, action))

    def schedule_for(self, height: int) -> ProposerSchedule:
        """Proposer schedule of ``height`` (the validator set never changes here)."""
        while len(self.schedules) < height:
            self.schedules.append(self.schedules[-1].next_height())
        return self.schedules[height - 1]

    def _plan(self) -> None:
        for process in self.processes:
            self.at(0, lambda p=process: self.start(p))
        for crash in self.schedule.crashes:
            if crash.at_ms is not None:
                self.at(crash.at_ms, lambda c=crash: self.crash(self.processes[c.process]))
            if crash.restart_ms is not None:
                self.pending_restarts += 1
                self.at(crash.restart_ms, lambda c=crash: self.planned_restart(c))
        heal_times = {p.end_ms for p in self.schedule.partitions if p.end_ms is not None}
        heal_times |= {x.end_ms for x in self.schedule.losses if x.end_ms is not None}
        for time_ms in sorted(heal_times):
            self.at(time_ms, self.sweep_all)
        self.at(self.schedule.gossip_ms, self.periodic_sweep)

    def run(self, until_ms: int, stop: Callable[[], bool] | None = None) -> None:
        """Process everything scheduled up to ``until_ms`` (or until ``stop()`` is true)."""
        while self.queue and self.queue[0].time_ms <= until_ms:
            item = heapq.heappop(self.queue)
            self.now_ms = item.time_ms
            item.action()
            if stop is not None and stop():
                return
        self.now_ms = max(self.now_ms, until_ms)

    # -- processes -----------------------------------------------------------------------

    def start(self, process: Process) -> None:
        """Boot ``process`` from its durable state (first start or restart)."""
        process.state = ConsensusState.initial(
            ConsensusConfig(CHAIN_ID, self.addresses[process.validator], SIM_TIMEOUTS)
        )
        process.delivered.clear()
        height = len(process.committed) + 1
        replay = tuple(process.wal.get(height, ()))
        self.feed(process, StartHeight(height, self.schedule_for(height), replay))

    def crash(self, process: Process) -> None:
        """Stop ``process``: its consensus state and received messages are lost."""
        if not process.alive:
            return
        process.state = None
        process.incarnation += 1
        process.delivered.clear()
        process.crashed_at_ms = self.now_ms

    def planned_restart(self, crash: Crash) -> None:
        """A restart of the fault plan: counted, so liveness is judged after the last one."""
        self.pending_restarts -= 1
        self.last_restart_ms = self.now_ms
        self.restart(self.processes[crash.process])

    def restart(self, process: Process) -> None:
        """Start ``process`` again from its write-ahead log and chain."""
        if process.alive:
            return
        self.start(process)

    def local(self, process: Process, delay_ms: int, event: Event) -> None:
        """Feed ``event`` to ``process`` after ``delay_ms``, unless it crashed meanwhile."""
        incarnation = process.incarnation

        def fire() -> None:
            if process.alive and process.incarnation == incarnation:
                self.feed(process, event)

        self.at(self.now_ms + delay_ms, fire)

    def feed(self, process: Process, event: Event) -> None:
        """One state-machine step, then the driver carries out the effects in order."""
        assert process.state is not None
        before = process.height
        process.state, effects = self.step_function(process.state, event)
        self.stats.steps += 1
        for effect in effects:
            self.carry_out(process, effect)
        if process.height != before:
            self.sweep(process)

    def carry_out(self, process: Process, effect: Effect) -> None:
        """What a node's driver does with one effect."""
        if isinstance(effect, Persist):
            process.wal.setdefault(effect.message.height, []).append(effect.message)
        elif isinstance(effect, Broadcast):
            self.send_own(process, effect.message)
        elif isinstance(effect, ScheduleTimeout):
            timeout = TimeoutFired(effect.height, effect.round, effect.step)
            self.local(process, effect.delay_ms, timeout)
            if self.schedule.presence and effect.step is Step.PROPOSE:
                self.watch_proposer(process, effect.height, effect.round, PRESENCE_GRACE_MS)
        elif isinstance(effect, PrepareProposal):
            unauthorised = process.validator in self.schedule.unauthorised
            block = make_block(
                effect.height, effect.round, process.pid, self.now_ms, unauthorised=unauthorised
            )
            prepared = ProposalPrepared(effect.height, effect.round, sim_block_hash(block), block)
            self.local(process, 0, prepared)
        elif isinstance(effect, ProcessProposal):
            if process.honest:
                verdict = block_is_valid(effect.block, effect.block_hash)
                self.stats.refused_proposals += 0 if verdict else 1
            else:
                # A Byzantine process votes for whatever is well formed.
                verdict = block_is_well_formed(effect.block, effect.block_hash)
            self.local(process, 0, ProposalProcessed(effect.height, effect.block_hash, verdict))
        elif isinstance(effect, Commit):
            self.on_commit(process, effect)
        elif isinstance(effect, EquivocationEvidence) and process.honest:
            self.evidence.append(effect)

    def watch_proposer(self, process: Process, height: int, round_: int, delay_ms: int) -> None:
        """The presence check of :mod:`node.proposer_presence`, in virtual time."""
        incarnation = process.incarnation

        def check() -> None:
            state = process.state
            if (
                state is None
                or process.incarnation != incarnation
                or (state.height, state.round, state.step) != (height, round_, Step.PROPOSE)
                or state.proposals.get(round_)
                or state.schedule is None
            ):
                return
            proposer = self.addresses.index(state.schedule.proposer(round_))
            others = [p for p in self.processes if p.validator == proposer]
            reason = unavailable_reason(
                connected=any(self.link_up(process, p) for p in others),
                announced=max(self.committed_height(p) for p in others),
                height=height,
            )
            if reason is None or proposer == process.validator:
                self.watch_proposer(process, height, round_, PRESENCE_RECHECK_MS)
                return
            self.feed(process, ProposerUnavailable(height, round_))

        self.at(self.now_ms + delay_ms, check)

    def link_up(self, process: Process, peer: Process) -> bool:
        """Whether ``process`` still sees a connection to ``peer``. As on TCP, the close of
        a crashed peer's connection arrives after what it sent before crashing: it is seen
        once the longest transmission delay has passed."""
        if not self.connected(process.pid, peer.pid):
            return False
        if peer.alive:
            return True
        crashed = peer.crashed_at_ms if peer.crashed_at_ms is not None else self.now_ms
        return self.now_ms - crashed < self.schedule.delay_ms[1]

    def send_own(self, process: Process, message: Message) -> None:
        """Sign, check the invariants of signing, send to all and loop back."""
        if message.unsigned() not in process.wal.get(message.height, ()):
            self.fail(f"process {process.pid} sends {message} before persisting it")
        self.check_single_signature(process, message)
        signed = self.signer.sign(process.validator, message)
        mid = message_id(signed)
        self.log.setdefault(signed.height, {}).setdefault(mid, (process.pid, signed))
        for other in self.processes:
            if other.pid != process.pid:
                self.transmit(process.pid, other.pid, mid, signed)
        process.delivered.add(mid)
        event: Event = (
            ProposalReceived(signed) if isinstance(signed, Proposal) else VoteReceived(signed)
        )
        self.local(process, 0, event)
        trigger = self.crash_on_propose.get((process.pid, signed.height))
        if trigger is not None and isinstance(signed, Proposal):
            del self.crash_on_propose[(process.pid, signed.height)]
            self.at(self.now_ms + 1, lambda: self.crash(process))
            if trigger.restart_ms is not None and trigger.restart_ms <= self.now_ms + 1:
                self.pending_restarts += 1
                self.at(self.now_ms + 1 + LATE_RESTART_MS, lambda: self.planned_restart(trigger))

    def check_single_signature(self, process: Process, message: Message) -> None:
        """No honest key signs two different messages at one height, round and kind."""
        if not process.honest:
            return
        key = (process.validator, message.height, message.round, kind_of(message))
        previous = self.signed.setdefault(key, message)
        if previous != message:
            self.fail(
                f"validator {process.validator} signs twice at height {message.height} round "
                f"{message.round} {kind_of(message)}: {previous} then {message}"
            )

    def on_commit(self, process: Process, commit: Commit) -> None:
        """Invariants of a commit, then apply it and start the next height."""
        last = process.committed[-1].height if process.committed else 0
        if commit.height != last + 1:
            self.fail(f"process {process.pid} commits height {commit.height} after {last}")
        try:
            self.signer.verify_certificate(
                commit.certificate, self.validator_set, commit.block_hash
            )
        except CommitError as exc:
            self.fail(f"process {process.pid} commits with a bad certificate: {exc}")
        if process.honest and carries_unauthorised(commit.block):
            self.fail(
                f"process {process.pid} commits a block with an unauthorised transaction at "
                f"height {commit.height}"
            )
        if process.honest:
            decided = self.decisions.setdefault(commit.height, commit.block_hash)
            if decided != commit.block_hash:
                self.fail(
                    f"fork at height {commit.height}: process {process.pid} commits "
                    f"{commit.block_hash.hex()[:12]}, another honest process "
                    f"{decided.hex()[:12]}"
                )
        process.committed.append(
            CommittedBlock(commit.height, commit.round, commit.block_hash, self.now_ms)
        )
        next_height = commit.height + 1
        replay = tuple(process.wal.get(next_height, ()))
        start = StartHeight(next_height, self.schedule_for(next_height), replay)
        self.local(process, self.schedule.commit_delay_ms, start)

    # -- network -------------------------------------------------------------------------

    def connected(self, a: int, b: int) -> bool:
        """Whether ``a`` and ``b`` can reach each other now."""
        for partition in self.schedule.partitions:
            end = partition.end_ms if partition.end_ms is not None else float("inf")
            if not partition.start_ms <= self.now_ms < end:
                continue
            group_a = next((g for g in partition.groups if a in g), None)
            group_b = next((g for g in partition.groups if b in g), None)
            if group_a is not None and group_b is not None and group_a is not group_b:
                return False
        return True

    def loss_rate(self) -> float:
        """Probability of losing a transmission now."""
        rate = 0.0
        for loss in self.schedule.losses:
            end = loss.end_ms if loss.end_ms is not None else float("inf")
            if loss.start_ms <= self.now_ms < end:
                rate = max(rate, loss.rate)
        return rate

    def held_until(self, message: Message, target: int) -> int:
        """Earliest delivery time of ``message`` to ``target`` under the hold rules."""
        author = message.proposer if isinstance(message, Proposal) else message.validator
        author_index = self.addresses.index(author)
        until = 0
        for hold in self.schedule.holds:
            if (
                (hold.kind is None or hold.kind == kind_of(message))
                and (hold.height is None or hold.height == message.height)
                and (hold.round is None or hold.round == message.round)
                and (hold.authors is None or author_index in hold.authors)
                and (hold.targets is None or target in hold.targets)
            ):
                until = max(until, hold.until_ms)
        return until

    def transmit(self, source: int, target: int, mid: MessageId, message: Message) -> None:
        """Put one copy of ``message`` on the link ``source`` to ``target``."""
        if not self.connected(source, target):
            return
        self.stats.transmissions += 1
        if self.rng.random() < self.loss_rate():
            return
        low, high = self.schedule.delay_ms
        copies = 2 if self.rng.random() < self.schedule.duplicate_rate else 1
        earliest = self.held_until(message, target)
        self.in_flight.add((target, mid))
        for _ in range(copies):
            arrival = max(self.now_ms + self.rng.randint(low, high), earliest)
            self.at(arrival, lambda: self.deliver(target, mid, message))

    def deliver(self, target: int, mid: MessageId, message: Message) -> None:
        """A copy arrives: verify at the boundary, then step the target's state machine."""
        self.in_flight.discard((target, mid))
        process = self.processes[target]
        state = process.state
        if state is None or state.height != message.height or state.decided:
            return  # The gossip sweep resends it if the target comes to need it.
        try:
            self.signer.verify(message, self.validator_set)
        except InvalidMessage:
            self.stats.rejected += 1
            return
        self.stats.deliveries += 1
        process.delivered.add(mid)
        event: Event = (
            ProposalReceived(message) if isinstance(message, Proposal) else VoteReceived(message)
        )
        self.feed(process, event)

    def sweep(self, process: Process) -> None:
        """Gossip: resend to ``process`` every message of its height it has not received."""
        if not process.alive:
            return
        for mid, (origin, message) in self.log.get(process.height, {}).items():
            if mid in process.delivered or (process.pid, mid) in self.in_flight:
                continue
            relay = self.relay_for(origin, mid, process.pid)
            if relay is not None:
                self.transmit(relay, process.pid, mid, message)

    def relay_for(self, origin: int, mid: MessageId, target: int) -> int | None:
        """A running process that has the message and can reach ``target``."""
        if self.processes[origin].alive and self.connected(origin, target):
            return origin
        for other in self.processes:
            if other.alive and mid in other.delivered and self.connected(other.pid, target):
                return other.pid
        return None

    def sweep_all(self) -> None:
        """Gossip sweep to every running process."""
        for process in self.processes:
            self.sweep(process)

    def periodic_sweep(self) -> None:
        """The gossip layer's steady resending."""
        self.sweep_all()
        self.at(self.now_ms + self.schedule.gossip_ms, self.periodic_sweep)

    # -- observations --------------------------------------------------------------------

    def honest(self) -> list[Process]:
        """Processes whose key is not shared with a twin."""
        return [p for p in self.processes if p.honest]

    def longest_commit_gap_ms(self, since_ms: int) -> int:
        """The longest time from ``since_ms`` to the end of the run in which no honest
        process committed a new height (a height counts when the first one commits it)."""
        first: dict[int, int] = {}
        for process in self.honest():
            for commit in process.committed:
                first[commit.height] = min(first.get(commit.height, commit.time_ms), commit.time_ms)
        times = [since_ms, *sorted(t for t in first.values() if t > since_ms), self.now_ms]
        return max(b - a for a, b in itertools.pairwise(times))

    def committed_height(self, process: Process) -> int:
        """Highest height ``process`` committed (0 for none)."""
        return len(process.committed)

    def check_liveness(self, *, new_heights: int = 2, window_ms: int = 60_000) -> None:
        """After the last fault, every honest process commits ``new_heights`` heights beyond
        the best honest height at that time within ``window_ms``; raises otherwise."""
        stable = self.schedule.stable_after_ms
        self.run(stable)
        while self.pending_restarts and self.queue:
            self.run(self.now_ms + self.schedule.gossip_ms)
        stable = max(stable, self.last_restart_ms)
        target = max(self.committed_height(p) for p in self.honest()) + new_heights

        def done() -> bool:
            return all(self.committed_height(p) >= target for p in self.honest())

        if not done():
            self.run(stable + window_ms, stop=done)
        if not done():
            heights = {p.pid: self.committed_height(p) for p in self.honest()}
            self.fail(
                f"no progress after stabilisation at {stable}ms: heights {heights}, "
                f"wanted {target} within {window_ms}ms"
            )


def run_schedule(schedule: Schedule, *, step_function: StepFunction = step) -> Simulation:
    """Run ``schedule`` for its full duration and return the finished simulation."""
    simulation = Simulation(schedule, step_function=step_function)
    simulation.run(schedule.run_ms)
    return simulation
