"""GB/T 36903 license metadata: validation with typed errors, canonical JSON, salted hash."""

from __future__ import annotations

import dataclasses
import datetime
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from license_samples import SAMPLES, enterprise_metadata_object

from registry.licenses.errors import InvalidMetadata
from registry.licenses.metadata import (
    ContentField,
    HolderIdType,
    LicenseMetadata,
    metadata_hash,
)
from sdk.identifiers import IdentifierDefect, IdentifierKind, InvalidIdentifier

pytestmark = pytest.mark.no_database


def _build(obj: dict[str, Any]) -> LicenseMetadata:
    return LicenseMetadata.from_json_object(obj)


def _raises_metadata_error(obj: dict[str, Any], field: str) -> InvalidMetadata:
    with pytest.raises(InvalidMetadata) as raised:
        _build(obj)
    assert raised.value.field == field
    return raised.value


@pytest.mark.parametrize("case", SAMPLES["cases"], ids=lambda case: case["name"])
def test_samples_encode_and_hash_as_recorded(case: dict[str, Any]) -> None:
    metadata = _build(case["metadata"])
    canonical = case["canonical_json"].encode("utf-8")
    assert metadata.canonical_json() == canonical
    assert LicenseMetadata.from_canonical_json(canonical) == metadata
    assert metadata_hash(metadata, bytes.fromhex(case["salt"])).hex() == case["metadata_hash"]


def test_holder_types_of_the_samples() -> None:
    enterprise, person = (_build(case["metadata"]) for case in SAMPLES["cases"])
    assert enterprise.holder_id_type is HolderIdType.USCC
    assert person.holder_id_type is HolderIdType.RESIDENT_ID
    assert person.valid_until == datetime.date(2033, 6, 30)


def test_lower_case_holder_id_is_stored_canonically(metadata_object: dict[str, Any]) -> None:
    metadata_object["holder_id"] = metadata_object["holder_id"].lower()
    assert _build(metadata_object).holder_id == "91350100M000100Y43"


def test_salt_changes_the_hash_and_must_be_long_enough(metadata_object: dict[str, Any]) -> None:
    metadata = _build(metadata_object)
    assert metadata_hash(metadata, b"\x00" * 16) != metadata_hash(metadata, b"\x01" * 16)
    with pytest.raises(InvalidMetadata) as raised:
        metadata_hash(metadata, b"\x00" * 15)
    assert raised.value.field == "salt"


def test_every_field_is_hashed(metadata_object: dict[str, Any]) -> None:
    salt = b"s" * 16
    original = metadata_hash(_build(metadata_object), salt)
    metadata_object["content"][0]["value"] += "。"
    assert metadata_hash(_build(metadata_object), salt) != original


# --- identifiers: bad check characters give typed errors, chained -----------------------


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("holder_id", "91350100M000100Y44", IdentifierKind.USCC),
        (
            "identifier",
            "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.G",
            IdentifierKind.LICENSE_IDENTIFIER,
        ),
        ("issuer_code", "11220000013544541K", IdentifierKind.LICENSE_ISSUER_CODE),
        ("type_code", "11100000000013338X032", IdentifierKind.LICENSE_TYPE_CODE),
    ],
)
def test_bad_check_character(
    metadata_object: dict[str, Any], field: str, value: str, kind: IdentifierKind
) -> None:
    metadata_object[field] = value
    error = _raises_metadata_error(metadata_object, field)
    cause = error.__cause__
    assert isinstance(cause, InvalidIdentifier)
    assert cause.kind is kind
    assert cause.reason is IdentifierDefect.CHECK_CHARACTER


def test_bad_resident_id(metadata_object: dict[str, Any]) -> None:
    metadata_object["holder_id_type"] = "resident_id"
    metadata_object["holder_id"] = "110105194912310021"
    error = _raises_metadata_error(metadata_object, "holder_id")
    assert isinstance(error.__cause__, InvalidIdentifier)
    assert error.__cause__.kind is IdentifierKind.RESIDENT_ID
    assert error.__cause__.reason is IdentifierDefect.CHECK_CHARACTER


