"""Property tests of the row validators: identifiers with their check characters, dates in
every accepted notation, amounts in 万元; and of masking and per-field commitments."""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

import pytest
from credit_tables import RESIDENT_ID, natural_person, penalty_row
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.columns import PENALTY_COLUMNS, Layout
from credit.commitments import FIELD_SALT_SIZE, FieldOpening, commit_record, verify_opening
from credit.display import public_fields
from credit.normalize import ValueProblem, parse_amount, parse_date
from credit.records import PenaltyRecord
from credit.subjects import mask_identifier, mask_person_name
from credit.validation import IssueReason, validate_row
from sdk.identifiers import USCC_ALPHABET, compute_resident_id_check, compute_uscc_check

HEADERS = {column.key: column.header for column in PENALTY_COLUMNS}
DIGITS = "0123456789"


@st.composite
def usccs(draw: st.DrawFn) -> str:
    """Valid unified social credit codes (positions 3–8 digits)."""
    head = draw(st.text(USCC_ALPHABET, min_size=2, max_size=2))
    region = draw(st.text(DIGITS, min_size=6, max_size=6))
    tail = draw(st.text(USCC_ALPHABET, min_size=9, max_size=9))
    body = head + region + tail
    return body + compute_uscc_check(body)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    """Valid citizen identity numbers."""
    region = draw(st.text(DIGITS, min_size=6, max_size=6))
    born = draw(st.dates(datetime.date(1900, 1, 1), datetime.date(2025, 12, 31)))
    sequence = draw(st.text(DIGITS, min_size=3, max_size=3))
    body = region + born.strftime("%Y%m%d") + sequence
    return body + compute_resident_id_check(body)


def _organisation_issues(uscc: str) -> list[IssueReason]:
    _, issues = validate_row(Layout.PENALTY, 2, penalty_row(code_1=uscc), HEADERS)
    return [issue.reason for issue in issues]


def _person(id_number: str) -> tuple[PenaltyRecord | None, list[IssueReason]]:
    row = penalty_row(**natural_person("张三丰", id_number=id_number))
    record, issues = validate_row(Layout.PENALTY, 2, row, HEADERS)
    assert record is None or isinstance(record, PenaltyRecord)
    return record, [issue.reason for issue in issues]


@settings(deadline=None)
@given(uscc=usccs())
def test_every_valid_uscc_is_accepted(uscc: str) -> None:
    assert _organisation_issues(uscc) == []
    assert _organisation_issues(uscc.lower()) == []


@settings(deadline=None)
@given(uscc=usccs(), position=st.integers(0, 17), replacement=st.sampled_from(USCC_ALPHABET))
def test_every_single_character_change_of_a_uscc_is_refused(
    uscc: str, position: int, replacement: str
) -> None:
    if uscc[position] == replacement:
        replacement = USCC_ALPHABET[(USCC_ALPHABET.index(replacement) + 1) % 31]
    changed = uscc[:position] + replacement + uscc[position + 1 :]
    assert _organisation_issues(changed) == [IssueReason.BAD_USCC]


@settings(deadline=None)
@given(id_number=resident_ids())
def test_every_valid_resident_id_is_accepted(id_number: str) -> None:
    record, reasons = _person(id_number)
    assert reasons == []
    assert record is not None and record.subject.id_number == id_number


@settings(deadline=None)
@given(
    id_number=resident_ids(),
    position=st.integers(0, 17),
    replacement=st.sampled_from("0123456789X"),
)
def test_every_single_character_change_of_a_resident_id_is_refused(
    id_number: str, position: int, replacement: str
) -> None:
    if id_number[position] == replacement or (position < 17 and replacement == "X"):
        replacement = str((int(id_number[position].replace("X", "0")) + 1) % 10)
    changed = id_number[:position] + replacement + id_number[position + 1 :]
    if changed == id_number:
        changed = id_number[:position] + "1" + id_number[position + 1 :]
    _, reasons = _person(changed)
    assert reasons == [IssueReason.BAD_RESIDENT_ID]


calendar_days = st.dates(datetime.date(1900, 3, 1), datetime.date(2099, 12, 31))
FULL_WIDTH = str.maketrans("0123456789-/", "０１２３４５６７８９－／")


@settings(deadline=None)
@given(day=calendar_days)
def test_every_date_parses_in_every_notation(day: datetime.date) -> None:
    serial = (day - datetime.date(1899, 12, 30)).days
    notations: list[object] = [
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}.{day.month}.{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        day.strftime("%Y%m%d"),
        day.isoformat().translate(FULL_WIDTH),
        f"{day.isoformat()} 00:00:00",
        serial,
        float(serial),
        str(serial),
        datetime.datetime.combine(day, datetime.time(0)),
        day,
    ]
    assert {parse_date(notation) for notation in notations} == {day}


