"""Domain pages: departments, the permissions timeline, and the lifecycles of a notarized
record and of an e-license, each read from the chain's decoded events."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response

from chain.merkle import leaf_hash
from contracts.permissions import role_names
from contracts.trust import OPEN_ENDED, Role
from explorer import queries as db
from explorer.app import render
from explorer.pages import HASH, USCC, Height, names, not_found
from explorer.store import Store

router = APIRouter()

PERMISSION_CONTRACTS = ("Permissions",)
KEY_EVENTS = (
    "KeyAdded",
    "KeyClosed",
    "KeyRolesChanged",
    "DepartmentFrozen",
    "DepartmentRegistered",
)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def key_roles(bits: int) -> list[str]:
    """IssuerRegistry role bits as names."""
    return [role.name or str(role.value) for role in Role if bits & role.value]


def _hash(value: str) -> str | None:
    return "0x" + value.lower().removeprefix("0x") if HASH.match(value) else None


def _addresses(events: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for event in events:
        for key in ("by", "account", "issuer", "validator"):
            value = event["args"].get(key)
            if isinstance(value, str) and value.startswith("0x"):
                found.add(value)
    return found


@router.get("/departments")
def departments_page(request: Request) -> Response:
    """Every department IssuerRegistry knows."""
    with _store(request).read() as c:
        found = db.departments(c)
    return render(request, "departments.html", departments=found)


@router.get("/department/{uscc}")
def department_page(request: Request, uscc: str) -> Response:
    """A department: its keys and their validity windows, its roles over time, and what it
    anchored and issued, with counts."""
    uscc = uscc.upper()
    if not USCC.match(uscc):
        return not_found(request, uscc)
    with _store(request).read() as c:
        found = db.department(c, uscc)
        if found is None:
            return not_found(request, uscc)
        counts = db.subject_counts(c, "uscc", uscc)
        history = db.subject_events(c, "uscc", uscc, limit=db.PAGE_ROWS)
        key_txs = {
            k["account"]: db.subject_counts(c, "account", k["account"]).get("tx", 0)
            for k in found["keys"]
        }
        permission_events = [
            e
            for k in found["keys"]
            for e in db.subject_events(c, "account", k["account"], limit=50)
            if e["contract"] == "Permissions"
        ]
    roles_over_time = sorted(
        [e for e in history if e["name"] in KEY_EVENTS] + permission_events,
        key=lambda e: (e["height"], e["id"]),
    )
    activity = [e for e in history if e["name"] not in KEY_EVENTS]
    for key in found["keys"]:
        key["role_names"] = key_roles(int(key["roles"]))
        key["open_ended"] = key["valid_until"] == str(OPEN_ENDED)
        key["tx_count"] = key_txs.get(key["account"], 0)
    return render(
        request,
        "department.html",
        department=found,
        counts=counts,
        roles_over_time=roles_over_time,
        activity=activity,
        names=names(request, _addresses(history)),
    )


@router.get("/permissions")
def permissions_page(request: Request, before: Height | None = None) -> Response:
    """Grants, revocations and freezes: Permissions' role changes and freezes, and the
    department keys' roles, windows and freezes in IssuerRegistry."""
    with _store(request).read() as c:
        events = db.contract_events(c, PERMISSION_CONTRACTS, before=before)
        keys = [
            e
            for e in db.contract_events(c, ("IssuerRegistry",), before=before)
            if e["name"] in KEY_EVENTS or e["name"] == "GovernanceTransferred"
        ]
    merged = sorted(events + keys, key=lambda e: (e["height"], e["id"]), reverse=True)[
        : db.PAGE_ROWS
    ]
    for event in merged:
        if event["name"] == "RolesChanged":
            event["role_names"] = sorted(role_names(int(event["args"]["roles"])))
    return render(
        request,
        "permissions.html",
        events=merged,
        names=names(request, _addresses(merged)),
        next_before=merged[-1]["height"] if len(merged) == db.PAGE_ROWS else None,
    )


@router.get("/record/{ref}")
def record_page(request: Request, ref: str) -> Response:
    """A notarized record's lifecycle by its batch root or its leaf hash: the anchoring, and
    any revocation of the leaf or the whole batch."""
    value = _hash(ref)
    if value is None:
        return not_found(request, ref)
    with _store(request).read() as c:
        leaf_events = db.subject_events(c, "leaf", value, oldest_first=True)
        if not leaf_events and not db.subject_exists(c, "batch", value):
            # A record's leaf as the registry knows it; the chain's events name its leaf hash.
            value = "0x" + leaf_hash(bytes.fromhex(value[2:])).hex()
            leaf_events = db.subject_events(c, "leaf", value, oldest_first=True)
        roots = {value} | {str(e["args"]["root"]) for e in leaf_events}
        batch_events = [
            e
            for root in sorted(roots)
            for e in db.subject_events(c, "batch", root, oldest_first=True)
        ]
    events = sorted(
        {e["id"]: e for e in leaf_events + batch_events}.values(),
        key=lambda e: (e["height"], e["id"]),
    )
    if not events:
        return not_found(request, ref)
    anchored = next((e for e in events if e["name"] == "BatchAnchored"), None)
    revoked = any(e["name"] == "BatchRevoked" for e in events) or (
        value != (anchored or {}).get("args", {}).get("root")
        and any(e["name"] == "LeafRevoked" for e in leaf_events)
    )
    return render(
        request,
        "record.html",
        ref=value,
        events=events,
        anchored=anchored,
        revoked=revoked,
        names=names(request, _addresses(events)),
    )


LICENSE_ID = re.compile(r"^1\.2\.156\.[0-9A-Za-z.]+$")


@router.get("/license/{ref}")
def license_page(request: Request, ref: str) -> Response:
    """An e-license's lifecycle (issue, suspend, resume, change, revoke, expire) by the hash
    of its identifier, following changes to predecessors and successors."""
    value = _hash(ref)
    if value is None:
        return not_found(request, ref)
    seen: list[str] = []
    events: dict[int, dict[str, Any]] = {}
    pending = [value]
    with _store(request).read() as c:
        while pending and len(seen) < 20:
            current = pending.pop()
            if current in seen:
                continue
            seen.append(current)
            for event in db.subject_events(c, "license", current, limit=200, oldest_first=True):
                events[event["id"]] = event
                if event["name"] == "LicenseChanged":
                    pending.extend(str(event["args"][k]) for k in ("oldId", "newId"))
    ordered = sorted(events.values(), key=lambda e: (e["height"], e["id"]))
    if not ordered:
        return not_found(request, ref)
    status: dict[str, int] = {}
    for event in ordered:
        if event["name"] == "StatusChanged":
            status[str(event["args"]["id"])] = int(event["args"]["status"])
    return render(
        request,
        "license.html",
        ref=value,
        versions=seen,
        status=status,
        events=ordered,
        names=names(request, _addresses(ordered)),
    )
