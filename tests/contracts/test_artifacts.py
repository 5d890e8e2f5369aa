"""The committed contract artifacts are exactly what the pinned solc produces from the sources,
and the typed loader reads them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from contracts.artifacts import artifact_names, load_artifact, parse_artifact
from contracts.errors import ArtifactError

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT_DIR = ROOT / "contracts" / "artifacts"
SOURCE_DIR = ROOT / "contracts" / "src"
COMPILE_SCRIPT = ROOT / "scripts" / "compile_contracts.js"


def _compiler_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ROOT / "node_modules" / "solc" / "package.json").is_file():
        return "node_modules/solc is missing: run `npm ci` at the repository root"
    return None


@pytest.mark.skipif(_compiler_missing() is not None, reason=str(_compiler_missing()))
def test_committed_artifacts_match_a_fresh_compile(tmp_path: Path) -> None:
    subprocess.run(
        ["node", str(COMPILE_SCRIPT), "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = {p.name: p.read_bytes() for p in sorted(tmp_path.glob("*.json"))}
    committed = {p.name: p.read_bytes() for p in sorted(ARTIFACT_DIR.glob("*.json"))}
    assert sorted(fresh) == sorted(committed)
    for name, content in fresh.items():
        assert committed[name] == content, f"{name} is stale: run node scripts/compile_contracts.js"


def test_every_source_has_artifacts() -> None:
    assert sorted(p.stem for p in SOURCE_DIR.glob("*.sol")) == list(artifact_names())


@pytest.mark.parametrize("name", ["Anchor", "Counter", "GmPrecompiles"])
def test_load_artifact(name: str) -> None:
    artifact = load_artifact(name)
    assert artifact.name == name
    assert artifact.bytecode and artifact.deployed_bytecode
    # The init code carries the runtime code (no immutables in these contracts).
    assert artifact.deployed_bytecode in artifact.bytecode
    assert any(entry.get("type") == "function" for entry in artifact.abi)


def test_anchor_abi_has_the_event_and_function() -> None:
    abi = load_artifact("Anchor").abi
    anchored = next(e for e in abi if e.get("type") == "event" and e["name"] == "Anchored")
    assert [(i["type"], i["indexed"]) for i in anchored["inputs"]] == [
        ("bytes32", True),
        ("address", True),
        ("uint256", False),
    ]
    anchor = next(e for e in abi if e.get("type") == "function" and e["name"] == "anchor")
    assert [i["type"] for i in anchor["inputs"]] == ["bytes32"]


@pytest.mark.parametrize("name", ["Missing", "../Anchor", ""])
def test_unknown_artifact_raises(name: str) -> None:
    with pytest.raises(ArtifactError):
        load_artifact(name)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"name": "Other", "abi": [], "bytecode": "0x", "deployedBytecode": "0x"}',
        '{"name": "X", "abi": {}, "bytecode": "0x", "deployedBytecode": "0x"}',
        '{"name": "X", "abi": [], "bytecode": "00", "deployedBytecode": "0x"}',
        '{"name": "X", "abi": [], "bytecode": "0x", "deployedBytecode": "0xzz"}',
    ],
)
def test_malformed_artifact_raises(text: str) -> None:
    with pytest.raises(ArtifactError):
        parse_artifact("X", text)
