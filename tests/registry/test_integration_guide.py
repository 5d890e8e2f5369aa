"""docs/registry-integration.md runs as written, with no tool but ``openssl``, ``curl`` and
``date`` on the PATH (and bash, whose ``printf`` is a builtin): its ``sh`` blocks make a key
pair, sign requests and send them to a live registry process, whose operator registers the
key in between as the guide says. Its sign-bytes function reproduces the registry's worked
example byte for byte, and the signatures ``openssl`` makes are accepted: a record
notarized with a commitment computed and signed by ``openssl`` is accepted, its commitment
is the SDK's, and once anchored its bundle names the department."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_USCC,
    TrustChain,
    free_port,
    registry_environment,
    registry_settings,
)
from test_license_e2e import registry_process

from chain.crypto import PrivateKey
from registry.chain_gateway import ChainGateway
from registry.cli import add_client
from registry.db import Database
from registry.department_keys import register_department_key
from registry.openapi import signing_example
from sdk.account import Sm2Account
from sdk.bundle import salted_metadata_hash, verify_bundle
from sdk.chain_reader import ChainReader
from sdk.commitments import department_record_commitment
from sdk.trust import TrustClient

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "registry-integration.md"
FENCED_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
TOOLS = ("openssl", "curl", "date")
SCRIPT_TIMEOUT_S = 60
ANCHOR_TIMEOUT_S = 60.0


def shell_blocks() -> list[str]:
    """The guide's ``sh`` blocks, in order: key pair, signing functions, notarize, verify,
    read."""
    blocks = [body for kind, body in FENCED_BLOCK.findall(GUIDE.read_text()) if kind == "sh"]
    assert len(blocks) == 5, blocks
    return blocks


def run_shell(script: str, workdir: Path, tools: Path, **variables: str) -> str:
    """Run ``script`` with bash in ``workdir``, nothing but ``tools`` on the PATH."""
    completed = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-euo", "pipefail", "-c", script],
        cwd=workdir,
        env={"PATH": str(tools), "HOME": str(workdir), "LC_ALL": "C.UTF-8", **variables},
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def only_the_tools(directory: Path) -> Path:
    directory.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed"
        os.symlink(found, directory / tool)
    return directory


def answers(output: str) -> list[tuple[int, str]]:
    """(status, body) of each request ``lianxin_request`` printed."""
    lines = output.strip().split("\n")
    assert len(lines) % 2 == 0, output
    return [(int(lines[i + 1]), lines[i]) for i in range(0, len(lines), 2)]


def test_the_guide_runs_with_openssl_and_curl_only(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    keys, functions, notarize, verify, read = shell_blocks()
    tools = only_the_tools(tmp_path / "bin")
    workdir = tmp_path / "department"
    workdir.mkdir()
    run_shell(keys, workdir, tools)

    # The guide's sign bytes are the registry's: the worked example, byte for byte.
    example = signing_example()
    (workdir / "example-body.json").write_text(example["body"])
    run_shell(
        functions + f"\nlianxin_sign_bytes {example['method']} {example['path']} example-body.json"
        f" {example['timestamp']} {example['nonce']}",
        workdir,
        tools,
        CLIENT_ID=example["client_id"],
    )
    assert (workdir / "sign-bytes.bin").read_bytes().hex() == example["sign_bytes_hex"]

    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    db = Database.open(settings)
    public_pem = (workdir / "client-public.pem").read_bytes()
    client = add_client(  # the operator's step, with the key registered on chain
        db,
        name=CLIENT_DEPARTMENT_NAME,
        uscc=CLIENT_USCC,
        public_key_pem=public_pem,
        roles=["verify", "notarize"],
    )
    gateway = ChainGateway(settings, db)
    register_department_key(
        gateway,
        Sm2Account.from_keystore(trust_chain.chain.keystore("admin"), trust_chain.chain.password),
        uscc=CLIENT_USCC,
        department_name=CLIENT_DEPARTMENT_NAME,
        public_key=bytes.fromhex(client.public_key),
    )
    gateway.close()
    db.close()
    with registry_process(
        registry_environment(settings), free_port(), tmp_path / "registry.log"
    ) as base:
        output = run_shell(
            "\n".join([functions, notarize, verify, read]),
            workdir,
            tools,
            REGISTRY=base,
            CLIENT_ID=client.id,
            CLIENT_KEY="client-key.pem",
        )
        (notarized_status, notarized), (verified_status, verified), (read_status, record) = answers(
            output
        )
        assert notarized_status == 202, notarized
        accepted = json.loads(notarized)
        sent = json.loads((workdir / "notarize.json").read_text())
        # The commitment openssl signed is the SDK's over the same record.
        expected = department_record_commitment(
            bytes.fromhex(client.public_key),
            bytes.fromhex(sent["digest"]),
            salted_metadata_hash(sent["metadata"], bytes.fromhex(sent["metadata_salt"])),
            [],
        )
        assert accepted["commitment"] == expected.hex()
        assert verified_status == 200, verified
        assert '"found":false' in verified.replace(" ", "")
        assert read_status == 404 and '"record_not_found"' in record, record

        # Once anchored, its bundle verifies offline and names the department.
        key = PrivateKey.from_pem((workdir / "client-key.pem").read_bytes())
        with TrustClient(base, client.id, key) as sdk_client:
            anchored = sdk_client.wait_until_anchored(accepted["id"], timeout=ANCHOR_TIMEOUT_S)
        bundle = anchored.bundle
        assert bundle is not None
    with ChainReader(trust_chain.chain.url) as reader:
        verdict = verify_bundle(bundle, reader.validators(), chain_id=reader.chain_id())
    assert verdict.valid, verdict.failures
    assert verdict.signed_by is not None and verdict.signed_by.uscc == CLIENT_USCC
