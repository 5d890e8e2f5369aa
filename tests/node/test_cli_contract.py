"""``lianxin contract``: argument conversion, revert and event decoding, and deploy / call /
send against an in-process node serving a dev chain directory."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import eth_abi
import pytest
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from typer.testing import CliRunner, Result

from contracts.artifacts import Artifact, load_artifact
from node.chain_dir import ChainDir
from node.cli import app
from node.cli_contract_abi import (
    ArgumentError,
    ContractCommandError,
    convert_argument,
    decode_logs,
    describe_revert,
    encode_arguments,
    find_function,
    resolve_artifact,
)
from node.config import load_config, with_overrides
from node.daemon import Node

runner = CliRunner()
ROOT = "0x" + "ab" * 32


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


# -- conversion and decoding, no node ---------------------------------------------------------


@pytest.mark.parametrize(
    ("abi_type", "text", "expected"),
    [
        ("uint256", "42", 42),
        ("uint256", "0x2a", 42),
        ("int8", "-5", -5),
        ("uint256", "1_000", 1000),
        ("bool", "true", True),
        ("bool", "False", False),
        ("string", "电子证照", "电子证照"),
        ("bytes", "0x0102", b"\x01\x02"),
        ("bytes32", ROOT, bytes.fromhex("ab" * 32)),
        ("address", "0x" + "11" * 20, b"\x11" * 20),
        ("uint8[]", "[1, 2, 3]", [1, 2, 3]),
        ("bytes2[2]", '["0x0102", "0x0304"]', [b"\x01\x02", b"\x03\x04"]),
    ],
)
def test_arguments_are_converted_by_their_abi_type(
    abi_type: str, text: str, expected: object
) -> None:
    assert convert_argument({"type": abi_type}, text, label="x") == expected


def test_a_tuple_argument_is_a_json_array() -> None:
    param = {
        "type": "tuple",
        "components": [{"name": "id", "type": "uint64"}, {"name": "ok", "type": "bool"}],
    }
    assert convert_argument(param, "[7, true]", label="x") == (7, True)


@pytest.mark.parametrize(
    ("abi_type", "text"),
    [
        ("uint256", "forty-two"),
        ("bool", "yes"),
        ("bytes32", "0xab"),
        ("bytes32", "ab" * 32),
        ("address", "0x1234"),
        ("uint8[2]", "[1]"),
        ("uint8[]", "1,2"),
        ("fixed128x18", "1.5"),
    ],
)
def test_an_argument_that_does_not_fit_is_refused(abi_type: str, text: str) -> None:
    with pytest.raises(ArgumentError):
        convert_argument({"type": abi_type}, text, label="x")


def test_encoding_checks_the_count_and_the_range() -> None:
    inputs = [{"name": "limit", "type": "uint8"}]
    assert encode_arguments(inputs, ["7"]) == eth_abi.encode(["uint8"], [7])
    with pytest.raises(ArgumentError, match="expected 1 argument"):
        encode_arguments(inputs, [])
    with pytest.raises(ArgumentError):
        encode_arguments(inputs, ["256"])


def test_reverts_are_described_from_the_abi() -> None:
    counter = load_artifact("Counter")
    message = function_signature_to_4byte_selector("Error(string)") + eth_abi.encode(
        ["string"], ["no"]
    )
    custom = function_signature_to_4byte_selector("LimitReached(uint256)") + eth_abi.encode(
        ["uint256"], [3]
    )
    panic = function_signature_to_4byte_selector("Panic(uint256)") + eth_abi.encode(
        ["uint256"], [0x11]
    )
    assert describe_revert(counter, message) == "reverted: no"
    assert describe_revert(counter, custom) == "reverted: LimitReached(3)"
    assert describe_revert(counter, panic) == "reverted: panic 0x11"
    assert describe_revert(counter, b"") == "reverted"
    assert describe_revert(counter, b"\x01\x02\x03\x04") == "reverted with data 0x01020304"


def test_logs_are_decoded_as_the_artifacts_events() -> None:
    by = "0x" + "22" * 20
    log = {
        "address": "0x" + "11" * 20,
        "topics": [
            "0x" + keccak(text="Anchored(bytes32,address,uint256)").hex(),
            ROOT,
            "0x" + "00" * 12 + by[2:],
        ],
        "data": "0x" + eth_abi.encode(["uint256"], [2]).hex(),
    }
    unknown = {"address": log["address"], "topics": ["0x" + "33" * 32], "data": "0x"}
    decoded = decode_logs(load_artifact("Anchor"), [log, unknown])
    assert decoded[0] == {
        "event": "Anchored",
        "address": to_checksum_address(log["address"]),
        "args": {"root": ROOT, "by": to_checksum_address(by), "count": 2},
    }
    assert decoded[1] == unknown


def test_functions_are_found_by_name_or_signature() -> None:
    overloaded = Artifact(
        name="Over",
        abi=(
            {"type": "function", "name": "set", "inputs": [{"name": "a", "type": "uint256"}]},
            {
                "type": "function",
                "name": "set",
                "inputs": [{"name": "a", "type": "uint256"}, {"name": "b", "type": "bool"}],
            },
        ),
        bytecode=b"",
        deployed_bytecode=b"",
    )
    assert len(find_function(overloaded, "set", 2)["inputs"]) == 2
    assert len(find_function(overloaded, "set(uint256)", 2)["inputs"]) == 1
    with pytest.raises(ContractCommandError, match="overloaded"):
        find_function(overloaded, "set", 0)
    with pytest.raises(ContractCommandError, match="no function get"):
        find_function(overloaded, "get", 0)


def test_artifacts_come_from_a_name_or_a_file(tmp_path: Path) -> None:
    assert resolve_artifact("Anchor") == load_artifact("Anchor")
    copy = tmp_path / "counter-build.json"
    source = load_artifact("Counter")
    copy.write_text(
        json.dumps(
            {
                "name": "Counter",
                "abi": list(source.abi),
                "bytecode": "0x" + source.bytecode.hex(),
                "deployedBytecode": "0x" + source.deployed_bytecode.hex(),
            }
        )
    )
    assert resolve_artifact(str(copy)) == source
    for missing in ("NoSuchContract", str(tmp_path / "missing.json")):
        with pytest.raises(ContractCommandError):
            resolve_artifact(missing)


# -- against a node ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One dev chain directory for this module's node tests."""
    directory = tmp_path_factory.mktemp("contract-cli") / "chain"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("LIANXIN_KEYSTORE_PASSWORD", raising=False)
        result = invoke("init", str(directory), "--dev", "--json")
        assert result.exit_code == 0, result.output
        yield directory


