"""Checks logged in groups (registry.credit.check_log on the registry's group writer): checks
made at the same moment are committed together and their tracker entries signed once, over
the Merkle root of the group, and yet every check is in the subject's tracker with its own
receipt whose proof verifies offline; a failed commit answers every check of its group with
a 503 and logs none of them."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections import Counter
from typing import Any

from credit_harness import CreditApp
from registry_harness import TrustChain
from sqlalchemy import event, func, select

from registry.authorizations.check_trail import subject_checks
from registry.credit.check_log import WRITER_THREAD, CheckLogWriter
from registry.credit.checks import CheckAsked, check_subject
from registry.credit.keys import CreditKeys
from registry.credit.models import CreditCheckLog
from registry.errors import ServiceUnavailable
from registry.models import Client
from sdk.chain_reader import ChainReader
from sdk.data_client import CheckRecord
from sdk.data_receipts import verify_receipt

ENTERPRISE_USCC = "91350100M000100Y43"
CHECKS = 12
ANCHOR_TIMEOUT_S = 90.0


def _rows(app: CreditApp, count: int) -> list[dict[str, Any]]:
    """The log rows of ``count`` checks of the enterprise by the test department."""
    state = app.http.app.state  # type: ignore[attr-defined]
    keys: CreditKeys = state.credit_keys
    with app.db.read_session() as session:
        client = session.get(Client, app.client_id)
        assert client is not None
        session.expunge(client)
    return [
        check_subject(
            app.db,
            keys,
            CheckAsked(
                client,
                ENTERPRISE_USCC,
                f"activity-{index}",
                datetime.date(2023, 6, 2),
                app.clock.now(),
            ),
        )[1]
        for index in range(count)
    ]


async def _append_all(writer: CheckLogWriter, rows: list[dict[str, Any]]) -> list[Any]:
    return await asyncio.gather(*(writer.append(row) for row in rows), return_exceptions=True)


def _logged(app: CreditApp) -> int:
    with app.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(CreditCheckLog)) or 0)


def test_checks_at_once_share_a_signature_and_each_verifies_in_the_tracker(
    chain_app: CreditApp, trust_chain: TrustChain
) -> None:
    app = chain_app
    app.sdk.check(ENTERPRISE_USCC, "warm-up", datetime.date(2023, 6, 2))  # keys, log client
    state = app.http.app.state  # type: ignore[attr-defined]
    writer: CheckLogWriter = state.credit_check_log
    outcomes = asyncio.run(_append_all(writer, _rows(app, CHECKS)))
    assert outcomes == [None] * CHECKS

    sharing = state.data_gateway.sharing
    index = sharing.signer.subject_index("enterprise", ENTERPRISE_USCC)
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while True:
        shown = [CheckRecord.from_json(c) for c in subject_checks(sharing, index, limit=100).items]
        grouped = [c for c in shown if c.activity.startswith("activity-")]
        if len(grouped) == CHECKS and all(c.receipt.bundle is not None for c in grouped):
            break
        assert time.monotonic() < deadline, "the checks were not anchored in time"
        time.sleep(0.3)
    assert {c.activity for c in grouped} == {f"activity-{i}" for i in range(CHECKS)}
    by_signature = Counter(bytes(c.receipt.signature) for c in grouped)
    assert len(by_signature) < CHECKS, "checks made at once were signed one by one"
    # An entry signed with others carries its path to the signed root.
    assert all(
        c.receipt.proof is not None for c in grouped if by_signature[bytes(c.receipt.signature)] > 1
    )
    with ChainReader(trust_chain.chain.url) as reader:
        validators, chain_id = reader.validators(), reader.chain_id()
    for record in grouped:
        verdict = verify_receipt(
            record.receipt, validators, chain_id=chain_id, registry_key=sharing.signer.public_key
        )
        assert verdict.valid, verdict


def test_a_failed_group_answers_each_check_503_and_logs_none(app: CreditApp) -> None:
    rows = _rows(app, 3)
    rows[1] = {**rows[1], "decision": None}  # violates NOT NULL: the group's commit fails
    before = _logged(app)
    writer = CheckLogWriter(app.db)
    outcomes = asyncio.run(_append_all(writer, rows))
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes[1:2])
    assert _logged(app) - before == sum(outcome is None for outcome in outcomes)
    # The writer goes on: the next checks are logged.
    assert asyncio.run(_append_all(writer, _rows(app, 2))) == [None, None]
    assert _logged(app) - before == 2 + sum(outcome is None for outcome in outcomes)


def test_a_check_alone_is_logged(app: CreditApp) -> None:
    before = _logged(app)
    assert asyncio.run(_append_all(CheckLogWriter(app.db), _rows(app, 1))) == [None]
    assert _logged(app) == before + 1


def test_the_trail_is_signed_before_the_write_transaction_opens(app: CreditApp) -> None:
    happened: list[Any] = []

    class Trail:
        def prepare(self) -> None:
            happened.append("prepare")

        def build(self, rows: Any, subjects: Any) -> Any:
            happened.append("build")
            return list(subjects)

        def store(self, connection: Any, built: Any) -> None:
            happened.append(("store", built))

    def began(connection: Any) -> None:
        # The engine is the app's: its background work (batcher, anchorer, housekeeping)
        # begins transactions of its own at any moment; only the writer's count here.
        if threading.current_thread().name == WRITER_THREAD:
            happened.append("begin")

    rows = _rows(app, 1)
    event.listen(app.db.engine, "begin", began)
    try:
        outcomes = asyncio.run(_append_all(CheckLogWriter(app.db, Trail()), rows))
    finally:
        event.remove(app.db.engine, "begin", began)
    assert outcomes == [None]
    assert happened == ["prepare", "build", "begin", ("store", [ENTERPRISE_USCC])]
