"""``lianxin registry``: named as such in its help, working on the registry of the chain
directory (``./devchain`` unless ``--dir`` names another), and creating nothing when it
refuses. Real ``lianxin`` processes; no node is needed for client administration."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_harness import run_cli

from chain.crypto import PrivateKey

pytestmark = pytest.mark.e2e

DEPARTMENT_USCC = "11350102MB00010016"
"""A well-formed USCC."""


@pytest.fixture
def public_key_pem(tmp_path: Path) -> Path:
    path = tmp_path / "client.pub.pem"
    path.write_bytes(PrivateKey.generate().public_key.to_pem())
    return path


def entries(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


def test_help_names_the_command_as_typed() -> None:
    result = run_cli("registry", "--help")
    assert result.code == 0, result
    assert "Usage: lianxin registry" in result.stdout
    assert "registry.cli" not in result.stdout
    clients = run_cli("registry", "clients", "add", "--help")
    assert "Usage: lianxin registry clients add" in clients.stdout, clients


def test_a_refused_client_creates_nothing(tmp_path: Path, public_key_pem: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    before = entries(work)
    bad_uscc = run_cli(
        "registry", "clients", "add", "--name", "x", "--uscc", "91350100M000100Y4X",
        "--public-key-pem", str(public_key_pem), cwd=work,
    )  # fmt: skip
    assert bad_uscc.code == 2, bad_uscc
    assert "USCC" in bad_uscc.stderr
    missing_key = run_cli(
        "registry", "clients", "add", "--name", "x", "--uscc", DEPARTMENT_USCC,
        "--public-key-pem", str(work / "absent.pem"), cwd=work,
    )  # fmt: skip
    assert missing_key.code == 2, missing_key
    half_governance = run_cli(
        "registry", "clients", "add", "--name", "x", "--uscc", DEPARTMENT_USCC,
        "--public-key-pem", str(public_key_pem), "--governance-keystore", "admin.json", cwd=work,
    )  # fmt: skip
    assert half_governance.code == 2, half_governance
    assert "--governance-password-file" in half_governance.stderr
    # Well-formed, but there is no chain (and so no registry) here.
    no_registry = run_cli(
        "registry", "clients", "add", "--name", "x", "--uscc", DEPARTMENT_USCC,
        "--public-key-pem", str(public_key_pem), cwd=work,
    )  # fmt: skip
    assert no_registry.code == 2, no_registry
    assert "no registry database" in no_registry.stderr
    assert str(Path("devchain") / "registry") in no_registry.stderr
    assert entries(work) == before


def test_clients_go_into_the_chain_directory_registry(tmp_path: Path, public_key_pem: Path) -> None:
    work = tmp_path / "work"
    assert run_cli("init", str(work / "devchain"), "--dev").code == 0
    # "other" holds no chain: --dir still names where its registry data lives.
    for directory in ("devchain", "other"):
        migrated = run_cli("registry", "migrate", "--dir", directory, cwd=work)
        assert migrated.code == 0, migrated
        assert (work / directory / "registry" / "registry.db").is_file()
    added = run_cli(
        "registry", "clients", "add", "--name", "某区市场监督管理局", "--uscc", DEPARTMENT_USCC,
        "--public-key-pem", str(public_key_pem), "--issuer-code", "350102", cwd=work,
    )  # fmt: skip
    assert added.code == 0, added
    client_id = added.json()["id"]
    listed = run_cli("registry", "clients", "list", cwd=work)
    assert [client["id"] for client in listed.json()] == [client_id]
    assert listed.json()[0]["name"] == "某区市场监督管理局"
    assert listed.json()[0]["issuer_codes"] == sorted(["350102", DEPARTMENT_USCC])
    elsewhere = run_cli("registry", "clients", "list", "--dir", "other", cwd=work)
    assert elsewhere.json() == []
    assert not (work / "registry-data").exists()
