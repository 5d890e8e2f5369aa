"""The gateway's checks: each rule refuses on its own with its own reason, the first failed
rule in the fixed order is the one named, and the window ends at the exact second."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from terms_samples import END, OTHER_DEPARTMENT, RECIPIENT, START, sample_terms

from authorizations.errors import GATEWAY_ORDER, AccessRefused, RefusalRule
from authorizations.gateway import (
    AccessRequest,
    AuthorizationState,
    check_access,
    first_failed_rule,
)
from chain.crypto import sm3
from chain.primitives import Hash32

TERMS = sample_terms(max_uses=3)
GOOD = AccessRequest(
    caller=RECIPIENT,
    subject_commitment=TERMS.subject_commitment,
    item="license.metadata",
    purpose=TERMS.purpose,
)
LIVE = AuthorizationState(TERMS)
NOW = START + 10


def refused_with(state: AuthorizationState, request: AccessRequest, now: int) -> RefusalRule:
    try:
        check_access(state, request, now)
    except AccessRefused as refused:
        return refused.rule
    raise AssertionError("the access was allowed")


def test_allowed_when_every_rule_holds() -> None:
    check_access(LIVE, GOOD, NOW)
    assert first_failed_rule(LIVE, GOOD, NOW) is None


def test_another_department_reusing_the_authorization_id() -> None:
    request = dataclasses.replace(GOOD, caller=OTHER_DEPARTMENT)
    assert refused_with(LIVE, request, NOW) is RefusalRule.RECIPIENT


def test_data_about_another_subject() -> None:
    request = dataclasses.replace(GOOD, subject_commitment=Hash32(sm3(b"someone else")))
    assert refused_with(LIVE, request, NOW) is RefusalRule.SUBJECT


def test_item_outside_scope() -> None:
    for item in ("credit.penalty", "license", "licenses.metadata", "license.metadatax"):
        request = dataclasses.replace(GOOD, item=item)
        assert refused_with(LIVE, request, NOW) is RefusalRule.SCOPE, item


def test_item_below_a_granted_item_is_in_scope() -> None:
    check_access(LIVE, dataclasses.replace(GOOD, item="license.metadata.holder_id"), NOW)


def test_purpose_mismatch() -> None:
    request = dataclasses.replace(GOOD, purpose="subsidy.eligibility")
    assert refused_with(LIVE, request, NOW) is RefusalRule.PURPOSE


def test_window_ends_at_the_exact_second() -> None:
    check_access(LIVE, GOOD, START)
    check_access(LIVE, GOOD, END - 1)
    assert refused_with(LIVE, GOOD, END) is RefusalRule.WINDOW
    assert refused_with(LIVE, GOOD, START - 1) is RefusalRule.WINDOW


def test_revoked_from_the_second_of_revocation() -> None:
    revoked = dataclasses.replace(LIVE, revoked_at=NOW)
    check_access(revoked, GOOD, NOW - 1)
    assert refused_with(revoked, GOOD, NOW) is RefusalRule.REVOKED


def test_no_uses_left() -> None:
    check_access(dataclasses.replace(LIVE, uses_made=2), GOOD, NOW)
    assert refused_with(dataclasses.replace(LIVE, uses_made=3), GOOD, NOW) is RefusalRule.USES


def test_unlimited_uses() -> None:
    unlimited = AuthorizationState(sample_terms(), uses_made=10**6)
    check_access(unlimited, GOOD, NOW)


@settings(max_examples=300, deadline=None)
@given(failing=st.sets(st.sampled_from(GATEWAY_ORDER)), now_offset=st.integers(0, 3599))
def test_first_failed_rule_in_order(failing: set[RefusalRule], now_offset: int) -> None:
    """Break any subset of the rules at once: the refusal names the earliest of them in the
    gateway's order."""
    request, state, now = GOOD, LIVE, START + now_offset
    if RefusalRule.RECIPIENT in failing:
        request = dataclasses.replace(request, caller=OTHER_DEPARTMENT)
    if RefusalRule.SUBJECT in failing:
        request = dataclasses.replace(request, subject_commitment=Hash32(sm3(b"other")))
    if RefusalRule.SCOPE in failing:
        request = dataclasses.replace(request, item="credit.penalty")
    if RefusalRule.PURPOSE in failing:
        request = dataclasses.replace(request, purpose="subsidy.eligibility")
    if RefusalRule.WINDOW in failing:
        now = END + now_offset
    if RefusalRule.REVOKED in failing:
        state = dataclasses.replace(state, revoked_at=START)
    if RefusalRule.USES in failing:
        state = dataclasses.replace(state, uses_made=3)
    expected = next((rule for rule in GATEWAY_ORDER if rule in failing), None)
    assert first_failed_rule(state, request, now) is expected
