"""IssuerRegistry: departments by USCC, SM2 keys as accounts with roles and validity windows,
key rotation, freezing and governance — every change by a signed transaction, every refusal
a revert that changes nothing."""

from __future__ import annotations

import pytest
from trust_harness import (
    INVALID_USCCS,
    USCC_A,
    USCC_B,
    USCC_C,
    TrustStack,
    trust_stack,
)

from contracts.trust import (
    OPEN_ENDED,
    KeyRecord,
    Role,
    TrustEncodingError,
    account_of,
    uscc_bytes,
)

A = uscc_bytes(USCC_A)
B = uscc_bytes(USCC_B)
C = uscc_bytes(USCC_C)
ZERO_USCC = bytes(18)


@pytest.fixture
def stack() -> TrustStack:
    return trust_stack()


def keys_of(stack: TrustStack, uscc: bytes) -> list[KeyRecord]:
    return [KeyRecord.from_abi(value) for value in stack.registry.view("keysOf", uscc)]


def test_constants_match_the_python_side(stack: TrustStack) -> None:
    registry = stack.registry
    assert registry.view("ISSUER") == Role.ISSUER
    assert registry.view("REVOKER") == Role.REVOKER
    assert registry.view("AUDITOR") == Role.AUDITOR
    assert registry.view("OPEN_ENDED") == OPEN_ENDED


def test_governance_is_set_by_the_constructor(stack: TrustStack) -> None:
    assert stack.registry.view("governance") == stack.account("governance")


@pytest.mark.parametrize("uscc", [USCC_A, USCC_B, USCC_C])
def test_published_usccs_are_valid(stack: TrustStack, uscc: str) -> None:
    assert stack.registry.view("usccValid", uscc_bytes(uscc)) is True


@pytest.mark.parametrize(
    "uscc",
    [*INVALID_USCCS, USCC_C.lower(), "I" + USCC_C[1:], "11220000013544541 ", "\x00" * 18],
)
def test_malformed_usccs_are_refused(stack: TrustStack, uscc: str) -> None:
    code = uscc_bytes(uscc)
    assert stack.registry.view("usccValid", code) is False
    error = stack.registry.refused(stack.governance, "registerDepartment", code, "x")
    assert error.name == "InvalidUscc" and error.args == (code,)


def test_register_department(stack: TrustStack) -> None:
    receipt = stack.registry.send(stack.governance, "registerDepartment", C, "某区行政审批局")
    (event,) = stack.registry.events(receipt)
    assert event.name == "DepartmentRegistered"
    assert event.args == {"uscc": C, "name": "某区行政审批局"}
    assert stack.registry.view("departmentInfo", C) == ("某区行政审批局", False, 0)
    assert stack.registry.view("keysOf", C) == ()


def test_register_department_refusals(stack: TrustStack) -> None:
    error = stack.registry.refused(stack.key("a_issuer"), "registerDepartment", C, "x")
    assert error.name == "NotGovernance" and error.args == (stack.account("a_issuer"),)
    error = stack.registry.refused(stack.governance, "registerDepartment", A, "again")
    assert error.name == "DepartmentExists"
    assert stack.registry.view("departmentInfo", A)[0] == "某区市场监督管理局"


def test_add_key_derives_the_account_and_grants_roles(stack: TrustStack) -> None:
    public_key = stack.key("a_new").public_key.to_bytes()
    height = stack.ledger.height + 1
    receipt = stack.registry.send(
        stack.governance, "addKey", A, public_key, Role.ISSUER | Role.REVOKER, 0, OPEN_ENDED
    )
    account = stack.account("a_new")
    assert account == account_of(public_key)
    assert stack.registry.view("accountOf", public_key) == account
    (event,) = stack.registry.events(receipt)
    assert event.name == "KeyAdded"
    assert event.args == {
        "uscc": A,
        "keyId": 4,
        "account": account,
        "publicKey": public_key,
        "roles": 3,
        # A window never starts before the block that registers it.
        "validFromBlock": height,
        "validUntilBlock": OPEN_ENDED,
    }
    assert keys_of(stack, A)[4] == KeyRecord(
        public_key, account, Role.ISSUER | Role.REVOKER, height, OPEN_ENDED
    )
    assert stack.registry.view("departmentOf", account) == (A, 4)
    assert stack.registry.view("rolesAt", account, height) == (A, 3)
    assert stack.registry.view("rolesAt", account, height - 1) == (A, 0)
    assert stack.registry.view("isIssuer", account, height) is True
    assert stack.registry.view("isIssuer", account, height - 1) is False
    assert stack.registry.view("departmentInfo", A) == ("某区市场监督管理局", False, 5)


