"""Typed access to the committed compiled contracts in ``contracts/artifacts/*.json``.

The artifacts are produced by ``node scripts/compile_contracts.js`` (solc pinned in
``package.json``, fixed EVM version and optimizer settings); a test recompiles the sources and
checks that the committed files are byte-for-byte what the compiler produces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from contracts.errors import ArtifactError

ARTIFACT_PACKAGE = "contracts"
ARTIFACT_DIR = "artifacts"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    """The contract name, as declared in its Solidity source."""
    abi: tuple[dict[str, Any], ...]
    """The contract ABI: one JSON object per function, event, error or constructor."""
    bytecode: bytes
    """Creation (init) code: send it as the data of a contract-creating transaction."""
    deployed_bytecode: bytes
    """Runtime code, as stored at the contract's address after creation."""


def _hex_bytes(name: str, field: str, value: object) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ArtifactError(f"{name}: {field} must be a 0x-prefixed hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ArtifactError(f"{name}: {field} is not valid hex") from exc


def parse_artifact(name: str, text: str) -> Artifact:
    """Parse the JSON text of an artifact; raises ArtifactError if it is malformed or its
    ``name`` field is not ``name``."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{name}: not valid JSON") from exc
    if not isinstance(raw, dict):
        raise ArtifactError(f"{name}: expected a JSON object")
    if raw.get("name") != name:
        raise ArtifactError(f"{name}: artifact names contract {raw.get('name')!r}")
    abi = raw.get("abi")
    if not isinstance(abi, list) or not all(isinstance(entry, dict) for entry in abi):
        raise ArtifactError(f"{name}: abi must be a list of objects")
    return Artifact(
        name=name,
        abi=tuple(abi),
        bytecode=_hex_bytes(name, "bytecode", raw.get("bytecode")),
        deployed_bytecode=_hex_bytes(name, "deployedBytecode", raw.get("deployedBytecode")),
    )


def artifact_names() -> tuple[str, ...]:
    """Names of every committed artifact, sorted."""
    directory = resources.files(ARTIFACT_PACKAGE).joinpath(ARTIFACT_DIR)
    return tuple(
        sorted(
            entry.name.removesuffix(".json")
            for entry in directory.iterdir()
            if entry.name.endswith(".json")
        )
    )


@cache
def load_artifact(name: str) -> Artifact:
    """Load the committed artifact of contract ``name`` (e.g. ``"Anchor"``); raises
    ArtifactError if there is none or it is malformed."""
    if not name.isidentifier():
        raise ArtifactError(f"not a contract name: {name!r}")
    resource = resources.files(ARTIFACT_PACKAGE).joinpath(ARTIFACT_DIR, f"{name}.json")
    if not resource.is_file():
        raise ArtifactError(f"no compiled artifact for contract {name!r}")
    return parse_artifact(name, resource.read_text(encoding="utf-8"))
