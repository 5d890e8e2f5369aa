"""Readers for tests/vectors/sm.json, shared by the crypto tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "sm.json"


def load_vectors() -> dict[str, Any]:
    """The published SM2/SM3/SM4 examples."""
    with VECTORS_PATH.open(encoding="utf-8") as handle:
        vectors: dict[str, Any] = json.load(handle)
    return vectors


@dataclass(frozen=True)
class Sm2Vector:
    """One published SM2 signature example, decoded from hex."""

    private_scalar: int
    public_key: bytes
    signer_id: bytes
    message: bytes
    za: bytes
    e: bytes
    k: int
    r: int
    s: int


def load_sm2_vector(vectors: dict[str, Any], index: int = 0) -> Sm2Vector:
    """Return the ``index``-th SM2 signature example."""
    case = vectors["sm2_sign"][index]
    return Sm2Vector(
        private_scalar=int(case["private_key"], 16),
        public_key=bytes.fromhex("04" + case["public_x"] + case["public_y"]),
        signer_id=case["user_id_ascii"].encode(),
        message=case["message_ascii"].encode(),
        za=bytes.fromhex(case["za"]),
        e=bytes.fromhex(case["e"]),
        k=int(case["k"], 16),
        r=int(case["r"], 16),
        s=int(case["s"], 16),
    )
