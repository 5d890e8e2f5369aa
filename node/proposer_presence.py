"""Whether the proposer of the round this node waits on can propose at all, from p2p state.

The proposer rotation passes over a validator only after it has been missing from
:data:`chain.liveness.PROPOSER_LIVENESS_WINDOW` certificates, so during a rolling restart the
stopped validator's turns still come, and each would cost the full propose timeout, then the
nil votes, then the next round. This node knows more, locally and at once:

- **disconnected**: the proposer's p2p connection to this node is down (a stopped node
  closes its connections, so its peers see it go within milliseconds; a silent link is
  closed after ``p2p_peer_timeout_ms``). Its proposal cannot reach us directly; no other
  node relays proposals.
- **behind**: the proposer last announced (STATUS frames, sent at every commit and every
  gossip interval) a committed height more than :data:`BEHIND_BLOCKS` below the height before
  the one being decided: it is catching up by block sync, and cannot propose this height until
  it has. One block short is not behind: a proposer that is finishing the block below as this
  node starts the height (a slower machine, a STATUS frame on its way) is about to propose.

Then the driver feeds :class:`chain.consensus.ProposerUnavailable` and the state machine
prevotes nil at once instead of at the propose timeout. The rule only ever makes the propose
timeout shorter, which the algorithm allows at any time (safety never rests on timeouts); a
wrong guess costs one round, as a short timeout would. It is checked
:data:`PRESENCE_GRACE_MS` after the round starts and again every :data:`PRESENCE_RECHECK_MS`
until the round's proposal arrives or the step moves on, so a proposer that drops out
mid-round is noticed too, and one that reconnects in time is waited for. The machine itself
ignores the event for a round this node proposes and once a proposal of the round is in.

A proposer whose validator address is not the address of a configured peer's node key (a
validator that rotated its consensus key) is never called unavailable: the node cannot tell
which connection is its, so it waits as before.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping

from chain.consensus import ConsensusState, Event, ProposerUnavailable, Step
from chain.crypto import PublicKey
from chain.primitives import Address
from node.p2p import Network

PRESENCE_GRACE_MS = 50
"""How long after a round starts its proposer is first checked. Not at once: the nodes start a
height at slightly different times, and a proposer finishing its catch-up right then would be
seen behind by some and not by others, whose votes then split (nil and the block) and the round
fails slowly, at the prevote timeout. In the simulator's rolling restart (12 seeds) the longest
time without a new height was 0.65-0.94 s with 50 ms, and over 1.4 s in 3 seeds with 0 ms."""

PRESENCE_RECHECK_MS = 100
"""How often the proposer is checked again while its proposal has not arrived."""

BEHIND_BLOCKS = 1
"""A proposer is behind when it lacks more than this many blocks below the height decided."""


def unavailable_reason(*, connected: bool, announced: int | None, height: int) -> str | None:
    """Why a proposer cannot propose ``height``, or ``None`` if it may: ``"disconnected"``
    when its connection to this node is down, ``"behind"`` when the committed height it
    last announced (``None``: nothing heard yet) is below ``height - 1 - BEHIND_BLOCKS``."""
    if not connected:
        return "disconnected"
    if announced is not None and announced < height - 1 - BEHIND_BLOCKS:
        return "behind"
    return None


class ProposerPresence:
    """Feeds :class:`~chain.consensus.ProposerUnavailable` for a round whose proposer cannot
    propose (see the module docstring)."""

    def __init__(
        self,
        network: Network,
        peer_heights: Mapping[bytes, int],
        counters: Counter[str],
        *,
        state: Callable[[], ConsensusState],
        feed: Callable[[Event], None],
    ) -> None:
        """``peer_heights`` is the committed height each peer last announced (by node key);
        ``state`` returns the machine's current state; ``feed`` steps it."""
        self._network = network
        self._peer_heights = peer_heights
        self._counters = counters
        self._state = state
        self._feed = feed
        self._keys = {PublicKey.from_bytes(key).address: key for key in network.peers}
        self._timers: set[asyncio.TimerHandle] = set()

    def unavailable(self, proposer: Address, height: int) -> str | None:
        """Why ``proposer`` cannot propose ``height`` as far as this node can tell, or
        ``None`` (also for a validator this node has no configured connection to)."""
        key = self._keys.get(proposer)
        if key is None:
            return None
        connected = key in set(self._network.connected())
        return unavailable_reason(
            connected=connected, announced=self._peer_heights.get(key), height=height
        )

    def watch(self, height: int, round_: int) -> None:
        """Check the proposer of ``(height, round_)`` from :data:`PRESENCE_GRACE_MS` on,
        while the round waits for its proposal."""
        self._later(PRESENCE_GRACE_MS, height, round_)

    def stop(self) -> None:
        """Cancel every pending check."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _later(self, delay_ms: int, height: int, round_: int) -> None:
        def check() -> None:
            self._timers.discard(handle)
            self._check(height, round_)

        handle = asyncio.get_running_loop().call_later(delay_ms / 1000, check)
        self._timers.add(handle)

    def _check(self, height: int, round_: int) -> None:
        state = self._state()
        if (
            state.height != height
            or state.round != round_
            or state.step is not Step.PROPOSE
            or state.decided
            or state.schedule is None
            or state.proposals.get(round_)
        ):
            return
        proposer = state.schedule.proposer(round_)
        if proposer == state.config.address:
            return
        reason = self.unavailable(proposer, height)
        if reason is None:
            self._later(PRESENCE_RECHECK_MS, height, round_)
            return
        self._counters[f"proposer_{reason}"] += 1
        self._feed(ProposerUnavailable(height, round_))
