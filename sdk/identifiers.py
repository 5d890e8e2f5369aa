"""Chinese identifiers and their check characters.

- Unified social credit codes (统一社会信用代码, GB 32100-2015): 18 characters over an
  alphabet of 31 (digits and capitals without I, O, S, V, Z), the last a MOD 31 check.
- Citizen identity numbers (公民身份号码, GB 11643-1999): 17 digits (region, birth date,
  sequence) and a MOD 11-2 check character (a digit or ``X``).
- E-license identifiers (电子证照标识, GB/T 36904-2018):
  ``1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>``, the check character
  computed with the ISO/IEC 7064 MOD 37,36 hybrid system over the type code, issuer code,
  serial and version written one after the other.

What the checks catch: the USCC check (MOD 31, weights 3**i) and MOD 37,36 catch every
single substitution. MOD 37,36 is a hybrid system and does not catch every adjacent
transposition: at each running state exactly one pair of characters commutes
(tests/sdk/test_identifiers.py enumerates them), so 1 in 630 swaps of distinct neighbours
inside a field passes the check. Swaps that move a dot are still caught, because every field
but the serial has a fixed size.

Validation raises :class:`InvalidIdentifier`, which says which kind of identifier was wrong,
the value, and a :class:`IdentifierDefect`; it never returns a bool.

Case: a USCC or an identity number may be given in lower case (``x`` is common on forms); the
validators return the canonical upper-case form. An e-license identifier is a key (its SM3
hash names the license on chain), so it is parsed strictly: only its canonical form is
accepted.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from sdk.errors import SdkError

__all__ = [
    "ADMIN_DIVISION_CODE_SIZE",
    "LICENSE_ALPHABET",
    "LICENSE_IDENTIFIER_PREFIX",
    "LICENSE_SERIAL_MAX_SIZE",
    "LICENSE_TYPE_CODE_SIZE",
    "LICENSE_VERSION_SIZE",
    "RESIDENT_ID_SIZE",
    "USCC_ALPHABET",
    "USCC_SIZE",
    "IdentifierDefect",
    "IdentifierKind",
    "InvalidIdentifier",
    "LicenseIdentifier",
    "compute_license_check",
    "compute_resident_id_check",
    "compute_uscc_check",
    "make_license_identifier",
    "mod_37_36_check",
    "parse_license_identifier",
    "validate_license_issuer_code",
    "validate_license_type_code",
    "validate_resident_id",
    "validate_uscc",
]

USCC_SIZE = 18
"""Characters in a unified social credit code."""

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of a USCC, in the order of their values 0–30 (GB 32100 table 1)."""

_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
"""Weights of positions 1–17: 3**(i-1) mod 31."""

_USCC_REGION = slice(2, 8)
"""Positions 3–8: the administrative division code of the registering authority (digits)."""

RESIDENT_ID_SIZE = 18
"""Characters in a citizen identity number."""

_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
"""Weights of positions 1–17: 2**(18-i) mod 11."""

_RESIDENT_ID_CHECKS = "10X98765432"
"""Check character indexed by the weighted sum mod 11."""

_RESIDENT_ID_BIRTH_DATE = slice(6, 14)
"""Positions 7–14: the date of birth, YYYYMMDD."""

_EARLIEST_BIRTH_YEAR = 1800
"""Birth years before this are refused as typing errors, not people."""

LICENSE_IDENTIFIER_PREFIX = "1.2.156.3005.2"
"""The object identifier arc under which every e-license identifier is registered."""

