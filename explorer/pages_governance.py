"""A ValidatorGovernance proposal's page: who proposed which change, each vote with the
power voted so far, the execution and the height from which the new set rules, and the set
before and after that height."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from explorer import queries as db
from explorer.app import render
from explorer.pages import HEIGHT, names, not_found
from explorer.store import Store

router = APIRouter()


def members_at(changes: list[dict[str, Any]], height: int) -> dict[str, dict[str, Any]]:
    """The validator set ruling ``height``, from the set's changes (address -> change)."""
    members: dict[str, dict[str, Any]] = {}
    for change in changes:
        if int(change["effective_height"]) <= height:
            if int(change["power"]) == 0:
                members.pop(change["address"], None)
            else:
                members[change["address"]] = change
    return members


@router.get("/proposal/{ref}")
def proposal_page(request: Request, ref: str) -> Response:
    """A proposal's lifecycle by its id."""
    if not HEIGHT.match(ref):
        return not_found(request, ref)
    store: Store = request.app.state.store
    with store.read() as c:
        events = db.subject_events(c, "proposal", str(int(ref)), limit=200, oldest_first=True)
        changes = db.validator_changes(c)
    events = [e for e in events if e["contract"] == "ValidatorGovernance"]
    if not events:
        return not_found(request, ref)
    executed = next((e for e in events if e["name"] in ("Executed", "Rotated")), None)
    before: dict[str, dict[str, Any]] = {}
    after: dict[str, dict[str, Any]] = {}
    if executed is not None:
        effective = int(executed["args"]["effectiveHeight"])
        before = members_at(changes, effective - 1)
        after = members_at(changes, effective)
    addresses = set(before) | set(after)
    for event in events:
        for key in ("validator", "by", "oldKey", "newKey"):
            value = event["args"].get(key)
            if isinstance(value, str):
                addresses.add(value)
    return render(
        request,
        "proposal.html",
        proposal=int(ref),
        events=events,
        executed=executed,
        before=sorted(before.values(), key=lambda m: m["address"]),
        after=sorted(after.values(), key=lambda m: m["address"]),
        names=names(request, addresses),
    )