@pytest.fixture(scope="module")
def node_url(chain_dir: Path) -> Iterator[str]:
    """The chain directory's node, run in-process on its own event loop thread."""
    config = with_overrides(load_config(ChainDir(chain_dir).config), rpc_port=0)
    node = Node.from_config(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="node-loop", daemon=True)
    thread.start()
    try:
        port = asyncio.run_coroutine_threadsafe(node.start(), loop).result(timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(node.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(scope="module")
def anchor_address(chain_dir: Path, node_url: str) -> str:
    """An Anchor contract deployed once for the usage-error tests."""
    return deploy(chain_dir, node_url, "Anchor")


def contract(chain_dir: Path, url: str, *args: str) -> Result:
    return invoke("contract", *args, "--dir", str(chain_dir), "--rpc", url)


def deploy(chain_dir: Path, url: str, *args: str) -> str:
    result = contract(chain_dir, url, "deploy", *args, "--key", "dept-a", "--json")
    assert result.exit_code == 0, result.output
    deployed = json.loads(result.stdout)
    assert deployed["status"] == 1
    return str(deployed["address"])


def test_deploy_send_and_call_anchor(chain_dir: Path, node_url: str) -> None:
    address = deploy(chain_dir, node_url, "Anchor")
    sent = contract(
        chain_dir, node_url, "send", address, "Anchor", "anchor", ROOT, "--key", "dept-a", "--json"
    )
    assert sent.exit_code == 0, sent.output
    receipt = json.loads(sent.stdout)
    assert receipt["function"] == "anchor(bytes32)"
    assert receipt["status"] == 1
    (event,) = receipt["events"]
    dept_a = json.loads(invoke("keys", "list", "--dir", str(chain_dir), "--json").stdout)["dept-a"]
    assert event["event"] == "Anchored"
    assert event["args"]["root"] == ROOT
    assert event["args"]["by"].lower() == dept_a
    assert event["args"]["count"] == 1

    count = contract(chain_dir, node_url, "call", address, "Anchor", "anchorCount", ROOT, "--json")
    assert count.exit_code == 0, count.output
    assert json.loads(count.stdout) == {"function": "anchorCount(bytes32)", "result": [1]}
    total = contract(chain_dir, node_url, "call", address, "Anchor", "total")
    assert total.exit_code == 0, total.output
    assert "uint256" in total.stdout and "1" in total.stdout
    # At the block of the anchor call's parent, nothing was anchored yet.
    parent = str(receipt["block_number"] - 1)
    before = contract(
        chain_dir, node_url, "call", address, "Anchor", "total", "--block", parent, "--json"
    )
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["result"] == [0]

    table = contract(chain_dir, node_url, "send", address, "Anchor", "anchor", ROOT, "-k", "admin")
    assert table.exit_code == 0, table.output
    assert "Anchored(" in table.stdout and '"count"' not in table.stdout


def test_constructor_arguments_and_reverts(chain_dir: Path, node_url: str) -> None:
    address = deploy(chain_dir, node_url, "Counter", "5")
    count = contract(chain_dir, node_url, "call", address, "Counter", "count", "--json")
    assert json.loads(count.stdout)["result"] == [5]

    # The estimate reverts, so nothing is sent.
    refused = contract(
        chain_dir, node_url, "send", address, "Counter", "incrementBelow", "5", "--key", "dept-a"
    )
    assert refused.exit_code == 1
    assert "LimitReached(5)" in refused.output
    # With a gas limit given, the transaction is committed and its receipt says it failed.
    failed = contract(
        chain_dir,
        node_url,
        "send",
        address,
        "Counter",
        "incrementBelow",
        "5",
        "--key",
        "dept-a",
        "--gas",
        "100000",
        "--json",
    )
    assert failed.exit_code == 1
    receipt = json.loads(failed.stdout)
    assert receipt["status"] == 0
    assert receipt["error"] == "reverted: LimitReached(5)"

    always = contract(chain_dir, node_url, "call", address, "Counter", "fail")
    assert always.exit_code == 1
    assert "Counter: always fails" in always.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("call", "{address}", "Anchor", "nothing"), "has no function nothing"),
        (("call", "{address}", "Anchor", "anchorCount", "0x12"), "bytes32 expects 0x-hex"),
        (("call", "{address}", "Anchor", "anchorCount"), "expected 1 argument"),
        (("call", "0x1234", "Anchor", "total"), "address expects 0x-hex"),
        (("call", "{address}", "Missing", "total"), "no compiled artifact"),
        (("send", "{address}", "Anchor", "anchor", ROOT, "--key", "nobody"), "no key 'nobody'"),
    ],
)
def test_usage_errors_exit_2(
    chain_dir: Path, node_url: str, anchor_address: str, args: tuple[str, ...], message: str
) -> None:
    result = contract(chain_dir, node_url, *(arg.format(address=anchor_address) for arg in args))
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_send_needs_a_key() -> None:
    result = invoke("contract", "send", "0x" + "11" * 20, "Anchor", "anchor", ROOT)
    assert result.exit_code == 2


def test_an_unreachable_node_exits_3(tmp_path: Path) -> None:
    result = invoke(
        "contract",
        "call",
        "0x" + "11" * 20,
        "Anchor",
        "total",
        "--dir",
        str(tmp_path),
        "--rpc",
        "http://127.0.0.1:1",
    )
    assert result.exit_code == 3
    assert "cannot reach the node" in result.output