def test_role_queries_per_key(stack: TrustStack) -> None:
    now = stack.ledger.height
    registry = stack.registry
    assert registry.view("isIssuer", stack.account("a_issuer"), now) is True
    assert registry.view("isIssuer", stack.account("a_revoker"), now) is False
    assert registry.view("isIssuer", stack.account("a_auditor"), now) is False
    assert registry.view("rolesAt", stack.account("a_auditor"), now) == (A, Role.AUDITOR)
    assert registry.view("rolesAt", stack.account("b_issuer"), now) == (B, 3)
    assert registry.view("isIssuer", stack.account("outsider"), now) is False
    assert registry.view("rolesAt", stack.account("outsider"), now) == (ZERO_USCC, 0)
    assert registry.view("departmentOf", stack.account("outsider")) == (ZERO_USCC, 0)


def test_future_window_and_bounded_window(stack: TrustStack) -> None:
    start = stack.ledger.height + 5
    key_id = stack.add_key(USCC_B, "b_later", Role.ISSUER, start, start + 3)
    account = stack.account("b_later")
    assert [
        stack.registry.view("keyValidAt", B, key_id, b) for b in range(start - 1, start + 4)
    ] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert stack.registry.view("isIssuer", account, start + 2) is True
    assert stack.registry.view("isIssuer", account, start + 3) is False


@pytest.mark.parametrize(
    ("public_key", "roles", "valid_from", "valid_until", "error"),
    [
        (b"\x04" + bytes(63), 1, 0, OPEN_ENDED, "InvalidPublicKey"),
        (b"\x02" + bytes(64), 1, 0, OPEN_ENDED, "InvalidPublicKey"),
        (None, 0, 0, OPEN_ENDED, "InvalidRoles"),
        (None, 8, 0, OPEN_ENDED, "InvalidRoles"),
        (None, 1, 0, 3, "InvalidWindow"),
        (None, 1, 100, 100, "InvalidWindow"),
    ],
)
def test_add_key_refusals(
    stack: TrustStack,
    public_key: bytes | None,
    roles: int,
    valid_from: int,
    valid_until: int,
    error: str,
) -> None:
    key = public_key or stack.key("x").public_key.to_bytes()
    refusal = stack.registry.refused(
        stack.governance, "addKey", A, key, roles, valid_from, valid_until
    )
    assert refusal.name == error


def test_add_key_refused_to_others_for_unknown_departments_and_taken_accounts(
    stack: TrustStack,
) -> None:
    fresh = stack.key("x").public_key.to_bytes()
    refusal = stack.registry.refused(stack.key("a_issuer"), "addKey", A, fresh, 1, 0, OPEN_ENDED)
    assert refusal.name == "NotGovernance"
    refusal = stack.registry.refused(stack.governance, "addKey", C, fresh, 1, 0, OPEN_ENDED)
    assert refusal.name == "UnknownDepartment" and refusal.args == (C,)
    taken = stack.key("a_issuer").public_key.to_bytes()
    refusal = stack.registry.refused(stack.governance, "addKey", B, taken, 1, 0, OPEN_ENDED)
    assert refusal.name == "AccountTaken" and refusal.args == (stack.account("a_issuer"),)


def test_close_key_keeps_the_past(stack: TrustStack) -> None:
    issued_at = stack.ledger.height
    close_at = stack.ledger.height + 2
    receipt = stack.registry.send(stack.governance, "closeKey", A, 0, close_at)
    (event,) = stack.registry.events(receipt)
    assert event.args == {"uscc": A, "keyId": 0, "validUntilBlock": close_at}
    account = stack.account("a_issuer")
    assert stack.registry.view("isIssuer", account, issued_at) is True
    assert stack.registry.view("isIssuer", account, close_at - 1) is True
    assert stack.registry.view("isIssuer", account, close_at) is False
    assert stack.registry.view("keyValidAt", A, 0, issued_at) is True
    assert keys_of(stack, A)[0].valid_until_block == close_at


def test_close_key_refusals(stack: TrustStack) -> None:
    now = stack.ledger.height
    # Closing may not reach back (what the key did stays valid) nor widen the window.
    assert stack.registry.refused(stack.governance, "closeKey", A, 0, now).name == "InvalidWindow"
    refusal = stack.registry.refused(stack.governance, "closeKey", A, 0, OPEN_ENDED)
    assert refusal.name == "InvalidWindow"
    refusal = stack.registry.refused(stack.governance, "closeKey", A, 9, now + 5)
    assert refusal.name == "UnknownKey" and refusal.args == (A, 9)
    refusal = stack.registry.refused(stack.key("a_issuer"), "closeKey", A, 0, now + 5)
    assert refusal.name == "NotGovernance"


