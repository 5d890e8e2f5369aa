"""Chain pages: overview, blocks, block, transaction (with its Merkle proof), account,
validators, search and the language switch."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from chain.genesis import Genesis
from contracts.trust import license_id_hash
from explorer import queries as db
from explorer.app import render
from explorer.boundary import MAX_HEIGHT
from explorer.i18n import language
from explorer.node_feed import NodeFeed, NodeUnavailable
from explorer.proofs import ProofRefused, verified_transaction_proof
from explorer.store import Store

router = APIRouter()

HASH = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
HEIGHT = re.compile(r"^[0-9]{1,18}$")
MAX_QUERY = 200
"""Longest search text accepted."""
Height = Annotated[int, Query(ge=0, le=MAX_HEIGHT)]
"""A height in a query string (a larger number is refused 422, not sent to the database)."""


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def names(request: Request, addresses: set[str]) -> dict[str, dict[str, str | None]]:
    """Address -> {name, uscc}: a department's key, or a genesis validator."""
    genesis: Genesis = request.app.state.genesis
    found: dict[str, dict[str, str | None]] = {
        "0x" + bytes(v.address).hex(): {"name": v.name, "uscc": None}
        for v in genesis.validators
        if "0x" + bytes(v.address).hex() in addresses
    }
    with _store(request).read() as c:
        for address, label in db.labels(c, addresses).items():
            found[address] = {"name": label.name, "uscc": label.uscc}
    return found


def not_found(request: Request, what: str) -> Response:
    """The not-found page."""
    return render(request, "not_found.html", status_code=404, what=what)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness of the server."""
    return {"status": "ok"}


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/") -> Response:
    """Set the page language (``zh`` or ``en``) and go back."""
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie("lang", language(code), max_age=365 * 86400, samesite="strict")
    return response


@router.get("/")
def overview(request: Request) -> Response:
    """Height, recent blocks and transactions, transactions per minute, validators online."""
    with _store(request).read() as c:
        head = db.head(c)
        blocks = db.recent_blocks(c)
        txs = db.recent_transactions(c)
        per_minute = 0 if head is None else db.transactions_per_minute(c, head)
        online: list[dict[str, Any]] = []
        if head is not None and head["height"] > 0:
            first = max(1, int(head["height"]) - 99)
            online = db.participation(c, first, int(head["height"]))
    addresses = {b["proposer"] for b in blocks} | {x["sender"] for x in txs}
    addresses |= {v["validator"] for v in online}
    return render(
        request,
        "overview.html",
        head=head,
        blocks=blocks,
        txs=txs,
        per_minute=per_minute,
        online=[v for v in online if v["signed"] > 0],
        validators=online,
        names=names(request, addresses),
    )


@router.get("/blocks")
def blocks_page(request: Request, before: Height | None = None) -> Response:
    """Blocks, newest first, a page at a time."""
    with _store(request).read() as c:
        blocks = db.recent_blocks(c, before=before, limit=db.PAGE_ROWS)
    return render(
        request,
        "blocks.html",
        blocks=blocks,
        names=names(request, {b["proposer"] for b in blocks}),
        next_before=blocks[-1]["height"] if len(blocks) == db.PAGE_ROWS else None,
    )


@router.get("/block/{ref}")
def block_page(request: Request, ref: str) -> Response:
    """A block by height or hash: proposer, transactions, size, certificate signers with
    their names and the voting power reached."""
    with _store(request).read() as c:
        height = int(ref) if HEIGHT.match(ref) else db.block_height_by_hash(c, ref.lower())
        found = None if height is None else db.block(c, height)
        if found is None or height is None:
            return not_found(request, ref)
        txs = db.block_transactions(c, height)
        signers = db.signers(c, height)
    addresses = {found["proposer"]} | {s["validator"] for s in signers} | {x["sender"] for x in txs}
    quorum = int(found["total_power"]) * 2 // 3 + 1
    return render(
        request,
        "block.html",
        block=found,
        txs=txs,
        signers=signers,
        quorum=quorum,
        names=names(request, addresses),
    )


@router.get("/tx/{tx_hash}")
def transaction_page(request: Request, tx_hash: str) -> Response:
    """A transaction: decoded call and events, status, gas, the signer's department."""
    tx_hash = tx_hash.lower()
    with _store(request).read() as c:
        found = db.transaction(c, tx_hash)
        if found is None:
            return not_found(request, tx_hash)
        events = db.events_of_transaction(c, tx_hash)
    addresses = {found["sender"]} | ({found["to_address"]} if found["to_address"] else set())
    return render(
        request,
        "transaction.html",
        tx=found,
        events=events,
        names=names(request, addresses),
    )