LICENSE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""The 36 characters of ISO/IEC 7064 MOD 37,36, in the order of their values 0–35; also the
characters allowed in the fields of an e-license identifier."""

LICENSE_TYPE_CODE_SIZE = USCC_SIZE + 3
"""A license type code: the USCC of the defining authority and a 3-digit sequence."""

ADMIN_DIVISION_CODE_SIZE = 6
"""An administrative division code (GB/T 2260), used as issuer code by an issuing authority
without a USCC."""

LICENSE_SERIAL_MAX_SIZE = 32
"""Most characters in the serial of an e-license identifier (one or more)."""

LICENSE_VERSION_SIZE = 3
"""Digits in the version of an e-license identifier (``001`` for the first)."""

_MOD_37_36 = len(LICENSE_ALPHABET)
"""M of the hybrid system; the intermediate products are taken mod M + 1 = 37."""


class IdentifierKind(enum.StrEnum):
    """The kinds of identifier this module checks."""

    USCC = "uscc"
    """Unified social credit code (GB 32100)."""
    RESIDENT_ID = "resident_id"
    """Citizen identity number (GB 11643)."""
    LICENSE_IDENTIFIER = "license_identifier"
    """E-license identifier (GB/T 36904)."""
    LICENSE_TYPE_CODE = "license_type_code"
    """License type code within an e-license identifier."""
    LICENSE_ISSUER_CODE = "license_issuer_code"
    """Issuer code within an e-license identifier (a USCC or an administrative division
    code)."""


class IdentifierDefect(enum.StrEnum):
    """What is wrong with an identifier."""

    NOT_TEXT = "not_text"
    """The value is not a string."""
    LENGTH = "length"
    """Too short or too long."""
    CHARACTER = "character"
    """A character outside the identifier's alphabet, or a field of the wrong shape."""
    STRUCTURE = "structure"
    """The wrong prefix, number of fields or field sizes."""
    BIRTH_DATE = "birth_date"
    """The date of birth of an identity number is not a date, or is implausibly early."""
    CHECK_CHARACTER = "check_character"
    """Well formed, but the check character does not match the rest."""


class InvalidIdentifier(SdkError, ValueError):
    """An identifier that fails validation. ``kind`` says which kind was expected, ``value``
    is what was given, ``reason`` what is wrong with it and ``detail`` a sentence for
    people."""

    def __init__(
        self, kind: IdentifierKind, value: object, reason: IdentifierDefect, detail: str
    ) -> None:
        super().__init__(f"invalid {kind.value} {value!r}: {detail}")
        self.kind = kind
        self.value = value
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.kind, self.value, self.reason, self.detail))


