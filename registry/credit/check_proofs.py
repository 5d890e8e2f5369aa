"""The proofs of a check's answer as JSON text, each record's written once per registry
process and joined into the answer (:func:`registry.routers.credit_checks.check_answer_json`).

A proof is a record's latest anchored event with its bundle's JSON, and that JSON comes from
the registry's verify caches (:func:`registry.record_bundles.bundle_json`): one object per
anchored record, shared and never modified, since anchoring is final. So the text of a proof
is kept with the very bundle object it was written from, and served again only while the
proof names the same event and carries that same object; any other proof (a newer event, a
bundle built again) is written afresh. Writing the proofs was the largest part of answering
a check (its bundles are most of the answer's bytes).

The text is what ``json.dumps`` writes of the proof with the options of FastAPI's
``JSONResponse``, and JSON's objects nest, so the answer joined of kept texts is the same
bytes as the answer written whole."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from registry.caches import LruCache
from registry.credit.proofs import AnchoredEvent

__all__ = ["KEPT_PROOFS", "EncodedProofs", "json_text"]

KEPT_PROOFS = 16_384
"""Most records' proof texts kept per registry process (a few kilobytes each)."""


def json_text(value: Any) -> str:
    """``value`` as JSON text, as FastAPI's ``JSONResponse`` writes it (before UTF-8)."""
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    )


@dataclass(frozen=True)
class _KeptProof:
    """A proof's text with what it was written from."""

    event: tuple[Any, ...]
    """The event's fields other than the bundle, in the proof's order."""
    bundle: Any
    """The bundle's JSON object itself (held, so that it is compared by identity)."""
    text: str


class EncodedProofs:
    """Record id → its proof's JSON text, kept while the proof carries the same bundle
    object and names the same event."""

    def __init__(self, capacity: int = KEPT_PROOFS) -> None:
        """Keep the texts of at most ``capacity`` records."""
        self._kept: LruCache[str, _KeptProof] = LruCache(capacity)

    def proof_text(self, record_id: str, proof: AnchoredEvent | None) -> str:
        """The JSON text of ``proof`` (``null`` for None), kept or written now."""
        if proof is None:
            return "null"
        bundle = proof.get("bundle")
        if not isinstance(bundle, dict) or list(proof) != _PROOF_FIELDS:
            # Not the shape kept here: written whole, as it is.
            return json_text(proof)
        event = tuple(proof[name] for name in _EVENT_FIELDS)
        kept = self._kept.get(record_id)
        if kept is not None and kept.bundle is bundle and kept.event == event:
            return kept.text
        text = json_text(proof)
        self._kept.put(record_id, _KeptProof(event, bundle, text))
        return text

    def proofs_text(self, bundles: dict[str, AnchoredEvent | None]) -> str:
        """The JSON text of the object ``bundles`` (record id → proof), in its order."""
        return (
            "{"
            + ",".join(
                json_text(record_id) + ":" + self.proof_text(record_id, proof)
                for record_id, proof in bundles.items()
            )
            + "}"
        )

    def __len__(self) -> int:
        return len(self._kept)


_EVENT_FIELDS = ["event_id", "kind", "version", "notary_record_id"]
_PROOF_FIELDS = [*_EVENT_FIELDS, "bundle"]