@pytest.mark.parametrize(
    "text",
    ["2023-02-29", "2023-13-01", "2023-5", "五月一日", "45047.5", "12", "2023-05-01 08:30", "-1"],
)
def test_what_is_not_a_date_is_refused(text: str) -> None:
    with pytest.raises(ValueProblem):
        parse_date(text)


amounts = st.decimals(min_value=0, max_value=10**8, places=6, allow_nan=False, allow_infinity=False)


@settings(deadline=None)
@given(amount=amounts)
def test_every_amount_parses_with_separators_full_width_and_unit(amount: Decimal) -> None:
    plain = f"{amount:f}"
    grouped = f"{amount:,f}"
    full_width = grouped.translate(str.maketrans("0123456789,.", "０１２３４５６７８９，．"))
    for text in (plain, grouped, grouped + "万元", full_width, plain + "万"):
        assert parse_amount(text) == amount


@settings(deadline=None)
@given(amount=st.decimals(min_value=Decimal("0.0000001"), max_value=10**8, places=7))
def test_amounts_are_refused_past_six_decimals_or_when_negative(amount: Decimal) -> None:
    if amount == amount.quantize(Decimal("0.000001")):
        return
    with pytest.raises(ValueProblem):
        parse_amount(f"{amount:f}")
    with pytest.raises(ValueProblem):
        parse_amount(f"-{amount:f}")


@pytest.mark.parametrize("text", ["20000元", "-1", "1e3", "NaN", "１．２．３", "二万"])
def test_what_is_not_an_amount_in_wan_is_refused(text: str) -> None:
    with pytest.raises(ValueProblem) as refused:
        parse_amount(text)
    assert refused.value.reason == "bad_amount"


def test_masking_of_natural_persons() -> None:
    assert mask_identifier("44030119800101123X") == "4403**********123X"
    assert mask_person_name("张三") == "张*"
    assert mask_person_name("张三丰") == "张*丰"
    assert mask_person_name("欧阳小明") == "欧**明"
    record, _ = _person(RESIDENT_ID)
    assert record is not None
    assert record.subject.display_identifier() == "1101**********002X"
    assert record.subject.display_name() == "张*丰"


def test_the_public_view_masks_persons_and_legal_representatives_ids() -> None:
    record, _ = _person(RESIDENT_ID)
    assert record is not None
    shown = public_fields(record)
    assert shown["subject.id_number"] == "1101**********002X"
    assert shown["subject.name"] == "张*丰"
    assert RESIDENT_ID not in repr(shown) and "张三丰" not in repr(shown)
    row = penalty_row(legal_representative_id_type="身份证", legal_representative_id=RESIDENT_ID)
    company, issues = validate_row(Layout.PENALTY, 2, row, HEADERS)
    assert issues == [] and company is not None
    shown = public_fields(company)
    assert shown["subject.legal_representative_id"] == "1101**********002X"
    assert shown["subject.name"] == "福州某某贸易有限公司"


def test_a_natural_persons_id_is_never_in_clear_in_the_chain_view() -> None:
    record, _ = _person(RESIDENT_ID)
    assert record is not None
    seeded = random.Random(7)
    commitment = commit_record(record, seeded.randbytes)
    view_bytes = repr(commitment.chain_view).encode() + b"".join(
        digest for _, digest in commitment.chain_view.field_hashes
    )
    for form in (RESIDENT_ID, RESIDENT_ID.encode().hex(), "张三丰"):
        assert form.encode() not in view_bytes
    opening = commitment.openings["subject.id_number"]
    assert opening.value == RESIDENT_ID and len(opening.salt) == FIELD_SALT_SIZE
    verify_opening(commitment.chain_view, opening)
    with pytest.raises(ValueError):
        verify_opening(
            commitment.chain_view, FieldOpening(opening.name, "110105194912310038", opening.salt)
        )
    # Fresh salts give unlinkable commitments of the same record.
    other = commit_record(record, random.Random(8).randbytes)
    assert other.chain_view.record_id == commitment.chain_view.record_id
    assert set(other.chain_view.field_hashes).isdisjoint(commitment.chain_view.field_hashes)


def test_a_short_random_source_is_refused() -> None:
    record, _ = _person(RESIDENT_ID)
    assert record is not None
    with pytest.raises(ValueError):
        commit_record(record, lambda size: bytes(size - 1))
