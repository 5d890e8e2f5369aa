"""Proposer rotation: CometBFT's proposer-priority algorithm, weighted by voting power."""

from __future__ import annotations

from collections import Counter

from sim import validator_keys

from chain.commit import Validator, ValidatorSet
from chain.consensus import ProposerSchedule


def validator_set(powers: list[int]) -> ValidatorSet:
    keys = validator_keys(len(powers))
    return ValidatorSet.of(
        Validator(k.public_key.to_bytes(), p) for k, p in zip(keys, powers, strict=True)
    )


def test_matches_cometbft_proposer_selection_vector() -> None:
    # CometBFT types/validator_set_test.go TestProposerSelection1: foo 1000, bar 300,
    # baz 330; addresses sort bar < baz < foo, as the lowest three of our keys do.
    expected = str.split(
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo "
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo "
        "baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz foo "
        "bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo "
        "bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo"
    )
    validators = validator_set([300, 330, 1000])
    names = {
        v.address: n for v, n in zip(validators.validators, ["bar", "baz", "foo"], strict=True)
    }
    schedule = ProposerSchedule.initial(validators)
    proposers = []
    for _ in range(99):
        proposers.append(names[schedule.proposer(0)])
        schedule = schedule.next_height()
    assert proposers == expected


def test_equal_powers_rotate_in_address_order() -> None:
    validators = validator_set([1, 1, 1, 1])
    schedule = ProposerSchedule.initial(validators)
    addresses = [v.address for v in validators.validators]
    assert [schedule.proposer(r) for r in range(8)] == addresses * 2
    assert schedule.next_height().proposer(0) == addresses[1]


def test_each_validator_proposes_in_proportion_to_its_power() -> None:
    powers = [1, 1, 2, 2, 3, 3, 5]
    validators = validator_set(powers)
    schedule = ProposerSchedule.initial(validators)
    counts: Counter[bytes] = Counter()
    for _ in range(10 * sum(powers)):
        counts[schedule.proposer(0)] += 1
        schedule = schedule.next_height()
    assert [counts[v.address] for v in validators.validators] == [10 * p for p in powers]


def test_rounds_of_one_height_follow_the_same_rotation() -> None:
    validators = validator_set([1, 2, 4])
    schedule = ProposerSchedule.initial(validators)
    rounds = Counter(schedule.proposer(r) for r in range(1, 8))
    assert sorted(rounds.values()) == [1, 2, 4]
