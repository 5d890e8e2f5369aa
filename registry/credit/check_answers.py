"""Whole answers of ``check`` kept per registry process, for a check answered on the server's
event loop (:mod:`registry.routers.credit_checks`): the bytes of an answer but its time,
under the subject's key, the credit version the check read, the activity and the day.

An answer is kept only once it was answered from what is kept under that version alone
(the subject's entries, :mod:`registry.credit.check_entries`, and its reasons' latest
anchored events, :mod:`registry.credit.proofs`), so under the same version it is the answer
that reading would give again: every change a check can see makes a credit event (a new
version), the measures catalogue is fixed per process, and the domain's check reads the day
and the activity, not the time. Its proofs carry bundle JSON from the registry's verify
caches, and a kept answer is served only while those caches hold the very bundle objects it
was written from, as for the proofs' kept texts (:mod:`registry.credit.check_proofs`); any
other answer is made again. So a kept answer costs a lookup, the time written in and the
check's log row, instead of the domain's check, the proofs' lookups and the answer's JSON.

What differs between two checks with the same key is the time (``checked_at``) and who
asked (in the log row alone); the bytes are those
:func:`registry.routers.credit_checks.check_answer_json` makes whole."""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.credit.check_proofs import json_text
from registry.credit.proofs import AnchoredEvent
from registry.record_bundles import VerifyCaches

__all__ = ["KEPT_ANSWER_BYTES", "AnswerKey", "KeptAnswer", "KeptAnswers", "proof_bundles"]

KEPT_ANSWER_BYTES = 32 * 2**20
"""Most bytes of kept answers per registry process (an answer with 20 reasons and their
proofs is about 100 KB; most have none)."""

AnswerKey = tuple[str, int, str, datetime.date]
"""(the subject's key, the credit version, the activity's name, the day checked for)."""


@dataclass(frozen=True)
class KeptAnswer:
    """An answer's bytes around its time, with what they were written from."""

    decision: str
    head: bytes
    """Up to the time's value: ``{"decision":…,"checked_at":``."""
    tail: bytes
    """After it: ``,"reasons":…,"proofs":{…}}``."""
    bundles: tuple[tuple[str, Any], ...]
    """(notarized record id, the bundle JSON object its proof carries) of every proof."""

    def body(self, checked_at: datetime.datetime) -> bytes:
        """The answer's bytes with the time ``checked_at``."""
        return self.head + json_text(checked_at.isoformat()).encode("ascii") + self.tail

    def current(self, caches: VerifyCaches) -> bool:
        """Whether ``caches`` still hold every bundle this answer's proofs carry, the very
        same objects (and their bundles)."""
        for notary_id, bundle in self.bundles:
            if caches.bundle_json.get(notary_id) is not bundle:
                return False
            if caches.bundles.get(notary_id) is None:
                return False
        return True


def proof_bundles(
    bundles: Mapping[str, AnchoredEvent | None],
) -> tuple[tuple[str, Any], ...] | None:
    """(notarized record id, bundle object) of each proof of ``bundles``; None if a proof is
    missing or not of the shape kept (an answer with such a proof is not kept)."""
    found: list[tuple[str, Any]] = []
    for proof in bundles.values():
        if proof is None:
            return None
        notary_id = proof.get("notary_record_id")
        bundle = proof.get("bundle")
        if not isinstance(notary_id, str) or not isinstance(bundle, dict):
            return None
        found.append((notary_id, bundle))
    return tuple(found)


class KeptAnswers:
    """:data:`AnswerKey` → :class:`KeptAnswer`, least recently used first out, at most
    ``max_bytes`` of answers in all."""

    def __init__(self, max_bytes: int = KEPT_ANSWER_BYTES) -> None:
        """Keep at most ``max_bytes`` of answers' bytes."""
        self.max_bytes = max_bytes
        self._kept: OrderedDict[AnswerKey, KeptAnswer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: AnswerKey, caches: VerifyCaches) -> KeptAnswer | None:
        """The answer kept for ``key`` if its proofs' bundles are still those of
        ``caches``; None otherwise."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            self._kept.move_to_end(key)
        return kept if kept.current(caches) else None

    def put(self, key: AnswerKey, answer: KeptAnswer) -> None:
        """Keep ``answer`` for ``key`` (not if it alone is over a quarter of the bytes)."""
        size = len(answer.head) + len(answer.tail)
        if size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= len(old.head) + len(old.tail)
            self._kept[key] = answer
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= len(dropped.head) + len(dropped.tail)

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)