@router.get("/tx/{tx_hash}/proof")
def transaction_proof(request: Request, tx_hash: str) -> Response:
    """The transaction's and its receipt's Merkle proofs from the node, checked against the
    header and certificate the explorer indexed before they are shown."""
    if not HASH.match(tx_hash):
        return JSONResponse({"error": "not a transaction hash"}, status_code=400)
    feed = NodeFeed(request.app.state.settings.node_url)
    try:
        with _store(request).read() as c:
            proof = verified_transaction_proof(c, feed, tx_hash.lower())
    except NodeUnavailable as exc:
        return JSONResponse({"error": f"node unavailable: {exc}"}, status_code=503)
    except ProofRefused as exc:
        return JSONResponse({"error": str(exc)}, status_code=409)
    finally:
        feed.close()
    if proof is None:
        return JSONResponse({"error": "unknown transaction"}, status_code=404)
    return JSONResponse(proof)


@router.get("/address/{address}")
def account_page(request: Request, address: str) -> Response:
    """An account: its department if it is a department's key, and what it signed."""
    address = address.lower()
    if not ADDRESS.match(address):
        return not_found(request, address)
    with _store(request).read() as c:
        label = db.department_of_account(c, address)
        if label is not None and label.uscc is not None:
            return RedirectResponse(f"/department/{label.uscc}", status_code=303)
        txs = db.account_transactions(c, address)
        events = db.subject_events(c, "account", address)
        counts = db.subject_counts(c, "account", address)
    return render(
        request,
        "account.html",
        address=address,
        txs=txs,
        events=events,
        counts=counts,
        names=names(request, {address}),
    )


@router.get("/validators")
def validators_page(
    request: Request,
    height: Height | None = None,
    first: Height | None = None,
    last: Height | None = None,
) -> Response:
    """The set at any height, the governance timeline, and signing participation over a
    range of heights (default: the last 1,000)."""
    with _store(request).read() as c:
        head = db.head(c)
        top = 0 if head is None else int(head["height"])
        at = top if height is None else max(0, min(height, top))
        changes = db.validator_changes(c)
        last_height = top if last is None else max(1, min(last, top))
        first_height = max(1, last_height - 999) if first is None else max(1, first)
        participation = db.participation(c, first_height, last_height) if top > 0 else []
        timeline = db.contract_events(c, ("ValidatorGovernance",))
    members: dict[str, dict[str, Any]] = {}
    for change in changes:
        if int(change["effective_height"]) <= at:
            if int(change["power"]) == 0:
                members.pop(change["address"], None)
            else:
                members[change["address"]] = change
    addresses = set(members) | {p["validator"] for p in participation}
    return render(
        request,
        "validators.html",
        at=at,
        members=sorted(members.values(), key=lambda m: m["address"]),
        changes=changes,
        participation=participation,
        first=first_height,
        last=last_height,
        timeline=timeline,
        names=names(request, addresses),
    )


@router.get("/search")
def search(request: Request, q: str = "") -> Response:
    """One box: height, block or transaction hash, address, USCC, batch root or leaf hash,
    license identifier or its hash, and at the registry a credit decision number or an
    archival code (档号)."""
    text = q.strip()[:MAX_QUERY]
    target = _search_target(request, text)
    if target is None:
        return not_found(request, text)
    return RedirectResponse(target, status_code=303)


def _search_target(request: Request, text: str) -> str | None:
    if not text:
        return None
    if HEIGHT.match(text):
        return f"/block/{int(text)}"
    if ADDRESS.match(text):
        return f"/address/{text.lower()}"
    if USCC.match(text.upper()):
        return f"/department/{text.upper()}"
    if text.startswith("1.2.156."):
        return f"/license/0x{license_id_hash(text).hex()}"
    if HASH.match(text):
        value = "0x" + text.lower().removeprefix("0x")
        with _store(request).read() as c:
            kinds = db.hash_kinds(c, value)
        pages = {"tx": "tx", "block": "block", "batch": "record", "leaf": "record"}
        for kind in db.HASH_KINDS:
            if kind in kinds:
                return f"/{pages.get(kind, kind)}/{value}"
        return None
    from explorer.pages_trails import registry_search_target

    return registry_search_target(request, text)
