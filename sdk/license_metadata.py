"""E-license metadata (电子证照元数据, GB/T 36903-2018): the elements every license carries,
validated when built, with one canonical JSON encoding and a salted SM3 hash anchored as the
license's ``metadataHash`` in ``LicenseRegistry``. In the SDK because the issuing department
computes that hash itself, to sign the license's commitment (:mod:`sdk.license_signing`);
the registry computes it again from the same request and checks the signature.

The canonical encoding is UTF-8 JSON with keys sorted, no insignificant whitespace, dates as
``YYYY-MM-DD``, an open-ended validity as ``null``, and the content fields in their order on
the face of the license. Text must be NFC-normalised and free of control characters, so one
license has one encoding.

The hash is salted (with the salt of the holder commitment, at least 16 bytes) because the
metadata names the holder: an unsalted hash on chain would let anyone who can guess the other
fields confirm a guess of the holder's name or identity number.
"""

from __future__ import annotations

import datetime
import enum
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chain.crypto import sm3
from chain.primitives import Hash32
from contracts.trust import HOLDER_SALT_MIN_SIZE
from sdk.errors import SdkError
from sdk.identifiers import (
    InvalidIdentifier,
    parse_license_identifier,
    validate_license_issuer_code,
    validate_license_type_code,
    validate_resident_id,
    validate_uscc,
)

__all__ = [
    "CONTENT_MAX_FIELDS",
    "METADATA_HASH_PREFIX",
    "NAME_MAX_SIZE",
    "SALT_MAX_SIZE",
    "VALUE_MAX_SIZE",
    "ContentField",
    "HolderIdType",
    "InvalidMetadata",
    "LicenseMetadata",
    "chain_valid_until",
    "metadata_hash",
]

METADATA_HASH_PREFIX = b"lianxin/license-metadata/v1\x00"
"""Domain-separation prefix of :func:`metadata_hash`."""

NAME_MAX_SIZE = 200
"""Most characters in a name: of the license, holder, issuer, or a content field."""

VALUE_MAX_SIZE = 2000
"""Most characters in a content field value or a paper license number."""

SALT_MAX_SIZE = 1024
"""Most salt bytes accepted by :func:`metadata_hash`."""

CONTENT_MAX_FIELDS = 100
"""Most content fields on one license."""


DISPLAY_TIMEZONE = datetime.timezone(datetime.timedelta(hours=8))
"""Dates of validity are days in China Standard Time."""


