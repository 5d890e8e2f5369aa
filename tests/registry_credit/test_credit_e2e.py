"""End to end on real processes: a dev chain node and the registry (uvicorn, its own start
command); a department imports a 双公示 CSV with the CLI (``lianxin credit import``, which
validates, uploads and signs the events), and the record's proof bundle, fetched with the
SDK over HTTP, verifies offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from credit_harness import ANCHOR_TIMEOUT_S, penalties, penalty_file, wait_for
from registry_harness import (
    TrustChain,
    free_port,
    new_client,
    registry_environment,
    registry_settings,
)
from test_license_e2e import registry_process

from registry.db import Database
from sdk.bundle import ProofBundle, verify_bundle
from sdk.chain_reader import ChainReader
from sdk.credit_client import CreditClient

ENTERPRISE = "91350100M000100Y43"


def test_a_department_imports_with_the_cli_and_the_record_proves_itself_offline(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    client, key = new_client(db, ("credit", "verify"))
    db.close()
    key_file = tmp_path / "department.pem"
    key_file.write_bytes(key.to_pem())
    key_file.chmod(0o600)
    table = tmp_path / "penalties.csv"
    table.write_bytes(penalty_file(penalties(3)))
    port = free_port()
    with registry_process(registry_environment(settings), port, tmp_path / "registry.log") as base:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "lianxin"), "credit", "import", str(table),
             "--registry-url", base, "--client-id", client.id, "--key-file", str(key_file),
             "--json"],
            capture_output=True, text=True, timeout=ANCHOR_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["published"], summary["signed_events"]) == (3, 4)  # and the rule set

        with CreditClient(base, client.id, key) as sdk:
            # Decided in 2023: off public display today, on file for authorised readers.
            assert sdk.public_profile(ENTERPRISE)["records"] == []
            records = sdk.authority_profile(ENTERPRISE)["records"]
            assert len(records) == 3
            record = records[0]["current"]
            proof = wait_for(lambda: sdk.record_proof(record["id"])["proof"])
    bundle = ProofBundle.from_json(proof["bundle"])
    assert bytes(bundle.record.digest).hex() == record["fields_root"]
    with ChainReader(trust_chain.chain.url) as reader:
        verdict = verify_bundle(bundle, reader.validators(), chain_id=reader.chain_id())
    assert verdict.valid, verdict
