"""Pieces of the public-credit registry tests: a movable fixed clock, the app under test,
and 双公示 files built from the credit domain tests' rows."""

from __future__ import annotations

import csv
import datetime
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from credit_tables import (
    AUTHORITY_USCC,
    ENTERPRISE_USCC,
    PENALTY_HEADERS,
    PENALTY_KEYS,
    cells,
    penalty_row,
)
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from chain.crypto import PrivateKey
from registry.credit.models import CreditEventRow, CreditRecordRow
from registry.db import Database
from sdk.credit_client import CreditClient

T = TypeVar("T")

RESIDENT_ID = "11010519491231002X"
"""A valid resident ID (tests/vectors/codes.json) of the natural person in the files."""

ANCHOR_TIMEOUT_S = 60.0
"""How long anchoring may take on a loaded machine."""


class Clock:
    """A fixed clock the test moves by hand."""

    def __init__(self, start: datetime.datetime) -> None:
        self.moment = start

    def now(self) -> datetime.datetime:
        return self.moment

    def set(self, moment: datetime.datetime) -> None:
        self.moment = moment


@dataclass
class CreditApp:
    """The registry app under test and a department's SDK client on it."""

    http: TestClient
    db: Database
    clock: Clock
    sdk: CreditClient
    client_id: str
    key: PrivateKey

    def count(self, table: Any) -> int:
        with self.db.read_session() as session:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)

    def records(self) -> int:
        return self.count(CreditRecordRow)

    def events(self) -> int:
        return self.count(CreditEventRow)


def penalty_file(rows: Sequence[dict[str, object]]) -> bytes:
    """A CSV in the national penalty layout (UTF-8 with BOM, as Excel saves it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(PENALTY_HEADERS)
    for row in rows:
        writer.writerow(cells(PENALTY_KEYS, row))
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def penalties(count: int, **overrides: object) -> list[dict[str, object]]:
    """``count`` valid penalty rows of one enterprise, numbered 0…"""
    return [
        penalty_row(decision_number=f"榕市监罚〔2023〕{i}号", **overrides) for i in range(count)
    ]


def person_penalty(**overrides: object) -> dict[str, object]:
    """A valid penalty row of a natural person named by RESIDENT_ID."""
    values: dict[str, object] = {
        "name": "张三",
        "category": "自然人",
        "code_1": "",
        "legal_representative": "",
        "id_type": "身份证",
        "id_number": RESIDENT_ID,
        "decision_number": "榕市监罚〔2023〕人1号",
    }
    values.update(overrides)
    return penalty_row(**values)


def black_list_entry(number: int) -> dict[str, Any]:
    """A black-list entry of the enterprise of :func:`penalties` (decision
    ``榕市监认〔2023〕{number}号``), resting on its penalty ``榕市监罚〔2023〕0号``."""
    return {
        "subject": {"category": "法人及非法人组织", "name": "福州某某贸易有限公司",
                    "uscc": ENTERPRISE_USCC, "legal_representative": "王某某"},
        "list_type": "black", "list_name": "严重违法失信名单",
        "decision_number": f"榕市监认〔2023〕{number}号", "reason": "拒不履行",
        "legal_basis": "《市场监督管理严重违法失信名单管理办法》",
        "entry_date": "2023-06-01", "authority": "福州市市场监督管理局",
        "authority_uscc": AUTHORITY_USCC,
        "basis_records": [
            {"authority_uscc": AUTHORITY_USCC, "decision_number": "榕市监罚〔2023〕0号"}
        ],
    }  # fmt: skip


def wait_for(probe: Callable[[], T | None], timeout: float = ANCHOR_TIMEOUT_S) -> T:
    """Poll ``probe`` until it returns something (the anchoring runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        time.sleep(0.2)
