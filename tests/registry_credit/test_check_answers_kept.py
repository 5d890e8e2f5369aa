"""A check answered from what is kept under the credit version is kept whole (its bytes around
the time): the next check with the same subject, version, activity and day is answered from
it, with its own time, logged and in the subject's tracker like any other; a change of the
subject's records, or a proof's bundle no longer the one in the verify caches, is seen by the
very next check."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from check_harness import anchored_black_entry, post_check, read_on_a_thread
from credit_harness import RESIDENT_ID, CreditApp
from registry_harness import TrustChain
from test_credit_chain import PROCUREMENT

from registry.authorizations.trail_models import CreditCheckEntryRow
from registry.credit.check_answers import KeptAnswer, KeptAnswers
from registry.credit.models import CreditCheckLog
from registry.record_bundles import VerifyCaches
from registry.routers import credit_checks
from registry.routers.credit_checks import check_answer_json

ON = datetime.date(2023, 6, 2)


def _check(app: CreditApp, on: datetime.date = ON) -> bytes:
    answered = post_check(app, {"subject": RESIDENT_ID, "activity": PROCUREMENT, "on": str(on)})
    assert answered.status_code == 200, answered.text
    assert int(answered.headers["content-length"]) == len(answered.content)
    return bytes(answered.content)


def _as_read_on_a_thread(app: CreditApp, on: datetime.date = ON) -> bytes:
    answer, _, bundles = read_on_a_thread(app, on)
    return check_answer_json(answer, bundles)


def _made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the checks made (not answered from a kept answer), as they happen."""
    made: list[str] = []
    real = credit_checks._kept_check

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append("kept_check")
        return real(*args, **kwargs)

    async def on_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(function.__name__)
        return function(*args, **kwargs)

    monkeypatch.setattr(credit_checks, "_kept_check", counted)
    monkeypatch.setattr(credit_checks, "run_blocking", on_thread)
    return made


@pytest.fixture
def anchored(chain_app: CreditApp, trust_chain: TrustChain) -> CreditApp:
    """The app on a chain, with the resident's anchored black-list entry (SQLite only:
    versions are kept there alone)."""
    if not chain_app.db.is_sqlite:
        pytest.skip("versions are kept on SQLite only")
    anchored_black_entry(chain_app)
    return chain_app


def _kept(app: CreditApp) -> KeptAnswers:
    kept: KeptAnswers = app.http.app.state.credit_check_answers  # type: ignore[attr-defined]
    return kept


def test_a_kept_answer_serves_the_next_checks_each_logged_and_in_the_tracker(
    anchored: CreditApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = anchored
    made = _made(monkeypatch)
    logged, tracked = app.count(CreditCheckLog), app.count(CreditCheckEntryRow)

    first, second = _check(app), _check(app)
    assert made == ["kept_check", "_check_with_bundles", "kept_check"]
    assert len(_kept(app)) == 1
    app.clock.set(app.clock.now() + datetime.timedelta(minutes=5))
    made.clear()
    third = _check(app)
    assert made == []  # answered from the kept answer
    assert first == second != third  # the time differs
    assert third == _as_read_on_a_thread(app)
    assert b'"restricted"' in third and b'"bundle"' in third
    assert app.count(CreditCheckLog) == logged + 3
    assert app.count(CreditCheckEntryRow) == tracked + 3

    # Another day is another answer, made and then kept.
    later = ON + datetime.timedelta(days=400)
    _check(app, later)
    assert made == ["kept_check"] and len(_kept(app)) == 2

    # The list entry's decision withdrawn: the very next check reads it.
    entry_id = str(json.loads(third)["reasons"][0]["entry_record_id"])
    app.sdk.withdraw(entry_id, "复议撤销")
    made.clear()
    after_day = app.clock.now().date() + datetime.timedelta(days=1)
    after = _check(app, after_day)
    assert made == ["kept_check", "_check_with_bundles"]
    assert b'"decision":"allowed"' in after and b'"reasons":[]' in after
    assert after == _as_read_on_a_thread(app, after_day)


def test_a_kept_answer_is_not_served_once_its_bundle_is_not_the_one_in_the_caches(
    anchored: CreditApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = anchored
    _check(app)
    _check(app)
    made = _made(monkeypatch)
    _check(app)
    assert made == []
    # A bundle built again (another object, the same JSON) replaces the one the kept answer
    # was written from: the answer is made again, then kept again with the new object.
    caches = app.http.app.state.registry.caches  # type: ignore[attr-defined]
    (answer,) = _kept(app)._kept.values()
    notary_id, bundle = answer.bundles[0]
    caches.bundle_json.put(notary_id, dict(bundle))
    again = _check(app)
    assert made == ["kept_check"]
    assert again == _as_read_on_a_thread(app)
    made.clear()
    assert _check(app) == again
    assert made == []


def _answer(size: int, decision: str = "allowed") -> KeptAnswer:
    return KeptAnswer(decision, b"h" * (size // 2), b"t" * (size - size // 2), ())


def test_kept_answers_stay_within_their_bytes_least_recently_used_out() -> None:
    kept = KeptAnswers(max_bytes=1_000)
    caches = VerifyCaches()
    day = datetime.date(2024, 1, 1)
    for index in range(4):
        kept.put((f"s{index}", 1, "a", day), _answer(240))
    assert len(kept) == 4
    assert kept.get(("s0", 1, "a", day), caches) is not None  # now the most recent
    kept.put(("s4", 1, "a", day), _answer(240))
    assert len(kept) == 4
    assert kept.get(("s1", 1, "a", day), caches) is None  # the least recently used went
    assert kept.get(("s0", 1, "a", day), caches) is not None
    kept.put(("big", 1, "a", day), _answer(251))  # over a quarter of the bytes: not kept
    assert kept.get(("big", 1, "a", day), caches) is None
    kept.put(("s0", 1, "a", day), _answer(100, "restricted"))  # replaced, its bytes counted once
    found = kept.get(("s0", 1, "a", day), caches)
    assert found is not None and found.decision == "restricted"
    at = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert found.body(at) == b"h" * 50 + b'"2024-01-02T03:04:05+00:00"' + b"t" * 50
