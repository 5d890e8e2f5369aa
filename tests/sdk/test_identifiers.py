"""USCC, citizen identity number and e-license identifier validation (sdk.identifiers),
against the vectors in tests/vectors/codes.json and generated identifiers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.identifiers import (
    LICENSE_ALPHABET,
    LICENSE_IDENTIFIER_PREFIX,
    LICENSE_SERIAL_MAX_SIZE,
    USCC_ALPHABET,
    IdentifierDefect,
    IdentifierKind,
    InvalidIdentifier,
    LicenseIdentifier,
    compute_license_check,
    compute_resident_id_check,
    compute_uscc_check,
    make_license_identifier,
    mod_37_36_check,
    parse_license_identifier,
    validate_license_issuer_code,
    validate_license_type_code,
    validate_resident_id,
    validate_uscc,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "codes.json").read_text(encoding="utf-8")
)
USCC = VECTORS["uscc"]
RESIDENT_ID = VECTORS["resident_id"]
LICENSE = VECTORS["e_license_identifier"]


def _reason(case: dict[str, str]) -> IdentifierDefect:
    return IdentifierDefect(case["reason"])


# --- vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", USCC["valid"] + USCC["valid_constructed"])
def test_valid_uscc(code: str) -> None:
    assert validate_uscc(code) == code
    assert compute_uscc_check(code[:-1]) == code[-1]


@pytest.mark.parametrize("code", USCC["invalid"])
def test_invalid_published_uscc(code: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        validate_uscc(code)
    assert raised.value.kind is IdentifierKind.USCC
    assert raised.value.value == code


@pytest.mark.parametrize("case", USCC["invalid_constructed"], ids=lambda case: case["value"])
def test_invalid_uscc(case: dict[str, str]) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        validate_uscc(case["value"])
    assert raised.value.reason is _reason(case)


@pytest.mark.parametrize("code", RESIDENT_ID["valid"] + RESIDENT_ID["valid_constructed"])
def test_valid_resident_id(code: str) -> None:
    assert validate_resident_id(code) == code
    assert compute_resident_id_check(code[:-1]) == code[-1]


@pytest.mark.parametrize("code", RESIDENT_ID["invalid"])
def test_invalid_published_resident_id(code: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        validate_resident_id(code)
    assert raised.value.kind is IdentifierKind.RESIDENT_ID
    assert raised.value.reason is IdentifierDefect.CHECK_CHARACTER


@pytest.mark.parametrize("case", RESIDENT_ID["invalid_constructed"], ids=lambda case: case["value"])
def test_invalid_resident_id(case: dict[str, str]) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        validate_resident_id(case["value"])
    assert raised.value.reason is _reason(case)


@pytest.mark.parametrize(
    ("validate", "case"),
    [(validate_uscc, case) for case in USCC["canonical"]]
    + [(validate_resident_id, case) for case in RESIDENT_ID["canonical"]],
)
def test_lower_case_gives_canonical_form(validate: Any, case: dict[str, str]) -> None:
    assert validate(case["input"]) == case["canonical"]


@pytest.mark.parametrize("text", LICENSE["valid"])
def test_valid_published_license_identifier(text: str) -> None:
    fields = LICENSE["fields"]
    assert fields["identifier"] == text
    parsed = parse_license_identifier(text)
    assert parsed == LicenseIdentifier(
        fields["type_code"],
        fields["issuer_code"],
        fields["serial"],
        fields["version"],
        fields["check"],
    )
    assert str(parsed) == parsed.text == text


@pytest.mark.parametrize(
    "case", LICENSE["valid_constructed"], ids=lambda case: case["identifier"][-30:]
)
def test_valid_license_identifier(case: dict[str, str]) -> None:
    fields = (case["type_code"], case["issuer_code"], case["serial"], case["version"])
    assert make_license_identifier(*fields) == case["identifier"]
    assert compute_license_check(*fields) == case["check"]
    assert parse_license_identifier(case["identifier"]) == LicenseIdentifier(*fields, case["check"])


@pytest.mark.parametrize("case", LICENSE["invalid_constructed"], ids=lambda case: case["value"])
def test_invalid_license_identifier(case: dict[str, str]) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        parse_license_identifier(case["value"])
    assert raised.value.kind is IdentifierKind.LICENSE_IDENTIFIER
    assert raised.value.value == case["value"]
    assert raised.value.reason is _reason(case)


@pytest.mark.parametrize("case", VECTORS["mod_37_36"]["cases"], ids=lambda case: case["input"])
def test_mod_37_36_reference_values(case: dict[str, str]) -> None:
    assert mod_37_36_check(case["input"]) == case["check"]


@pytest.mark.parametrize("value", [None, 91350100, b"91350100M000100Y43"])
def test_non_text_is_refused(value: Any) -> None:
    for validate in (validate_uscc, validate_resident_id, parse_license_identifier):
        with pytest.raises(InvalidIdentifier) as raised:
            validate(value)
        assert raised.value.reason is IdentifierDefect.NOT_TEXT


def test_issuer_code_may_be_an_administrative_division_code() -> None:
    assert validate_license_issuer_code("110105") == "110105"
    with pytest.raises(InvalidIdentifier) as raised:
        validate_license_issuer_code("11010A")
    assert raised.value.kind is IdentifierKind.LICENSE_ISSUER_CODE
    with pytest.raises(InvalidIdentifier) as raised:
        validate_license_issuer_code("1101050")
    assert raised.value.reason is IdentifierDefect.LENGTH


def test_type_code_needs_a_valid_uscc_and_three_digits() -> None:
    assert validate_license_type_code("11100000000013338W032") == "11100000000013338W032"
    with pytest.raises(InvalidIdentifier) as raised:
        validate_license_type_code("11100000000013338X032")
    assert raised.value.kind is IdentifierKind.LICENSE_TYPE_CODE
    assert raised.value.reason is IdentifierDefect.CHECK_CHARACTER


def test_make_refuses_malformed_fields() -> None:
    fields = LICENSE["fields"]
    with pytest.raises(InvalidIdentifier):
        make_license_identifier(fields["type_code"], fields["issuer_code"], "", "001")
    with pytest.raises(InvalidIdentifier):
        make_license_identifier(fields["type_code"], fields["issuer_code"], "1", "1")
    with pytest.raises(InvalidIdentifier):
        make_license_identifier(fields["type_code"], fields["issuer_code"], "a1", "001")


def test_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ValueError) as raised:
        validate_uscc("91350100M000100Y44")
    error = raised.value
    assert isinstance(error, InvalidIdentifier)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.kind, copy.value, copy.reason, copy.detail) == (
        error.kind,
        error.value,
        error.reason,
        error.detail,
    )


# --- generated identifiers ----------------------------------------------------------------

uscc_bodies = st.builds(
    lambda head, region, rest: head + region + rest,
    st.text(USCC_ALPHABET, min_size=2, max_size=2),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(USCC_ALPHABET, min_size=9, max_size=9),
)
usccs = uscc_bodies.map(lambda body: body + compute_uscc_check(body))
type_codes = st.builds(
    lambda uscc, sequence: uscc + sequence, usccs, st.text("0123456789", min_size=3, max_size=3)
)
issuer_codes = usccs | st.text("0123456789", min_size=6, max_size=6)
serials = st.text(LICENSE_ALPHABET, min_size=1, max_size=LICENSE_SERIAL_MAX_SIZE)
versions = st.text("0123456789", min_size=3, max_size=3)
license_identifiers = st.builds(
    make_license_identifier, type_codes, issuer_codes, serials, versions
)
identifier_characters = LICENSE_ALPHABET + "."


@given(type_codes, issuer_codes, serials, versions)
def test_make_then_parse_round_trip(
    type_code: str, issuer_code: str, serial: str, version: str
) -> None:
    text = make_license_identifier(type_code, issuer_code, serial, version)
    parsed = parse_license_identifier(text)
    assert (parsed.type_code, parsed.issuer_code, parsed.serial, parsed.version) == (
        type_code,
        issuer_code,
        serial,
        version,
    )
    assert parsed.text == text


@given(license_identifiers, st.data())
def test_any_single_substitution_is_detected(text: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(
        st.sampled_from(identifier_characters).filter(lambda c: c != text[position])
    )
    altered = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(InvalidIdentifier):
        parse_license_identifier(altered)


def _step(state: int, value: int) -> int:
    """One step of the MOD 37,36 recursion, written out here as the model."""
    return 2 * ((state + value) % 36 or 36) % 37


def test_mod_37_36_misses_exactly_one_transposition_pair_per_state() -> None:
    # ISO/IEC 7064 promises hybrid systems catch every single substitution but not every
    # adjacent transposition: for each running state P exactly one unordered pair of
    # characters (those with (P + value) mod 36 in {18, 19}) commutes, so 1 in 630
    # transpositions of distinct characters inside a field goes unnoticed.
    for state in range(1, 37):
        commuting = {
            frozenset((a, b))
            for a in range(36)
            for b in range(36)
            if a != b and _step(_step(state, a), b) == _step(_step(state, b), a)
        }
        assert commuting == {frozenset(v % 36 for v in (18 - state, 19 - state))}


def _is_structural(text: str, position: int) -> bool:
    """Whether swapping ``position`` and the next character touches the fixed prefix, a dot
    or the check character."""
    in_prefix = position < len(LICENSE_IDENTIFIER_PREFIX)
    return in_prefix or "." in text[position : position + 2] or position + 1 == len(text) - 1


@given(license_identifiers, st.data())
def test_adjacent_transpositions_are_detected_where_the_check_can_see_them(
    text: str, data: st.DataObject
) -> None:
    mod_37_36 = pytest.importorskip("stdnum.iso7064.mod_37_36")
    candidates = [i for i in range(len(text) - 1) if text[i] != text[i + 1]]
    position = data.draw(st.sampled_from(candidates))
    altered = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    if _is_structural(text, position):
        # A changed prefix, or a dot moved so a fixed-size field changes size: always caught.
        with pytest.raises(InvalidIdentifier):
            parse_license_identifier(altered)
        return
    checked = "".join(altered.split(".")[5:9])
    if mod_37_36.calc_check_digit(checked) != text[-1]:
        with pytest.raises(InvalidIdentifier):
            parse_license_identifier(altered)
    else:
        # The one commuting pair of its state (see the test above): structurally fine and
        # the check agrees, so only a USCC check inside the type or issuer code can object.
        try:
            assert parse_license_identifier(altered).text == altered
        except InvalidIdentifier as error:
            assert error.reason is IdentifierDefect.CHECK_CHARACTER


@given(license_identifiers, st.data())
def test_transpositions_of_dots_and_check_are_always_detected(
    text: str, data: st.DataObject
) -> None:
    candidates = [
        i for i in range(len(text) - 1) if text[i] != text[i + 1] and _is_structural(text, i)
    ]
    position = data.draw(st.sampled_from(candidates))
    altered = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    with pytest.raises(InvalidIdentifier):
        parse_license_identifier(altered)


@settings(max_examples=20, deadline=None)
@given(license_identifiers)
def test_every_substitution_of_the_check_fields_is_caught_by_the_check(text: str) -> None:
    # Exhaustive over one identifier: each position of the checked fields, each other
    # character; the altered fields may still be well formed, so only the check catches it.
    prefix_size = len("1.2.156.3005.2.")
    for position in range(prefix_size, len(text)):
        if text[position] == ".":
            continue
        for replacement in LICENSE_ALPHABET.replace(text[position], ""):
            altered = text[:position] + replacement + text[position + 1 :]
            with pytest.raises(InvalidIdentifier):
                parse_license_identifier(altered)


@given(usccs, st.data())
def test_any_single_uscc_substitution_is_detected(code: str, data: st.DataObject) -> None:
    assert validate_uscc(code) == code
    position = data.draw(st.integers(0, len(code) - 1))
    replacement = data.draw(st.sampled_from(USCC_ALPHABET).filter(lambda c: c != code[position]))
    with pytest.raises(InvalidIdentifier):
        validate_uscc(code[:position] + replacement + code[position + 1 :])


@settings(max_examples=50)
@given(usccs)
def test_every_uscc_substitution_is_detected(code: str) -> None:
    for position in range(len(code)):
        for replacement in USCC_ALPHABET.replace(code[position], ""):
            with pytest.raises(InvalidIdentifier):
                validate_uscc(code[:position] + replacement + code[position + 1 :])


@given(st.text(LICENSE_ALPHABET, min_size=1, max_size=60))
def test_mod_37_36_agrees_with_python_stdnum(text: str) -> None:
    mod_37_36 = pytest.importorskip("stdnum.iso7064.mod_37_36")
    assert mod_37_36_check(text) == mod_37_36.calc_check_digit(text)
    assert mod_37_36.is_valid(text + mod_37_36_check(text))


@given(uscc_bodies)
def test_uscc_check_agrees_with_python_stdnum(body: str) -> None:
    uscc = pytest.importorskip("stdnum.cn.uscc")
    assert compute_uscc_check(body) == uscc.calc_check_digit(body)


@given(st.text("0123456789", min_size=17, max_size=17))
def test_resident_id_check_agrees_with_python_stdnum(body: str) -> None:
    ric = pytest.importorskip("stdnum.cn.ric")
    assert compute_resident_id_check(body) == ric.calc_check_digit(
        body + "0"
    )  # it expects a check slot