def _require_text(kind: IdentifierKind, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(kind, value, IdentifierDefect.NOT_TEXT, "not a string")
    return value


def _canonical_case(value: str) -> str:
    """Upper-case ASCII text; other text is left alone for the alphabet check to refuse."""
    return value.upper() if value.isascii() else value


def _check_size(kind: IdentifierKind, value: str, size: int) -> None:
    if len(value) != size:
        raise InvalidIdentifier(
            kind, value, IdentifierDefect.LENGTH, f"{len(value)} characters, expected {size}"
        )


def _check_alphabet(kind: IdentifierKind, value: str, alphabet: str) -> None:
    for position, character in enumerate(value, start=1):
        if character not in alphabet:
            raise InvalidIdentifier(
                kind,
                value,
                IdentifierDefect.CHARACTER,
                f"character {character!r} at position {position} is not allowed",
            )


def _check_match(kind: IdentifierKind, value: str, expected: str) -> None:
    if value[-1] != expected:
        raise InvalidIdentifier(
            kind,
            value,
            IdentifierDefect.CHECK_CHARACTER,
            f"check character is {value[-1]!r}, expected {expected!r}",
        )


# --- unified social credit code (GB 32100) -------------------------------------------------


def compute_uscc_check(body: str) -> str:
    """The check character of the first 17 characters of a USCC. Raises InvalidIdentifier if
    ``body`` is not 17 characters of the USCC alphabet (upper case)."""
    kind = IdentifierKind.USCC
    body = _require_text(kind, body)
    _check_size(kind, body, USCC_SIZE - 1)
    _check_alphabet(kind, body, USCC_ALPHABET)
    total = sum(
        USCC_ALPHABET.index(character) * weight
        for character, weight in zip(body, _USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: str) -> str:
    """Return the canonical (upper-case) form of a unified social credit code.

    Raises InvalidIdentifier when it is not 18 characters, uses a character outside the
    alphabet (I, O, S, V and Z never occur), has a non-digit in the administrative division
    code (positions 3–8), or its check character does not match.
    """
    kind = IdentifierKind.USCC
    code = _canonical_case(_require_text(kind, code))
    _check_size(kind, code, USCC_SIZE)
    _check_alphabet(kind, code, USCC_ALPHABET)
    if not code[_USCC_REGION].isdigit():
        raise InvalidIdentifier(
            kind,
            code,
            IdentifierDefect.CHARACTER,
            "positions 3-8 (administrative division code) must be digits",
        )
    _check_match(kind, code, compute_uscc_check(code[:-1]))
    return code


# --- citizen identity number (GB 11643) -----------------------------------------------------


def compute_resident_id_check(body: str) -> str:
    """The check character (a digit or ``X``) of the first 17 digits of an identity number.
    Raises InvalidIdentifier if ``body`` is not 17 ASCII digits."""
    kind = IdentifierKind.RESIDENT_ID
    body = _require_text(kind, body)
    _check_size(kind, body, RESIDENT_ID_SIZE - 1)
    _check_alphabet(kind, body, "0123456789")
    total = sum(
        int(digit) * weight for digit, weight in zip(body, _RESIDENT_ID_WEIGHTS, strict=True)
    )
    return _RESIDENT_ID_CHECKS[total % 11]


def validate_resident_id(code: str) -> str:
    """Return the canonical form (check ``X`` in upper case) of a citizen identity number.

    Raises InvalidIdentifier when it is not 17 digits followed by a digit or X, when
    positions 7–14 are not a calendar date from 1800 on, or when the check character does
    not match. Whether the birth date lies in the future is left to the caller, who knows
    what "today" is.
    """
    kind = IdentifierKind.RESIDENT_ID
    code = _canonical_case(_require_text(kind, code))
    _check_size(kind, code, RESIDENT_ID_SIZE)
    _check_alphabet(kind, code[:-1], "0123456789")
    if code[-1] not in _RESIDENT_ID_CHECKS:
        raise InvalidIdentifier(
            kind, code, IdentifierDefect.CHARACTER, "the last character must be a digit or X"
        )
    birth = code[_RESIDENT_ID_BIRTH_DATE]
    try:
        born = datetime.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        raise InvalidIdentifier(
            kind, code, IdentifierDefect.BIRTH_DATE, f"{birth} is not a calendar date"
        ) from None
    if born.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidIdentifier(
            kind, code, IdentifierDefect.BIRTH_DATE, f"birth year {born.year} is too early"
        )
    _check_match(kind, code, compute_resident_id_check(code[:-1]))
    return code


# --- e-license identifier (GB/T 36904) ------------------------------------------------------


def mod_37_36_check(text: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character of ``text``, by the hybrid system's
    recursion: P starts at M = 36; for each character S = (P + value) mod M, taken as M when
    0, and P = 2S mod (M + 1); the check character is the one whose value a satisfies
    (P + a) mod M = 1. Raises InvalidIdentifier if ``text`` has a character outside
    LICENSE_ALPHABET."""
    _check_alphabet(
        IdentifierKind.LICENSE_IDENTIFIER,
        _require_text(IdentifierKind.LICENSE_IDENTIFIER, text),
        LICENSE_ALPHABET,
    )
    product = _MOD_37_36
    for character in text:
        total = (product + LICENSE_ALPHABET.index(character)) % _MOD_37_36 or _MOD_37_36
        product = (2 * total) % (_MOD_37_36 + 1)
    return LICENSE_ALPHABET[(_MOD_37_36 + 1 - product) % _MOD_37_36]


def validate_license_type_code(type_code: str) -> str:
    """Return ``type_code`` if it is a license type code: the valid USCC of the defining
    authority followed by three digits. Raises InvalidIdentifier otherwise."""
    kind = IdentifierKind.LICENSE_TYPE_CODE
    type_code = _require_text(kind, type_code)
    _check_size(kind, type_code, LICENSE_TYPE_CODE_SIZE)
    _check_alphabet(kind, type_code, LICENSE_ALPHABET)
    if not type_code[USCC_SIZE:].isdigit():
        raise InvalidIdentifier(
            kind, type_code, IdentifierDefect.CHARACTER, "the last three characters must be digits"
        )
    try:
        _strict_uscc(type_code[:USCC_SIZE])
    except InvalidIdentifier as error:
        raise InvalidIdentifier(
            kind, type_code, error.reason, f"defining authority USCC: {error.detail}"
        ) from error
    return type_code


def validate_license_issuer_code(issuer_code: str) -> str:
    """Return ``issuer_code`` if it is the code of an issuing authority: a valid USCC
    (18 characters) or an administrative division code (6 digits). Raises InvalidIdentifier
    otherwise."""
    kind = IdentifierKind.LICENSE_ISSUER_CODE
    issuer_code = _require_text(kind, issuer_code)
    if len(issuer_code) == ADMIN_DIVISION_CODE_SIZE:
        _check_alphabet(kind, issuer_code, "0123456789")
        return issuer_code
    if len(issuer_code) != USCC_SIZE:
        raise InvalidIdentifier(
            kind,
            issuer_code,
            IdentifierDefect.LENGTH,
            f"{len(issuer_code)} characters, expected {USCC_SIZE} (USCC) "
            f"or {ADMIN_DIVISION_CODE_SIZE} (administrative division code)",
        )
    try:
        _strict_uscc(issuer_code)
    except InvalidIdentifier as error:
        raise InvalidIdentifier(kind, issuer_code, error.reason, error.detail) from error
    return issuer_code


def _strict_uscc(code: str) -> None:
    """Validate a USCC inside an e-license identifier, where only upper case is canonical."""
    _check_alphabet(IdentifierKind.USCC, code, USCC_ALPHABET)
    validate_uscc(code)


def _validate_serial(serial: str) -> None:
    kind = IdentifierKind.LICENSE_IDENTIFIER
    if not 1 <= len(serial) <= LICENSE_SERIAL_MAX_SIZE:
        raise InvalidIdentifier(
            kind,
            serial,
            IdentifierDefect.LENGTH,
            f"serial has {len(serial)} characters, expected 1 to {LICENSE_SERIAL_MAX_SIZE}",
        )
    _check_alphabet(kind, serial, LICENSE_ALPHABET)


def _validate_version(version: str) -> None:
    kind = IdentifierKind.LICENSE_IDENTIFIER
    if len(version) != LICENSE_VERSION_SIZE or not (version.isascii() and version.isdigit()):
        raise InvalidIdentifier(
            kind,
            version,
            IdentifierDefect.STRUCTURE,
            f"version must be {LICENSE_VERSION_SIZE} digits",
        )


def compute_license_check(type_code: str, issuer_code: str, serial: str, version: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character of an e-license identifier, computed over
    ``type_code + issuer_code + serial + version``. Raises InvalidIdentifier if a field is
    malformed."""
    validate_license_type_code(type_code)
    validate_license_issuer_code(issuer_code)
    _validate_serial(serial)
    _validate_version(version)
    return mod_37_36_check(type_code + issuer_code + serial + version)


@dataclass(frozen=True)
class LicenseIdentifier:
    """The fields of a valid e-license identifier (GB/T 36904)."""

    type_code: str
    """License type code: the defining authority's USCC and a 3-digit sequence."""
    issuer_code: str
    """The issuing authority's USCC, or its administrative division code."""
    serial: str
    """Serial number given by the issuing authority (1 to 32 characters of 0-9A-Z)."""
    version: str
    """Version, three digits (``001`` for the first)."""
    check: str
    """MOD 37,36 check character."""

    def __str__(self) -> str:
        return ".".join(
            (
                LICENSE_IDENTIFIER_PREFIX,
                self.type_code,
                self.issuer_code,
                self.serial,
                self.version,
                self.check,
            )
        )

    @property
    def text(self) -> str:
        """The identifier in its one canonical text form."""
        return str(self)


def parse_license_identifier(text: str) -> LicenseIdentifier:
    """Return the fields of the e-license identifier ``text``.

    Raises InvalidIdentifier unless ``text`` is exactly
    ``1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>`` with a valid type
    code and issuer code, a serial of 1–32 characters of 0-9A-Z, a 3-digit version and the
    matching MOD 37,36 check character. The fixed sizes of the fields around the serial mean
    that moving a dot is caught even though the check character does not see the dots.
    """
    kind = IdentifierKind.LICENSE_IDENTIFIER
    text = _require_text(kind, text)
    head = LICENSE_IDENTIFIER_PREFIX + "."
    if not text.startswith(head):
        raise InvalidIdentifier(kind, text, IdentifierDefect.STRUCTURE, f"must start with {head!r}")
    fields = text[len(head) :].split(".")
    if len(fields) != 5:
        raise InvalidIdentifier(
            kind,
            text,
            IdentifierDefect.STRUCTURE,
            "expected type code, issuer code, serial, version and check separated by dots",
        )
    type_code, issuer_code, serial, version, check = fields
    try:
        expected = compute_license_check(type_code, issuer_code, serial, version)
    except InvalidIdentifier as error:
        raise InvalidIdentifier(kind, text, error.reason, error.detail) from error
    if len(check) != 1:
        raise InvalidIdentifier(
            kind, text, IdentifierDefect.STRUCTURE, "the check must be a single character"
        )
    if check not in LICENSE_ALPHABET:
        raise InvalidIdentifier(
            kind, text, IdentifierDefect.CHARACTER, f"check character {check!r} is not allowed"
        )
    _check_match(kind, text, expected)
    return LicenseIdentifier(type_code, issuer_code, serial, version, check)


def make_license_identifier(type_code: str, issuer_code: str, serial: str, version: str) -> str:
    """The e-license identifier with these fields and its computed check character. Raises
    InvalidIdentifier if a field is malformed."""
    check = compute_license_check(type_code, issuer_code, serial, version)
    return str(LicenseIdentifier(type_code, issuer_code, serial, version, check))