def test_rotate_key(stack: TrustStack) -> None:
    before = stack.ledger.height
    new_key = stack.key("a_rotated").public_key.to_bytes()
    receipt = stack.registry.send(stack.governance, "rotateKey", A, 0, new_key)
    rotated_at = stack.ledger.height
    added, closed = stack.registry.events(receipt)
    assert added.name == "KeyAdded" and added.args["keyId"] == 4
    assert added.args["roles"] == Role.ISSUER and added.args["validFromBlock"] == rotated_at
    assert closed.name == "KeyClosed" and closed.args["validUntilBlock"] == rotated_at
    registry = stack.registry
    assert registry.view("keyValidAt", A, 0, before) is True
    assert registry.view("keyValidAt", A, 0, rotated_at) is False
    assert registry.view("keyValidAt", A, 4, rotated_at) is True
    assert registry.view("isIssuer", stack.account("a_rotated"), rotated_at) is True
    # Rotating a key that is closed already is refused.
    refusal = registry.refused(
        stack.governance, "rotateKey", A, 0, stack.key("y").public_key.to_bytes()
    )
    assert refusal.name == "InvalidWindow"


def test_set_key_roles(stack: TrustStack) -> None:
    receipt = stack.registry.send(stack.governance, "setKeyRoles", A, 2, Role.REVOKER | Role.ISSUER)
    (event,) = stack.registry.events(receipt)
    assert event.args == {"uscc": A, "keyId": 2, "roles": 3}
    assert stack.registry.view("isIssuer", stack.account("a_revoker"), stack.ledger.height)
    assert stack.registry.refused(stack.governance, "setKeyRoles", A, 2, 0).name == "InvalidRoles"
    assert stack.registry.refused(stack.governance, "setKeyRoles", A, 7, 1).name == "UnknownKey"
    refusal = stack.registry.refused(stack.key("a_revoker"), "setKeyRoles", A, 2, 1)
    assert refusal.name == "NotGovernance"


def test_freeze_and_unfreeze(stack: TrustStack) -> None:
    account = stack.account("a_issuer")
    receipt = stack.registry.send(stack.governance, "setFrozen", A, True)
    (event,) = stack.registry.events(receipt)
    assert event.args == {"uscc": A, "frozen": True}
    now = stack.ledger.height
    assert stack.registry.view("rolesAt", account, now) == (A, 0)
    assert stack.registry.view("isIssuer", account, now) is False
    assert stack.registry.view("departmentInfo", A)[1] is True
    # The key's own window is untouched by freezing.
    assert stack.registry.view("keyValidAt", A, 0, now) is True
    assert stack.registry.refused(stack.governance, "setFrozen", A, True).name == "FrozenUnchanged"
    stack.registry.send(stack.governance, "setFrozen", A, False)
    assert stack.registry.view("isIssuer", account, stack.ledger.height) is True
    assert stack.registry.refused(stack.governance, "setFrozen", C, True).name == (
        "UnknownDepartment"
    )
    assert stack.registry.refused(stack.key("b_issuer"), "setFrozen", A, True).name == (
        "NotGovernance"
    )


def test_transfer_governance(stack: TrustStack) -> None:
    successor = stack.account("new_governance")
    receipt = stack.registry.send(stack.governance, "transferGovernance", successor)
    (event,) = stack.registry.events(receipt)
    assert event.args == {"previous": stack.account("governance"), "next": successor}
    assert stack.registry.view("governance") == successor
    refusal = stack.registry.refused(stack.governance, "registerDepartment", C, "x")
    assert refusal.name == "NotGovernance"
    stack.registry.send(stack.key("new_governance"), "registerDepartment", C, "x")
    refusal = stack.registry.refused(stack.key("new_governance"), "transferGovernance", bytes(20))
    assert refusal.name == "ZeroAddress"
    refusal = stack.registry.refused(stack.governance, "transferGovernance", successor)
    assert refusal.name == "NotGovernance"


def test_unknown_ids_in_views(stack: TrustStack) -> None:
    assert stack.registry.view_error("departmentInfo", C).name == "UnknownDepartment"
    assert stack.registry.view_error("keysOf", C).name == "UnknownDepartment"
    error = stack.registry.view_error("keyValidAt", A, 99, 1)
    assert error.name == "UnknownKey" and error.args == (A, 99)


@pytest.mark.parametrize(
    "uscc", ["", "91350100M000100Y4", "91350100M000100Y433", "9135010０M000100Y43"]
)
def test_uscc_bytes_refuses_malformed_shapes(uscc: str) -> None:
    with pytest.raises(TrustEncodingError):
        uscc_bytes(uscc)


def test_account_of_refuses_compressed_keys() -> None:
    with pytest.raises(TrustEncodingError):
        account_of(b"\x02" + bytes(32))
