"""Request validation of the credit API under generated input: whatever the body, the
answer is a typed 4xx error (never a 500), and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

from credit_harness import CreditApp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_harness import CLIENT_KEY

from sdk.trust_core import signed_headers

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)

SUBJECT = st.fixed_dictionaries(
    {
        "category": st.sampled_from(["自然人", "法人及非法人组织", "个体工商户", "other"]),
        "name": st.text(max_size=5),
    },
    optional={
        "uscc": st.text(alphabet="0123456789ABCDY", min_size=17, max_size=19),
        "id_type": st.sampled_from(["身份证", "护照"]),
        "id_number": st.text(alphabet="0123456789X", min_size=15, max_size=19),
    },
)

LIST_ENTRY = st.fixed_dictionaries(
    {
        "subject": SUBJECT,
        "list_type": st.sampled_from(["black", "red", "grey"]),
        "list_name": st.text(max_size=5),
        "decision_number": st.text(max_size=5),
        "reason": st.text(max_size=5),
        "legal_basis": st.text(max_size=5),
        "entry_date": st.dates().map(str) | st.text(max_size=10),
        "authority": st.text(max_size=5),
        "authority_uscc": st.sampled_from(["11100000000013338W", "11100000000013338X", ""]),
    },
    optional={"planned_exit_date": st.dates().map(str), "basis_records": JSON},
)

CHECK = st.fixed_dictionaries(
    {"subject": st.text(max_size=70), "activity": st.text(max_size=110)},
    optional={"on": st.dates().map(str) | JSON},
)


def _post(app: CreditApp, path: str, body: Any) -> Any:
    data = json.dumps(body).encode()
    headers = signed_headers(
        CLIENT_KEY, client_id=app.client_id, method="POST", path=path, body=data
    )
    headers["Content-Type"] = "application/json"
    return app.http.post(path, content=data, headers=headers)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=LIST_ENTRY | JSON)
def test_list_entries_answer_typed_errors_and_store_nothing_when_invalid(
    app: CreditApp, body: Any
) -> None:
    before = app.records()
    answer = _post(app, "/v1/credit/list-entries", body)
    assert answer.status_code in (200, 403, 422), answer.text
    if answer.status_code != 200:
        assert set(answer.json()["error"]) == {"code", "message", "details"}
        assert app.records() == before


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=CHECK | JSON)
def test_check_answers_every_body_with_an_answer_or_a_typed_error(
    app: CreditApp, body: Any
) -> None:
    answer = _post(app, "/v1/credit/check", body)
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 200:
        assert answer.json()["decision"] == "allowed"
    else:
        assert answer.json()["error"]["code"]
