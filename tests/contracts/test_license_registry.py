"""LicenseRegistry: e-license status by identifier hash, the lifecycle issue → change →
suspend / resume → revoke / expire with reason codes and full history, holder commitments,
and refusals for other departments, missing roles and invalid transitions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from trust_harness import USCC_A, TrustStack, trust_stack

from chain.crypto import sm3
from chain.primitives import Hash32
from contracts.trust import (
    HistoryEntry,
    LicenseRecord,
    LicenseStatus,
    Reason,
    TrustEncodingError,
    holder_commitment,
    license_id_hash,
    uscc_bytes,
)

A = uscc_bytes(USCC_A)
ZERO = Hash32(bytes(32))
# The published GB/T 36904 example identifier.
LICENSE = license_id_hash("1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F")
NEW_VERSION = Hash32(sm3(b"second version"))
HOLDER = holder_commitment(b"sixteen-byte-salt", "11010519491231002X")
METADATA = Hash32(sm3(b"GB/T 36903 metadata"))


@pytest.fixture
def stack() -> TrustStack:
    return trust_stack()


def issue(stack: TrustStack, license_id: bytes = LICENSE, valid_until: int = 0) -> None:
    stack.licenses.send(stack.key("a_issuer"), "issue", license_id, HOLDER, METADATA, valid_until)


def status(stack: TrustStack, license_id: bytes = LICENSE) -> LicenseStatus:
    return LicenseStatus(stack.licenses.view("statusOf", license_id))


def history(stack: TrustStack, license_id: bytes = LICENSE) -> list[HistoryEntry]:
    length = stack.licenses.view("historyLength", license_id)
    return [
        HistoryEntry.from_abi(stack.licenses.view("historyAt", license_id, index))
        for index in range(length)
    ]


def record(stack: TrustStack, license_id: bytes = LICENSE) -> LicenseRecord:
    return LicenseRecord.from_abi(stack.licenses.view("licenseOf", license_id))


def test_issue(stack: TrustStack) -> None:
    receipt = stack.licenses.send(stack.key("a_issuer"), "issue", LICENSE, HOLDER, METADATA, 0)
    issuer = stack.account("a_issuer")
    issued, changed = stack.licenses.events(receipt)
    assert issued.name == "LicenseIssued"
    assert issued.args == {
        "id": LICENSE,
        "department": A,
        "by": issuer,
        "holderCommitment": HOLDER,
        "metadataHash": METADATA,
        "validUntil": 0,
    }
    assert changed.name == "StatusChanged"
    assert changed.args == {
        "id": LICENSE,
        "status": LicenseStatus.ISSUED,
        "reason": 0,
        "by": issuer,
    }
    assert receipt.gas_used < 200_000
    assert status(stack) is LicenseStatus.ISSUED
    assert record(stack) == LicenseRecord(A, LicenseStatus.ISSUED, 0, HOLDER, METADATA, ZERO, ZERO)
    assert history(stack) == [HistoryEntry(LicenseStatus.ISSUED, 0, stack.ledger.height, issuer)]
    assert stack.licenses.view("holderMatches", LICENSE, HOLDER) is True
    other = holder_commitment(b"another-salt-16b", "11010519491231002X")
    assert stack.licenses.view("holderMatches", LICENSE, other) is False


@pytest.mark.parametrize("caller", ["outsider", "a_revoker", "a_auditor"])
def test_issue_refused_to_non_issuers(stack: TrustStack, caller: str) -> None:
    error = stack.licenses.refused(stack.key(caller), "issue", LICENSE, HOLDER, METADATA, 0)
    assert error.name == "NotAuthorised" and error.args == (stack.account(caller), 1)
    assert status(stack) is LicenseStatus.NONE


def test_issue_refused_for_a_frozen_department(stack: TrustStack) -> None:
    stack.registry.send(stack.governance, "setFrozen", A, True)
    error = stack.licenses.refused(stack.key("a_issuer"), "issue", LICENSE, HOLDER, METADATA, 0)
    assert error.name == "NotAuthorised"


def test_issue_refuses_used_and_zero_ids_and_past_validity(stack: TrustStack) -> None:
    issue(stack)
    key = stack.key("b_issuer")
    error = stack.licenses.refused(key, "issue", LICENSE, HOLDER, METADATA, 0)
    assert error.name == "LicenseExists" and error.args == (LICENSE,)
    assert stack.licenses.refused(key, "issue", ZERO, HOLDER, METADATA, 0).name == "LicenseExists"
    now = stack.ledger.next_timestamp
    error = stack.licenses.refused(key, "issue", NEW_VERSION, HOLDER, METADATA, now)
    assert error.name == "InvalidValidity" and error.args == (now,)
    assert record(stack).department == A


def test_change_links_the_versions(stack: TrustStack) -> None:
    issue(stack)
    new_holder = holder_commitment(b"a-new-salt-16byte", "11010519491231002X")
    receipt = stack.licenses.send(
        stack.key("a_issuer2"),
        "change",
        LICENSE,
        NEW_VERSION,
        new_holder,
        METADATA,
        0,
        Reason.DATA_CHANGED,
    )
    by = stack.account("a_issuer2")
    names = [event.name for event in stack.licenses.events(receipt)]
    assert names == ["StatusChanged", "LicenseIssued", "StatusChanged", "LicenseChanged"]
    assert stack.licenses.events(receipt)[-1].args == {
        "oldId": LICENSE,
        "newId": NEW_VERSION,
        "by": by,
    }
    assert status(stack) is LicenseStatus.CHANGED
    assert record(stack).successor == NEW_VERSION
    assert status(stack, NEW_VERSION) is LicenseStatus.ISSUED
    new = record(stack, NEW_VERSION)
    assert (new.predecessor, new.department, new.holder_commitment) == (LICENSE, A, new_holder)
    assert history(stack)[-1] == HistoryEntry(
        LicenseStatus.CHANGED, Reason.DATA_CHANGED, stack.ledger.height, by
    )
    assert history(stack, NEW_VERSION) == [
        HistoryEntry(LicenseStatus.ISSUED, 0, stack.ledger.height, by)
    ]


def test_change_refusals(stack: TrustStack) -> None:
    issue(stack)
    issue(stack, NEW_VERSION)
    key = stack.key("a_issuer")
    error = stack.licenses.refused(key, "change", LICENSE, NEW_VERSION, HOLDER, METADATA, 0, 4)
    assert error.name == "LicenseExists" and error.args == (NEW_VERSION,)
    error = stack.licenses.refused(key, "change", LICENSE, LICENSE, HOLDER, METADATA, 0, 4)
    assert error.name == "LicenseExists"
    third = sm3(b"third")
    error = stack.licenses.refused(
        stack.key("b_issuer"), "change", LICENSE, third, HOLDER, METADATA, 0, 4
    )
    assert error.name == "WrongDepartment" and error.args == (stack.account("b_issuer"), A)
    error = stack.licenses.refused(
        stack.key("a_revoker"), "change", LICENSE, third, HOLDER, METADATA, 0, 4
    )
    assert error.name == "NotAuthorised"
    error = stack.licenses.refused(key, "change", third, sm3(b"4"), HOLDER, METADATA, 0, 4)
    assert error.name == "UnknownLicense" and error.args == (third,)
    assert status(stack) is LicenseStatus.ISSUED
    assert status(stack, third) is LicenseStatus.NONE


def test_full_lifecycle_with_history(stack: TrustStack) -> None:
    issue(stack)
    blocks = [stack.ledger.height]
    steps = [
        ("a_revoker", "suspend", Reason.UNDER_INVESTIGATION, LicenseStatus.SUSPENDED),
        ("a_issuer", "resume", Reason.RESTORED, LicenseStatus.ISSUED),
        ("a_revoker", "suspend", Reason.UNDER_INVESTIGATION, LicenseStatus.SUSPENDED),
        ("a_revoker", "revoke", Reason.LEGAL_DECISION, LicenseStatus.REVOKED),
    ]
    for caller, action, reason, expected in steps:
        receipt = stack.licenses.send(stack.key(caller), action, LICENSE, reason)
        (event,) = stack.licenses.events(receipt)
        assert event.args == {
            "id": LICENSE,
            "status": expected,
            "reason": reason,
            "by": stack.account(caller),
        }
        assert status(stack) is expected
        blocks.append(stack.ledger.height)
    callers = ["a_issuer", *(caller for caller, *_ in steps)]
    assert history(stack) == [
        HistoryEntry(entry_status, reason, block, stack.account(caller))
        for (entry_status, reason), block, caller in zip(
            [(LicenseStatus.ISSUED, 0), *((s, r) for _, _, r, s in steps)],
            blocks,
            callers,
            strict=True,
        )
    ]
    error = stack.licenses.view_error("historyAt", LICENSE, 5)
    assert error.name == "HistoryIndexOutOfRange" and error.args == (LICENSE, 5)


def test_explicit_expiry(stack: TrustStack) -> None:
    issue(stack)
    stack.licenses.send(stack.key("a_issuer"), "expire", LICENSE, Reason.TERM_ENDED)
    assert status(stack) is LicenseStatus.EXPIRED
    assert history(stack)[-1].status is LicenseStatus.EXPIRED
    assert stack.licenses.refused(stack.key("a_revoker"), "expire", LICENSE, 0).name == (
        "NotAuthorised"
    )


def test_validity_time_expires_the_license(stack: TrustStack) -> None:
    valid_until = stack.ledger.next_timestamp + 100
    issue(stack, valid_until=valid_until)
    assert record(stack).valid_until == valid_until
    assert status(stack) is LicenseStatus.ISSUED
    stack.ledger.advance(seconds=200)
    # statusOf applies the clock; the recorded state is unchanged until `expire`.
    assert status(stack) is LicenseStatus.EXPIRED
    assert record(stack).status is LicenseStatus.ISSUED
    error = stack.licenses.refused(stack.key("a_revoker"), "suspend", LICENSE, 1)
    assert error.name == "InvalidTransition"
    assert error.args == (LICENSE, LicenseStatus.EXPIRED, LicenseStatus.SUSPENDED)
    stack.licenses.send(stack.key("a_issuer"), "expire", LICENSE, Reason.TERM_ENDED)
    assert record(stack).status is LicenseStatus.EXPIRED
    assert len(history(stack)) == 2


Setup = Callable[[TrustStack], None]


def _suspended(stack: TrustStack) -> None:
    stack.licenses.send(stack.key("a_issuer"), "suspend", LICENSE, 1)


def _revoked(stack: TrustStack) -> None:
    stack.licenses.send(stack.key("a_issuer"), "revoke", LICENSE, 1)


def _expired(stack: TrustStack) -> None:
    stack.licenses.send(stack.key("a_issuer"), "expire", LICENSE, 1)


def _changed(stack: TrustStack) -> None:
    stack.licenses.send(
        stack.key("a_issuer"), "change", LICENSE, NEW_VERSION, HOLDER, METADATA, 0, 1
    )


def _issued(stack: TrustStack) -> None:
    pass


CHANGE_ARGS = (sm3(b"another"), HOLDER, METADATA, 0)


@pytest.mark.parametrize(
    ("setup", "action", "current", "target"),
    [
        (_issued, "resume", LicenseStatus.ISSUED, LicenseStatus.ISSUED),
        (_suspended, "suspend", LicenseStatus.SUSPENDED, LicenseStatus.SUSPENDED),
        (_suspended, "change", LicenseStatus.SUSPENDED, LicenseStatus.CHANGED),
        (_revoked, "revoke", LicenseStatus.REVOKED, LicenseStatus.REVOKED),
        (_revoked, "resume", LicenseStatus.REVOKED, LicenseStatus.ISSUED),
        (_revoked, "suspend", LicenseStatus.REVOKED, LicenseStatus.SUSPENDED),
        (_revoked, "expire", LicenseStatus.REVOKED, LicenseStatus.EXPIRED),
        (_revoked, "change", LicenseStatus.REVOKED, LicenseStatus.CHANGED),
        (_expired, "expire", LicenseStatus.EXPIRED, LicenseStatus.EXPIRED),
        (_expired, "resume", LicenseStatus.EXPIRED, LicenseStatus.ISSUED),
        (_expired, "revoke", LicenseStatus.EXPIRED, LicenseStatus.REVOKED),
        (_changed, "revoke", LicenseStatus.CHANGED, LicenseStatus.REVOKED),
        (_changed, "suspend", LicenseStatus.CHANGED, LicenseStatus.SUSPENDED),
        (_changed, "change", LicenseStatus.CHANGED, LicenseStatus.CHANGED),
    ],
)
def test_invalid_transitions_are_refused(
    stack: TrustStack,
    setup: Setup,
    action: str,
    current: LicenseStatus,
    target: LicenseStatus,
) -> None:
    issue(stack)
    setup(stack)
    length = stack.licenses.view("historyLength", LICENSE)
    args = (LICENSE, *CHANGE_ARGS, 1) if action == "change" else (LICENSE, 1)
    error = stack.licenses.refused(stack.key("a_issuer"), action, *args)
    assert error.name == "InvalidTransition" and error.args == (LICENSE, current, target)
    assert status(stack) is current
    assert stack.licenses.view("historyLength", LICENSE) == length


@pytest.mark.parametrize("action", ["suspend", "resume", "revoke", "expire"])
def test_other_departments_cannot_act(stack: TrustStack, action: str) -> None:
    issue(stack)
    error = stack.licenses.refused(stack.key("b_issuer"), action, LICENSE, 1)
    assert error.name == "WrongDepartment"


@pytest.mark.parametrize(
    ("caller", "action"),
    [
        ("a_revoker", "resume"),
        ("a_auditor", "suspend"),
        ("a_auditor", "revoke"),
        ("outsider", "revoke"),
        ("outsider", "suspend"),
    ],
)
def test_missing_roles_are_refused(stack: TrustStack, caller: str, action: str) -> None:
    issue(stack)
    if action == "resume":
        _suspended(stack)
    error = stack.licenses.refused(stack.key(caller), action, LICENSE, 1)
    assert error.name == "NotAuthorised"


@pytest.mark.parametrize("action", ["suspend", "resume", "revoke", "expire"])
def test_unknown_licenses(stack: TrustStack, action: str) -> None:
    error = stack.licenses.refused(stack.key("a_issuer"), action, LICENSE, 1)
    assert error.name == "UnknownLicense" and error.args == (LICENSE,)
    assert status(stack) is LicenseStatus.NONE
    assert stack.licenses.view("historyLength", LICENSE) == 0
    assert stack.licenses.view_error("licenseOf", LICENSE).name == "UnknownLicense"
    assert stack.licenses.view_error("holderMatches", LICENSE, HOLDER).name == "UnknownLicense"


def test_holder_commitment_needs_a_long_salt() -> None:
    with pytest.raises(TrustEncodingError):
        holder_commitment(b"short", "11010519491231002X")
    assert holder_commitment(b"s" * 16, "x") == sm3(b"s" * 16 + b"x")


def test_license_id_hash_is_sm3_of_the_identifier() -> None:
    assert license_id_hash("1.2.3") == sm3(b"1.2.3")
    with pytest.raises(TrustEncodingError):
        license_id_hash("")
