"""A check whose subject's entries and reasons' proofs are all kept under the credit version
is answered on the event loop, without the hop to a thread: the same bytes as the check read
on a thread, and a change of the subject's records is seen by the very next check."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from check_harness import anchored_black_entry, post_check, read_on_a_thread
from credit_harness import RESIDENT_ID, CreditApp, penalty_file, person_penalty
from registry_harness import TrustChain
from test_credit_chain import PROCUREMENT, _black_entry

from registry.routers import credit_checks
from registry.routers.credit_checks import check_answer_json
from registry.threads import run_blocking

ON = datetime.date(2023, 6, 2)


def _post_check(app: CreditApp, on: datetime.date) -> Any:
    answered = post_check(app, {"subject": RESIDENT_ID, "activity": PROCUREMENT, "on": str(on)})
    assert answered.status_code == 200, answered.text
    return answered


def _read_on_a_thread(app: CreditApp, on: datetime.date) -> bytes:
    answer, _, bundles = read_on_a_thread(app, on)
    return check_answer_json(answer, bundles)


def _counting_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    hops: list[str] = []
    real = run_blocking

    async def counted(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(function.__name__)
        return await real(function, *args, **kwargs)

    monkeypatch.setattr(credit_checks, "run_blocking", counted)  # the route's own name
    return hops


def test_a_kept_check_is_answered_on_the_loop_and_sees_the_next_change(
    chain_app: CreditApp, trust_chain: TrustChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = chain_app
    anchored_black_entry(app)
    hops = _counting_hops(monkeypatch)

    first = _post_check(app, ON)
    again = _post_check(app, ON)
    kept_on_loop = app.db.is_sqlite
    assert hops == ["_check_with_bundles"] * (1 if kept_on_loop else 2)
    assert first.content == again.content == _read_on_a_thread(app, ON)
    body = again.json()
    assert body["decision"] == "restricted"
    assert len(body["proofs"]) == 2 and all(body["proofs"].values())

    # The list entry's decision withdrawn: the very next check reads it, on a thread.
    app.sdk.withdraw(body["reasons"][0]["entry_record_id"], "复议撤销")
    hops.clear()
    later = app.clock.now().date() + datetime.timedelta(days=1)
    after = _post_check(app, later)
    assert hops == ["_check_with_bundles"]
    assert after.json()["decision"] == "allowed" and after.json()["reasons"] == []
    assert after.content == _read_on_a_thread(app, later)


def test_an_unknown_subject_is_answered_on_the_loop_once_kept(
    app: CreditApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = _counting_hops(monkeypatch)
    first = _post_check(app, ON)
    second = _post_check(app, ON)
    assert first.json()["decision"] == second.json()["decision"] == "allowed"
    assert first.content == second.content
    assert hops == ["_check_with_bundles"] * (1 if app.db.is_sqlite else 2)
    # A list entry published for the subject is in the very next answer.
    app.sdk.import_file(penalty_file([person_penalty()]))
    app.sdk.publish_list_entry(_black_entry(str(person_penalty()["decision_number"])))
    assert _post_check(app, ON).json()["decision"] == "restricted"