class InvalidMetadata(SdkError, ValueError):
    """License metadata that breaks a rule. ``field`` names the offending field (or
    ``"encoding"`` for bytes that are not the canonical JSON of any metadata) and ``detail``
    says what is wrong; a malformed identifier is the ``__cause__``."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"license metadata {field}: {detail}")
        self.field = field
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.detail))


class HolderIdType(enum.StrEnum):
    """持证主体代码类型: how the holder is identified."""

    USCC = "uscc"
    """An organisation, by unified social credit code (GB 32100)."""
    RESIDENT_ID = "resident_id"
    """A natural person, by citizen identity number (GB 11643)."""


def _check_text(field: str, value: object, max_size: int) -> str:
    """Return ``value`` if it is non-empty NFC text of at most ``max_size`` characters,
    without control characters or surrounding white space; raise InvalidMetadata otherwise."""
    if not isinstance(value, str):
        raise InvalidMetadata(field, "must be text")
    if not value or value != value.strip():
        raise InvalidMetadata(field, "must be non-empty, without surrounding white space")
    if len(value) > max_size:
        raise InvalidMetadata(field, f"{len(value)} characters, at most {max_size} allowed")
    if unicodedata.normalize("NFC", value) != value:
        raise InvalidMetadata(field, "must be NFC-normalised")
    for character in value:
        if unicodedata.category(character) in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            raise InvalidMetadata(field, f"control or unassigned character {character!r}")
    return value


def _check_date(field: str, value: object) -> datetime.date:
    # datetime is a subclass of date; a time of day has no place in these fields.
    if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
        raise InvalidMetadata(field, "must be a date")
    return value


@dataclass(frozen=True)
class ContentField:
    """One item on the face of the license (照面信息), such as 经营范围 or 住所."""

    name: str
    """Item name as printed."""
    value: str
    """Item value as printed."""

    def __post_init__(self) -> None:
        _check_text("content.name", self.name, NAME_MAX_SIZE)
        _check_text(f"content[{self.name}].value", self.value, VALUE_MAX_SIZE)


@dataclass(frozen=True)
class LicenseMetadata:
    """The GB/T 36903 metadata of one e-license version. Building one validates it and
    raises InvalidMetadata on the first broken rule; a holder identifier given in lower
    case is stored in its canonical upper-case form."""

    license_name: str
    """证照名称: the name of the kind of license, e.g. 营业执照."""
    identifier: str
    """证照标识: the GB/T 36904 identifier of this version."""
    type_code: str
    """证照类型代码: equal to the identifier's type code."""
    holder_name: str
    """持证主体: the holder's name."""
    holder_id_type: HolderIdType
    """持证主体代码类型."""
    holder_id: str
    """持证主体代码: USCC or citizen identity number, as ``holder_id_type`` says."""
    issuer_name: str
    """证照颁发机构: the issuing authority's name."""
    issuer_code: str
    """证照颁发机构代码: equal to the identifier's issuer code."""
    issue_date: datetime.date
    """颁证日期."""
    valid_from: datetime.date
    """有效期起始日期."""
    valid_until: datetime.date | None
    """有效期截止日期 (inclusive); None for a license without end (长期)."""
    license_number: str | None = None
    """证照编号: the number printed on the paper license, if it has one."""
    content: tuple[ContentField, ...] = ()
    """照面信息: the items on the face of the license, in printed order, names unique."""

    def __post_init__(self) -> None:
        _check_text("license_name", self.license_name, NAME_MAX_SIZE)
        _check_text("holder_name", self.holder_name, NAME_MAX_SIZE)
        _check_text("issuer_name", self.issuer_name, NAME_MAX_SIZE)
        if self.license_number is not None:
            _check_text("license_number", self.license_number, VALUE_MAX_SIZE)
        self._check_identifiers()
        self._check_holder()
        self._check_dates()
        self._check_content()

    def _check_identifiers(self) -> None:
        try:
            parsed = parse_license_identifier(self.identifier)
        except InvalidIdentifier as error:
            raise InvalidMetadata("identifier", error.detail) from error
        codes = (
            ("type_code", validate_license_type_code, parsed.type_code),
            ("issuer_code", validate_license_issuer_code, parsed.issuer_code),
        )
        for field, validate, in_identifier in codes:
            try:
                validate(getattr(self, field))
            except InvalidIdentifier as error:
                raise InvalidMetadata(field, error.detail) from error
            if getattr(self, field) != in_identifier:
                raise InvalidMetadata(field, f"differs from the identifier's {field}")

    def _check_holder(self) -> None:
        try:
            id_type = HolderIdType(self.holder_id_type)
        except ValueError:
            raise InvalidMetadata(
                "holder_id_type", f"unknown type {self.holder_id_type!r}"
            ) from None
        validate = validate_uscc if id_type is HolderIdType.USCC else validate_resident_id
        try:
            canonical = validate(self.holder_id)
        except InvalidIdentifier as error:
            raise InvalidMetadata("holder_id", error.detail) from error
        # Frozen: the canonical forms are stored once, here, so equal licenses compare equal.
        object.__setattr__(self, "holder_id_type", id_type)
        object.__setattr__(self, "holder_id", canonical)

    def _check_dates(self) -> None:
        _check_date("issue_date", self.issue_date)
        _check_date("valid_from", self.valid_from)
        if self.valid_until is not None:
            _check_date("valid_until", self.valid_until)
            if self.valid_until < self.valid_from:
                raise InvalidMetadata("valid_until", "is before valid_from")

    def _check_content(self) -> None:
        if not isinstance(self.content, tuple) or not all(
            isinstance(item, ContentField) for item in self.content
        ):
            raise InvalidMetadata("content", "must be a tuple of ContentField")
        if len(self.content) > CONTENT_MAX_FIELDS:
            raise InvalidMetadata("content", f"at most {CONTENT_MAX_FIELDS} fields allowed")
        names = [item.name for item in self.content]
        if len(set(names)) != len(names):
            raise InvalidMetadata("content", "field names must be unique")

    def to_json_object(self) -> dict[str, Any]:
        """The metadata as JSON-ready values (the object :meth:`canonical_json` encodes)."""
        return {
            "license_name": self.license_name,
            "identifier": self.identifier,
            "type_code": self.type_code,
            "holder_name": self.holder_name,
            "holder_id_type": self.holder_id_type.value,
            "holder_id": self.holder_id,
            "issuer_name": self.issuer_name,
            "issuer_code": self.issuer_code,
            "issue_date": self.issue_date.isoformat(),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
            "license_number": self.license_number,
            "content": [{"name": item.name, "value": item.value} for item in self.content],
        }

    def canonical_json(self) -> bytes:
        """The one canonical encoding: UTF-8 JSON, keys sorted, no insignificant white
        space, non-ASCII characters written as themselves."""
        return json.dumps(
            self.to_json_object(), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")

    @classmethod
    def from_json_object(cls, value: Mapping[str, Any]) -> LicenseMetadata:
        """Build from the object :meth:`to_json_object` returns; raises InvalidMetadata on
        missing or unknown keys, wrong types and every rule the constructor checks."""
        expected = set(cls.__dataclass_fields__)
        if not isinstance(value, Mapping) or set(value) != expected:
            raise InvalidMetadata("encoding", f"expected exactly the keys {sorted(expected)}")
        content = value["content"]
        if not isinstance(content, list) or not all(
            isinstance(item, dict) and set(item) == {"name", "value"} for item in content
        ):
            raise InvalidMetadata("content", "must be a list of {name, value} objects")
        return cls(
            license_name=value["license_name"],
            identifier=value["identifier"],
            type_code=value["type_code"],
            holder_name=value["holder_name"],
            holder_id_type=value["holder_id_type"],
            holder_id=value["holder_id"],
            issuer_name=value["issuer_name"],
            issuer_code=value["issuer_code"],
            issue_date=_parse_date("issue_date", value["issue_date"]),
            valid_from=_parse_date("valid_from", value["valid_from"]),
            valid_until=(
                None
                if value["valid_until"] is None
                else _parse_date("valid_until", value["valid_until"])
            ),
            license_number=value["license_number"],
            content=tuple(ContentField(item["name"], item["value"]) for item in content),
        )

    @classmethod
    def from_canonical_json(cls, data: bytes) -> LicenseMetadata:
        """Decode :meth:`canonical_json` output. Raises InvalidMetadata unless ``data`` is
        exactly the canonical encoding of valid metadata (so a stored copy that was edited
        or re-serialised differently is noticed)."""
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidMetadata("encoding", f"not UTF-8 JSON: {error}") from error
        metadata = cls.from_json_object(value)
        if metadata.canonical_json() != data:
            raise InvalidMetadata("encoding", "not the canonical encoding")
        return metadata


def _parse_date(field: str, value: object) -> datetime.date:
    if not isinstance(value, str) or len(value) != 10:
        raise InvalidMetadata(field, "must be a YYYY-MM-DD date")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as error:
        raise InvalidMetadata(field, "must be a YYYY-MM-DD date") from error


def metadata_hash(metadata: LicenseMetadata, salt: bytes) -> Hash32:
    """The ``metadataHash`` anchored for a license: SM3(METADATA_HASH_PREFIX ||
    len(salt) as 2 bytes big-endian || salt || canonical JSON). Raises InvalidMetadata if
    ``salt`` is not bytes of 16 to 1024."""
    if not isinstance(salt, bytes) or not HOLDER_SALT_MIN_SIZE <= len(salt) <= SALT_MAX_SIZE:
        raise InvalidMetadata("salt", f"must be {HOLDER_SALT_MIN_SIZE} to {SALT_MAX_SIZE} bytes")
    framed_salt = len(salt).to_bytes(2, "big") + salt
    return Hash32(sm3(METADATA_HASH_PREFIX + framed_salt + metadata.canonical_json()))


def chain_valid_until(valid_until: datetime.date | None) -> int:
    """``validUntil`` on chain for an inclusive last day of validity: the first second of the
    next day in UTC+8; 0 for a license without end."""
    if valid_until is None:
        return 0
    next_day = valid_until + datetime.timedelta(days=1)
    start = datetime.datetime(next_day.year, next_day.month, next_day.day, tzinfo=DISPLAY_TIMEZONE)
    return int(start.timestamp())
