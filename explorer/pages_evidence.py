"""Evidence downloads: ``/evidence/{tx|record|license}/{ref}`` answers the zip of
:mod:`explorer.evidence_export`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from chain.genesis import Genesis
from chain.merkle import leaf_hash
from explorer import queries as db
from explorer.evidence_export import ExportRefused, export_zip
from explorer.node_feed import NodeFeed, NodeUnavailable
from explorer.pages import HASH, not_found
from explorer.proofs import ProofRefused
from explorer.store import Store
from sdk.pdf_report import PdfReportError

router = APIRouter()

KINDS = {"tx": "transaction", "record": "record", "license": "license"}


@router.get("/evidence/{kind}/{ref}")
def evidence(request: Request, kind: str, ref: str) -> Response:
    """The evidence zip of a transaction, a record (batch root, leaf or leaf hash) or a
    license (hash of its identifier)."""
    if kind not in KINDS or not HASH.match(ref):
        return not_found(request, ref)
    value = "0x" + ref.lower().removeprefix("0x")
    store: Store = request.app.state.store
    genesis: Genesis = request.app.state.genesis
    feed = NodeFeed(request.app.state.settings.node_url)
    try:
        with store.read() as c:
            if kind == "record" and not (
                db.subject_exists(c, "batch", value) or db.subject_exists(c, "leaf", value)
            ):
                value = "0x" + leaf_hash(bytes.fromhex(value[2:])).hex()
            data = export_zip(
                c,
                feed,
                chain_id=genesis.chain_id,
                kind=KINDS[kind],
                ref=value,
                auditor=request.state.auditor,
                now=datetime.now(UTC),
            )
    except ExportRefused:
        return not_found(request, ref)
    except (ProofRefused, NodeUnavailable, PdfReportError) as exc:
        return Response(f"evidence unavailable: {exc}", status_code=503, media_type="text/plain")
    finally:
        feed.close()
    name = f"lianxin-evidence-{kind}-{value[2:14]}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
