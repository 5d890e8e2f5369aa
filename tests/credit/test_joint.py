"""Joint reward and punishment: the catalogue as versioned data and check() with every
reason."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from credit_tables import AUTHORITY_USCC, BLACK, PENALTY, RED

import credit
from credit.errors import RuleSetError
from credit.joint import (
    Decision,
    Effect,
    SubjectState,
    bundled_catalogue,
    check,
    entry_active,
    parse_catalogue,
)
from credit.records import (
    ListExit,
    ListType,
    NaturalKey,
)

CATALOGUE_FILE = Path(credit.__file__).parent.joinpath("measures", "cn-joint-measures.toml")

CATALOGUE = bundled_catalogue()


def test_catalogue_holds_the_measures_with_its_version_and_hash() -> None:
    names = {(m.list_type, m.activity): (m.name, m.effect) for m in CATALOGUE.measures}
    assert names[(ListType.BLACK, "government_procurement")] == (
        "限制参与政府采购",
        Effect.RESTRICTED,
    )
    assert names[(ListType.RED, "administrative_approval")] == ("容缺受理", Effect.FAVOURED)
    assert CATALOGUE.version == 1 and len(CATALOGUE.content_hash) == 32


def test_black_list_restricts_with_the_entry_and_the_records_behind_it() -> None:
    state = SubjectState([BLACK, RED], [], [PENALTY])
    result = check(state, "government_procurement", datetime.date(2024, 1, 1), CATALOGUE)
    assert result.decision is Decision.RESTRICTED
    assert [(r.measure.name, r.entry, r.records) for r in result.reasons] == [
        ("限制参与政府采购", BLACK, (PENALTY,))
    ]
    assert result.catalogue_hash == CATALOGUE.content_hash


def test_a_restriction_outweighs_a_reward_and_both_are_reasons() -> None:
    state = SubjectState([RED, BLACK], [], [PENALTY])
    result = check(state, "administrative_approval", datetime.date(2024, 1, 1), CATALOGUE)
    assert result.decision is Decision.RESTRICTED
    assert [r.measure.name for r in result.reasons] == [
        "审批中从严审核，不适用告知承诺制",
        "容缺受理",
    ]


def test_red_list_favours_and_no_list_allows() -> None:
    favoured = check(
        SubjectState([RED], [], []), "administrative_approval", datetime.date(2024, 1, 1), CATALOGUE
    )
    assert favoured.decision is Decision.FAVOURED
    assert [r.measure.name for r in favoured.reasons] == ["容缺受理"]
    allowed = check(
        SubjectState([], [], []), "government_procurement", datetime.date(2024, 1, 1), CATALOGUE
    )
    assert (allowed.decision, allowed.reasons) == (Decision.ALLOWED, ())


def test_entries_count_only_between_entry_and_exit() -> None:
    early_exit = ListExit(BLACK.natural_key, datetime.date(2024, 6, 1), "信用修复")
    assert not entry_active(BLACK, [], datetime.date(2023, 1, 31))
    assert entry_active(BLACK, [], datetime.date(2023, 2, 1))
    assert entry_active(BLACK, [early_exit], datetime.date(2024, 5, 31))
    assert not entry_active(BLACK, [early_exit], datetime.date(2024, 6, 1))
    assert not entry_active(BLACK, [], datetime.date(2026, 2, 1))
    other_exit = ListExit(NaturalKey(AUTHORITY_USCC, "别的"), datetime.date(2023, 3, 1), "x")
    assert entry_active(BLACK, [other_exit], datetime.date(2024, 1, 1))
    state = SubjectState([BLACK], [early_exit], [PENALTY])
    after = check(state, "government_procurement", datetime.date(2024, 6, 1), CATALOGUE)
    assert after.decision is Decision.ALLOWED


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (('list_type = "red"', 'list_type = "grey"'), "bad_field"),
        (('effect = "favoured"', 'effect = "maybe"'), "bad_field"),
        (('id = "red.inspection"', 'id = "red.public-bidding"'), "duplicate_measure"),
        (("version = 1", "version = 0"), "bad_field"),
    ],
)
def test_a_malformed_catalogue_is_a_typed_error(edit: tuple[str, str], reason: str) -> None:
    source = (
        Path(credit.__file__)
        .parent.joinpath("measures", "cn-joint-measures.toml")
        .read_text("utf-8")
    )
    with pytest.raises(RuleSetError) as refused:
        parse_catalogue(source.replace(*edit, 1))
    assert refused.value.reason == reason
