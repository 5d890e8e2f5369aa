"""Proposer rotation weighted by voting power: CometBFT's proposer-priority algorithm.

Every validator holds a priority. One increment adds each validator's power to its
priority, picks the highest priority (ties go to the lower address) as proposer, and
subtracts the total power from the proposer's priority. Over ``total_power`` increments
each validator proposes ``power`` times. Before a run of increments, priorities are
rescaled so that their spread stays within twice the total power, and centred on zero,
as CometBFT does, so that a new member cannot starve or dominate the others.

A :class:`ProposerSchedule` mirrors a CometBFT validator set at a height: the priorities
after the increment that chose the proposer of round 0, and that proposer. The proposer of
round ``r > 0`` comes from ``r`` further increments of a copy; the next height's schedule is
one increment on, whatever round the height was decided in.

Absent validators. CometBFT's proposer selection (spec/consensus/proposer-selection.md:
R1 determinism, R2 fairness, each validator elected with a frequency proportional to its
power) keeps a validator that is down in the rotation: every time its priority makes it
proposer, every node waits ``timeout_propose`` (and the round's prevote and precommit)
before round 1 (cometbft/cometbft#3102 counts that cost). CometBFT's own answer lies with the
application: ``FinalizeBlock`` hands it the decided last commit (``VoteInfo`` with a
``BlockIDFlag`` per validator), and the Cosmos SDK's ``x/slashing`` counts each validator's
missed blocks over ``signed_blocks_window`` and jails one that signed fewer than
``min_signed_per_window``, which takes it out of the set and so out of the rotation. Here
the same evidence (the signers of the last commits carried by committed blocks,
:func:`chain.liveness.absent_validators`) takes a validator that signed none of the recent
certificates out of the *proposer rotation only*: it keeps its power and its vote, so the
quorum and the fault tolerance are those of the whole set, and it returns to the rotation
as soon as a certificate carries its precommit again. ``absent`` is a fact of
the chain (identical on every node), so R1 holds; R2 holds among the validators present,
and the rounds' proposers are the rotation's picks with the absent ones passed over; the
priorities themselves advance exactly as CometBFT's.

Until a validator that went down is absent from that many certificates, its turns still
come; each node then notices locally that it cannot propose (connection down, or behind:
``node/proposer_presence.py``) and prevotes nil at once
(:class:`chain.consensus.events.ProposerUnavailable`), so such a turn costs one quick round
instead of the propose timeout. That is a node's own view and decides no proposer; the
schedule stays a fact of the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from chain.commit import ValidatorSet
from chain.primitives import Address

PRIORITY_WINDOW_FACTOR = 2
"""Priorities are rescaled to span at most this many times the total voting power."""


@dataclass(frozen=True)
class ProposerSchedule:
    """The validator set of a height with its proposer priorities and round-0 proposer."""

    validators: ValidatorSet
    """The height's validator set (sorted by address)."""
    priorities: tuple[int, ...]
    """One priority per member of ``validators``, in the same order, after the increment
    that chose :attr:`first_proposer`."""
    first_proposer: Address
    """The rotation's pick for round 0 (before absent validators are passed over)."""
    absent: frozenset[Address] = frozenset()
    """Members passed over as proposer at this height (they signed none of the recent
    certificates); ignored if it would leave nobody to propose."""

    @classmethod
    def initial(cls, validators: ValidatorSet) -> ProposerSchedule:
        """The schedule of the first height a validator set is used (all priorities start
        at zero, then one increment, as CometBFT's ``NewValidatorSet``)."""
        zeros = tuple(0 for _ in validators.validators)
        priorities, proposer = _increment(validators, zeros, 1)
        return cls(validators, priorities, proposer)

    def proposer(self, round_: int) -> Address:
        """The proposer of ``round_`` (from 0) at this schedule's height: the ``round_``-th
        of the rotation's picks from round 0 on that is not absent."""
        if self.absent and any(v.address not in self.absent for v in self.validators.validators):
            return _present_proposer(self, round_)
        return self._pick(round_)

    def with_absent(self, absent: frozenset[Address]) -> ProposerSchedule:
        """This schedule with ``absent`` members passed over as proposer."""
        return replace(self, absent=absent)

    def next_height(self) -> ProposerSchedule:
        """The schedule of the next height, for the same validator set (nobody absent)."""
        priorities, proposer = _increment(self.validators, self.priorities, 1)
        return ProposerSchedule(self.validators, priorities, proposer)

    def _pick(self, round_: int) -> Address:
        """The rotation's pick for ``round_``, absent or not."""
        if round_ == 0:
            return self.first_proposer
        return _proposer(self.without_absent(), round_)

    def without_absent(self) -> ProposerSchedule:
        """This schedule with nobody passed over."""
        return self if not self.absent else replace(self, absent=frozenset())


def _truncating_div(value: int, divisor: int) -> int:
    # Go's integer division truncates toward zero; CometBFT rescales with it.
    quotient = abs(value) // divisor
    return quotient if value >= 0 else -quotient


def _increment(
    validators: ValidatorSet, priorities: tuple[int, ...], times: int
) -> tuple[tuple[int, ...], Address]:
    members = validators.validators
    total = validators.total_power
    values = list(priorities)
    window = PRIORITY_WINDOW_FACTOR * total
    spread = max(values) - min(values)
    if spread > window:
        ratio = (spread + window - 1) // window
        values = [_truncating_div(v, ratio) for v in values]
    average = sum(values) // len(values)
    values = [v - average for v in values]
    proposer_index = 0
    for _ in range(times):
        values = [v + m.power for v, m in zip(values, members, strict=True)]
        # Highest priority wins; the validator set is sorted by address, so the first
        # index holding the maximum is the lowest address among the tied.
        proposer_index = max(range(len(values)), key=lambda i: (values[i], -i))
        values[proposer_index] -= total
    return tuple(values), members[proposer_index].address


@lru_cache(maxsize=4096)
def _proposer(schedule: ProposerSchedule, round_: int) -> Address:
    _, proposer = _increment(schedule.validators, schedule.priorities, round_)
    return proposer


@lru_cache(maxsize=4096)
def _present_proposer(schedule: ProposerSchedule, round_: int) -> Address:
    # Every member is picked within total_power increments, so each pass over that many
    # picks finds at least one present member and the loop ends.
    present = -1
    pick = 0
    while True:
        candidate = schedule._pick(pick)
        if candidate not in schedule.absent:
            present += 1
            if present == round_:
                return candidate
        pick += 1
