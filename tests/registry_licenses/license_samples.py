"""Samples for the e-license domain tests, read from license_metadata.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "license_metadata.json").read_text(encoding="utf-8")
)
"""The metadata samples with their canonical JSON and salted hashes."""


def enterprise_metadata_object() -> dict[str, Any]:
    """A fresh copy of the enterprise sample as a JSON object (safe to modify)."""
    copy: dict[str, Any] = json.loads(json.dumps(SAMPLES["cases"][0]["metadata"]))
    return copy
