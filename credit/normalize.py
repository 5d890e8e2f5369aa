"""Cell values as real spreadsheets deliver them, brought to one form: full-width characters
to their ASCII forms, dates in the usual notations or as Excel serials, amounts in 万元 with
thousands separators. Each parser raises :class:`ValueProblem` with a reason; the validator
turns it into a report entry."""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = [
    "EXCEL_SERIAL_MAX",
    "LONG_TERM",
    "MAX_AMOUNT_WAN",
    "ValueProblem",
    "clean_text",
    "excel_serial_to_date",
    "header_key",
    "parse_amount",
    "parse_date",
    "to_half_width",
]

LONG_TERM = datetime.date(2099, 12, 31)
"""有效期至 written as this date means "long-term" (长期) in the national template."""

_EXCEL_EPOCH = datetime.date(1899, 12, 30)
"""Day 0 of Excel's 1900 date system, as the serials after 1900-03-01 count it (Excel
pretends 1900 was a leap year, so serials ≤ 60 are refused)."""

EXCEL_SERIAL_MIN = 61
"""Smallest Excel serial read as a date (1900-03-01); below it Excel's calendar is wrong."""

EXCEL_SERIAL_MAX = 73_050
"""Largest Excel serial read as a date: 2099-12-31, the template's "long-term"."""

MAX_AMOUNT_WAN = Decimal("100000000")
"""Largest amount accepted in 万元 (1 万亿元); anything above is a typing error."""

AMOUNT_DECIMALS = 6
"""Most decimal places of an amount in 万元 (one 分 is 0.000001 万元)."""

_DATE_PATTERNS = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
"""Accepted date notations, matched against the whole value (after an optional time part of
midnight is dropped)."""

_MIDNIGHT = re.compile(r"[ T]0{1,2}:00(:00(\.0+)?)?$")
"""A time of day of midnight after a date, as spreadsheets export dates."""

_SERIAL = re.compile(r"\d{2,5}(\.0+)?")
"""An Excel serial day number written as text."""

_SPACES = re.compile(r"\s+")


class ValueProblem(ValueError):
    """A cell value that does not parse. ``reason`` is a short code, ``detail`` a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def to_half_width(text: str) -> str:
    """``text`` with full-width ASCII forms (０-９, Ａ-Ｚ, （）, ：, the ideographic space)
    replaced by their ASCII equivalents; Chinese characters are left alone."""
    return unicodedata.normalize("NFKC", text)


def clean_text(value: object) -> str | None:
    """A cell as text with surrounding white space removed; ``None`` for an empty cell.
    Numbers that are whole (as XLSX stores codes typed as numbers) lose their ``.0``."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value).strip()
    if not text:
        return None
    if text[0] == "\ufeff" or text[-1] == "\ufeff":
        text = text.strip("\ufeff").strip()
    return text or None


def header_key(text: str) -> str:
    """The comparable form of a column header: half-width, no white space or asterisks (the
    "required" mark), no BOM."""
    half = to_half_width(text.replace("\ufeff", ""))
    return _SPACES.sub("", half).replace("*", "")


def excel_serial_to_date(serial: float) -> datetime.date:
    """The date of an Excel (1900 system) serial day number; the fraction (a time) must be
    zero."""
    if serial != int(serial):
        raise ValueProblem("bad_date", f"Excel serial {serial} has a time of day")
    whole = int(serial)
    if not EXCEL_SERIAL_MIN <= whole <= EXCEL_SERIAL_MAX:
        raise ValueProblem(
            "bad_date",
            f"Excel serial {whole} is outside {EXCEL_SERIAL_MIN}–{EXCEL_SERIAL_MAX}",
        )
    return _EXCEL_EPOCH + datetime.timedelta(days=whole)


def parse_date(value: object) -> datetime.date:
    """A date from a cell: a ``date``/``datetime`` (XLSX), an Excel serial (number or
    digits), or text as ``2023-05-01``, ``2023/5/1``, ``2023.5.1``, ``2023年5月1日``,
    ``20230501``, optionally followed by a midnight time. Full-width digits are accepted."""
    if isinstance(value, datetime.datetime):
        if value.time() != datetime.time(0):
            raise ValueProblem("bad_date", f"{value.isoformat()} has a time of day")
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, bool):
        raise ValueProblem("bad_date", "not a date")
    if isinstance(value, int | float):
        return excel_serial_to_date(float(value))
    text = clean_text(value)
    if text is None:
        raise ValueProblem("missing", "empty")
    return _date_of_text(text)


_DATES_CACHED = 4_096
"""Date texts remembered: a file's rows share a few decision dates."""


@functools.lru_cache(maxsize=_DATES_CACHED)
def _date_of_text(text: str) -> datetime.date:
    """:func:`parse_date` of a non-empty text cell. Only successes are cached."""
    text = _SPACES.sub(" ", to_half_width(text))
    text = _MIDNIGHT.sub("", text)
    if len(text) != 8 and _SERIAL.fullmatch(text):
        return excel_serial_to_date(float(text))
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return datetime.date(year, month, day)
            except ValueError as error:
                raise ValueProblem("bad_date", f"{text!r} is not a calendar date") from error
    raise ValueProblem("bad_date", f"{text!r} is not a date in a known notation")


def parse_amount(value: object) -> Decimal:
    """An amount in 万元: a number, or text with optional thousands separators (``,``,
    ``，``), full-width digits and a ``万元``/``万`` suffix. Non-negative, finite, at most
    :data:`AMOUNT_DECIMALS` decimals and :data:`MAX_AMOUNT_WAN`."""
    if isinstance(value, bool):
        raise ValueProblem("bad_amount", "not an amount")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        text = clean_text(value)
        if text is None:
            raise ValueProblem("missing", "empty")
        text = to_half_width(text).replace(",", "").replace(" ", "")
        if text.endswith("元") and not text.endswith("万元"):
            raise ValueProblem("bad_amount", f"{value!r} is in 元; the column is in 万元")
        for suffix in ("万元", "万"):
            text = text.removesuffix(suffix)
        if not re.fullmatch(r"\d+(\.\d+)?", text):
            raise ValueProblem("bad_amount", f"{value!r} is not an amount in 万元")
        try:
            amount = Decimal(text)
        except InvalidOperation as error:
            raise ValueProblem("bad_amount", f"{value!r} is not a number") from error
    if not amount.is_finite() or amount < 0:
        raise ValueProblem("bad_amount", f"{value!r} is negative or not finite")
    if amount > MAX_AMOUNT_WAN:
        raise ValueProblem("bad_amount", f"{value!r} exceeds {MAX_AMOUNT_WAN} 万元")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > AMOUNT_DECIMALS:
        raise ValueProblem("bad_amount", f"{value!r} has more than {AMOUNT_DECIMALS} decimals")
    return amount.normalize() if amount != amount.to_integral() else amount.quantize(Decimal(1))
