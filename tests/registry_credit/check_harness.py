"""What the check tests share: a subject with an anchored black-list entry, a check read on a
thread as the route reads one it cannot answer from what is kept, and a check posted."""

from __future__ import annotations

import datetime
import json
from typing import Any

from credit_harness import RESIDENT_ID, CreditApp, penalty_file, person_penalty, wait_for
from test_credit_chain import PROCUREMENT, _black_entry

from registry.credit.checks import CheckAnswer, CheckAsked
from registry.credit.proofs import AnchoredEvent
from registry.models import Client
from registry.routers.credit_checks import _check_with_bundles
from sdk.trust_core import signed_headers


def anchored_black_entry(app: CreditApp) -> None:
    """A penalty of the resident and a black-list entry resting on it, both anchored."""
    penalty = person_penalty()
    app.sdk.import_file(penalty_file([penalty]))
    app.sdk.publish_list_entry(_black_entry(str(penalty["decision_number"])))
    app.sdk.sign_pending()
    profile = app.sdk.authority_profile(RESIDENT_ID)
    for record in profile["records"]:
        wait_for(lambda record=record: app.sdk.record_proof(record["current"]["id"])["proof"])


def department_client(app: CreditApp) -> Client:
    """The test department's client row (detached)."""
    with app.db.read_session() as session:
        client = session.get(Client, app.client_id)
        assert client is not None
        session.expunge(client)
    return client


def asked(app: CreditApp, on: datetime.date, subject: str = RESIDENT_ID) -> CheckAsked:
    """The test department's check of ``subject`` for procurement on ``on``, now."""
    return CheckAsked(department_client(app), subject, PROCUREMENT, on, app.clock.now())


def read_on_a_thread(
    app: CreditApp, on: datetime.date
) -> tuple[CheckAnswer, dict[str, Any], dict[str, AnchoredEvent | None]]:
    """The route's check of the resident for procurement on ``on``, read as on a thread."""
    state = app.http.app.state.registry  # type: ignore[attr-defined]
    keys = app.http.app.state.credit_keys  # type: ignore[attr-defined]
    return _check_with_bundles(state, keys, asked(app, on))


def post_check(app: CreditApp, body: dict[str, Any]) -> Any:
    """``POST /v1/credit/check`` of ``body``, signed by the test department."""
    data = json.dumps(body).encode()
    headers = signed_headers(
        app.key, client_id=app.client_id, method="POST", path="/v1/credit/check", body=data
    )
    headers["Content-Type"] = "application/json"
    return app.http.post("/v1/credit/check", content=data, headers=headers)