def test_holder_id_must_match_its_type(metadata_object: dict[str, Any]) -> None:
    metadata_object["holder_id_type"] = "resident_id"  # the holder id is a USCC
    error = _raises_metadata_error(metadata_object, "holder_id")
    assert isinstance(error.__cause__, InvalidIdentifier)


def test_unknown_holder_id_type(metadata_object: dict[str, Any]) -> None:
    metadata_object["holder_id_type"] = "passport"
    _raises_metadata_error(metadata_object, "holder_id_type")


@pytest.mark.parametrize(
    ("field", "value"),
    [("type_code", "11100000000013338W033"), ("issuer_code", "91350100M000100Y43")],
)
def test_codes_must_agree_with_the_identifier(
    metadata_object: dict[str, Any], field: str, value: str
) -> None:
    metadata_object[field] = value
    error = _raises_metadata_error(metadata_object, field)
    assert "identifier" in error.detail


# --- other rules --------------------------------------------------------------------------


def test_validity_must_not_end_before_it_starts(metadata_object: dict[str, Any]) -> None:
    metadata_object["valid_until"] = "2024-03-14"
    _raises_metadata_error(metadata_object, "valid_until")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("license_name", ""),
        ("license_name", " 营业执照"),
        ("holder_name", "示例\x00公司"),
        ("issuer_name", "市场监督管理局\u200b"),
        ("holder_name", "e\u0301"),  # decomposed: not NFC
        ("license_name", "证" * 201),
        ("license_number", ""),
        ("license_name", 42),
    ],
)
def test_bad_text(metadata_object: dict[str, Any], field: str, value: Any) -> None:
    metadata_object[field] = value
    _raises_metadata_error(metadata_object, field)


@pytest.mark.parametrize("value", ["2024-3-15", "20240315", "2024-02-30", 20240315])
def test_bad_dates_in_json(metadata_object: dict[str, Any], value: Any) -> None:
    metadata_object["issue_date"] = value
    _raises_metadata_error(metadata_object, "issue_date")


def test_datetime_is_not_a_date(metadata_object: dict[str, Any]) -> None:
    metadata = _build(metadata_object)
    with pytest.raises(InvalidMetadata) as raised:
        dataclasses.replace(metadata, issue_date=datetime.datetime(2024, 3, 15, 8, 0))
    assert raised.value.field == "issue_date"


def test_content_names_are_unique(metadata_object: dict[str, Any]) -> None:
    metadata_object["content"].append({"name": "住所", "value": "另一个地址"})
    _raises_metadata_error(metadata_object, "content")


def test_content_must_be_fields(metadata_object: dict[str, Any]) -> None:
    metadata = _build(metadata_object)
    with pytest.raises(InvalidMetadata):
        dataclasses.replace(metadata, content=[ContentField("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(InvalidMetadata):
        ContentField("住所", "")


def test_unknown_or_missing_keys(metadata_object: dict[str, Any]) -> None:
    metadata_object["extra"] = 1
    _raises_metadata_error(metadata_object, "encoding")
    del metadata_object["extra"]
    del metadata_object["license_number"]
    _raises_metadata_error(metadata_object, "encoding")


def test_non_canonical_json_is_refused(metadata_object: dict[str, Any]) -> None:
    pretty = json.dumps(metadata_object, ensure_ascii=False, indent=2).encode("utf-8")
    with pytest.raises(InvalidMetadata) as raised:
        LicenseMetadata.from_canonical_json(pretty)
    assert raised.value.field == "encoding"
    with pytest.raises(InvalidMetadata):
        LicenseMetadata.from_canonical_json(b"\xff{}")


text = (
    st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn")), max_size=40)
    .map(lambda value: unicodedata.normalize("NFC", value))
    .filter(lambda value: bool(value) and value == value.strip())
)


@given(st.lists(st.tuples(text, text), max_size=8, unique_by=lambda item: item[0]), text)
def test_canonical_json_round_trips(pairs: list[tuple[str, str]], holder_name: str) -> None:
    base = _build(enterprise_metadata_object())
    metadata = dataclasses.replace(
        base,
        holder_name=holder_name,
        content=tuple(ContentField(name, value) for name, value in pairs),
    )
    assert LicenseMetadata.from_canonical_json(metadata.canonical_json()) == metadata
