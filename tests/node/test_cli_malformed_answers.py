"""Every ``lianxin`` command that reads a node, pointed at a local HTTP server that answers
every JSON-RPC request with the same body that is not the answer: a body that is not JSON,
nested too deep or too long, a reply that is no JSON-RPC reply, an error member of another
shape, or a result of the wrong type. Each must end as the CLI's own exit (one line on
stderr, a non-zero code for what is plainly no answer), never another exception, and must
send no transaction and write no key on the strength of what it read.

The commands that start processes and wait for them to answer (``node start``, ``net start``,
``dev``) are not driven here: they only poll ``rpc_call`` until it returns.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import eth_abi
import pytest
from click.testing import CliRunner, Result
from eth_utils import function_signature_to_4byte_selector, keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command

from contracts.permissions import PERMISSIONS_ADDRESS, ROLES_CHANGED_TOPIC
from contracts.validators import EXECUTED_TOPIC, PROPOSED_TOPIC, VALIDATOR_GOVERNANCE_ADDRESS
from node import rpc_client
from node.chain_dir import ChainDir, init_chain_dir, keystore_address, load_key
from node.cli import app
from node.rpc_client import RpcError, rpc_call, shown

runner = CliRunner()
LIANXIN = get_command(app)
"""The click command typer makes of the app, made once: what typer's CliRunner invokes, but
making it for each of the module's many runs would take most of their time."""

TX_HASH = "0x" + "ab" * 32
CONTRACT = "0x" + "11" * 20
PUBLIC_KEY = "0x04" + "22" * 64
BOUND = 16 * 1024 * 1024
"""The most bytes of an answer the CLI reads (node.rpc_client.BOUND)."""
ANCHORED_TOPIC = keccak(text="Anchored(bytes32,address,uint256)")
ONE_LINE_CHARS = 400
"""Longest error line a command may print: a one-line reason, not a dump of the answer."""


# -- the node that answers wrong ----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Answers every POST as the server's ``respond`` says, and notes the method asked."""

    server: FakeNode

    def do_POST(self) -> None:
        request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            call = json.loads(request)
            method, params = str(call["method"]), list(call.get("params") or [])
        except (ValueError, KeyError, TypeError):
            method, params = "?", []
        self.server.methods.append(method)
        body = self.server.respond(method, params)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stopped reading an oversize body
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


Respond = Callable[[str, list[Any]], bytes]
"""The body answering a call of a method with its params."""


class FakeNode(ThreadingHTTPServer):
    """A JSON-RPC "node" on 127.0.0.1 that answers every request as ``respond`` says; setting
    ``body`` makes it answer every request with that body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond: Respond = lambda method, params: b""
        self.methods: list[str] = []

    @property
    def body(self) -> bytes:
        return self.respond("?", [])

    @body.setter
    def body(self, body: bytes) -> None:
        self.respond = lambda method, params: body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_node() -> Iterator[FakeNode]:
    server = FakeNode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory, fake_node: FakeNode) -> Path:
    """A dev network of two validators (cheap keystores) whose node.toml files name the
    fake node's port, so that the commands reading their URL from a folder find it too."""
    root = tmp_path_factory.mktemp("malformed") / "net"
    result = init_chain_dir(
        root,
        password=None,
        dev=True,
        validators=2,
        rpc_port=8545,
        timestamp_ms=int(time.time() * 1000),
        iterations=1000,
    )
    port = fake_node.server_address[1]
    for folder in result.nodes:
        config = folder / "node.toml"
        text = re.sub(r"(?m)^rpc_port = \d+$", f"rpc_port = {port}", config.read_text())
        config.write_text(text)
    return root


# -- the commands -------------------------------------------------------------------------------

Command = Callable[[str, Path], list[str]]


def _rpc(*args: str) -> Command:
    """A command that takes the chain directory and ``--rpc``."""
    return lambda url, root: [*args, "--dir", str(root), "--rpc", url]


def _folder(*args: str) -> Command:
    """A command that finds the node in the network's validator folders."""
    return lambda url, root: [*args, "--dir", str(root)]


SEND = ("--key", "admin", "--timeout", "1")
COMMANDS: dict[str, Command] = {
    "block latest": _rpc("block", "latest"),
    "block 7": _rpc("block", "7"),
    "tx": _rpc("tx", TX_HASH),
    "receipt": _rpc("receipt", TX_HASH),
    "node status": _rpc("node", "status"),
    "net status": _folder("net", "status"),
    "accounts list": _rpc("accounts", "list"),
    "accounts grant": _rpc("accounts", "grant", "dept-b", "deployer"),
    "accounts revoke": _rpc("accounts", "revoke", "dept-b", "deployer"),
    "accounts freeze": _rpc("accounts", "freeze", "dept-b"),
    "accounts unfreeze": _rpc("accounts", "unfreeze", "dept-b"),
    "contract deploy": _rpc("contract", "deploy", "Anchor", *SEND),
    "contract call": _rpc("contract", "call", CONTRACT, "Anchor", "total"),
    "contract call (args)": _rpc("contract", "call", CONTRACT, "Anchor", "anchorCount", TX_HASH),
    "contract send": _rpc("contract", "send", CONTRACT, "Anchor", "anchor", TX_HASH, *SEND),
    "contract send (gas)": _rpc(
        "contract", "send", CONTRACT, "Anchor", "anchor", TX_HASH, *SEND, "--gas", "100000"
    ),
    "validators list": _folder("validators", "list"),
    "validators keys": _folder("validators", "keys"),
    "validators status": _folder("validators", "status"),
    "validators propose (key)": _folder(
        "validators", "propose", "--power", "5", "--public-key", PUBLIC_KEY
    ),
    "validators propose (node)": _folder(
        "validators", "propose", "--power", "0", "--target-node", "1"
    ),
    "validators propose --dry-run": _folder(
        "validators", "propose", "--power", "5", "--public-key", PUBLIC_KEY, "--dry-run"
    ),
    "validators vote": _folder("validators", "vote", "0"),
    "validators vote --force": _folder("validators", "vote", "0", "--force"),
    "validators rotate-key": _folder("validators", "rotate-key"),
    "validators rotate-key --dry-run": _folder("validators", "rotate-key", "--dry-run"),
}
"""Every command that reads a node, by name."""


# -- the bodies ---------------------------------------------------------------------------------


def reply(result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()


def error_reply(error: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "error": error}).encode()


WRONG_RESULTS: dict[str, Any] = {
    "null": None,
    "true": True,
    "1": 1,
    "-1": -1,
    "1.5": 1.5,
    "empty string": "",
    "0x": "0x",
    "0xzz": "0xzz",
    "zz": "zz",
    "10,000 hex digits": "0x" + "f" * 10_000,
    "odd hex": "0x123",
    "short word": "0x" + "00" * 31,
    "[]": [],
    "{}": {},
    "nested list": [[1, [2, [3, []]]], {"a": [None]}],
    "nested object": {"a": {"b": {"c": [1, "0x1", {"d": None}]}}},
    "list of hex": ["0x1", "0x2"],
    "list of objects": [{"address": "0x1", "power": "zz"}],
    "verdict without reason": {"ok": False},
    "deep object": {"a": json.loads("[" * 900 + "]" * 900)},
}
"""Results of a type that no command this module drives can take for its answer."""

WRONG_ERRORS: dict[str, Any] = {
    "null": None,
    "5": 5,
    "string": "boom",
    "[]": [],
    "{}": {},
    "code not int": {"code": "x", "message": "m"},
    "code bool": {"code": True, "message": "m"},
    "code float": {"code": 1.5, "message": "m"},
    "message not str": {"code": -32000, "message": ["m"]},
    "no message": {"code": -32000},
    "revert data not hex": {"code": 3, "message": "execution reverted", "data": "zz"},
    "revert data a number": {"code": 3, "message": "execution reverted", "data": 5},
    "revert string not utf-8": {
        "code": 3,
        "message": "execution reverted",
        "data": "0x08c379a0"
        + (32).to_bytes(32, "big").hex()
        + (2).to_bytes(32, "big").hex()
        + "fffe".ljust(64, "0"),
    },
    "message markup": {"code": -32000, "message": "[/red] closes nothing"},
    "message long": {"code": -32000, "message": "x" * 100_000},
    "message lines": {"code": -32000, "message": "one\ntwo\nthree"},
}
"""Error members of another shape than JSON-RPC's, and errors whose contents are not what a
revert's or a message's are. Every command exits non-zero on them."""

BODIES: dict[str, bytes] = {
    "empty": b"",
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "truncated": b'{"jsonrpc":"2.0","id":1,"result":"0x',
    "not utf-8": b"\xff\xfe\x00{",
    "NaN": b'{"jsonrpc":"2.0","id":1,"result":NaN}',
    "200,000 deep list": b"[" * 200_000,
    "200,000 deep object": b'{"a":' * 200_000,
    "deep result": b'{"jsonrpc":"2.0","id":1,"result":' + b"[" * 200_000,
    "oversize": b" " * BOUND + reply("0x1"),
    "top null": b"null",
    "top true": b"true",
    "top number": b"1",
    "top string": b'"0x1"',
    "top list": b"[]",
    "top batch": b"[" + reply("0x1") + b"]",
    "no result": b'{"jsonrpc":"2.0","id":1}',
    **{f"result {name}": reply(value) for name, value in WRONG_RESULTS.items()},
    **{f"error {name}": error_reply(value) for name, value in WRONG_ERRORS.items()},
}


def is_quantity(body: bytes) -> bool:
    """Whether ``body`` is a reply whose result could be read as a hex quantity (a chain id),
    the least a command needs before it may sign and send."""
    try:
        result = json.loads(body)["result"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return False
    return isinstance(result, str) and re.fullmatch(r"0x[0-9a-fA-F]{1,64}", result) is not None


# -- running one command against one body -------------------------------------------------------


def keyring_files(root: Path) -> set[Path]:
    """The keystores in the validators' keyring folders (``validator.keys/``)."""
    return set(root.glob("node-*/*.keys/*"))


def run_command(
    fake_node: FakeNode, root: Path, command: str, respond: Respond
) -> tuple[Result, list[str]]:
    """Run ``command`` against a node answering as ``respond`` says; the result and every
    fault found: an exception other than the CLI's exit, a traceback, an error of more than
    one line's length, a keyring file written by a command that failed before it sent the
    rotation (once sent, the key stays: the rotation may pass). A keyring file written is
    removed again."""
    fake_node.respond = respond
    fake_node.methods = []
    keyring_before = keyring_files(root)
    result = runner.invoke(LIANXIN, COMMANDS[command](fake_node.url, root))
    faults: list[str] = []
    exception = result.exception
    if exception is not None and not isinstance(exception, SystemExit):
        faults.append(f"{type(exception).__name__}: {str(exception)[:120]}")
    if "Traceback" in result.output:
        faults.append("traceback in the output")
    for line in result.output.splitlines():
        if line.startswith("error:") and len(line) > ONE_LINE_CHARS:
            faults.append(f"an error line of {len(line)} characters")
    written = keyring_files(root) - keyring_before
    if written and result.exit_code != 0 and "eth_sendRawTransaction" not in fake_node.methods:
        faults.append("wrote a keyring file and sent no rotation")
    for path in written:
        path.unlink()
    return result, faults


def run(fake_node: FakeNode, root: Path, command: str, body: bytes) -> tuple[Result, list[str]]:
    """Run ``command`` against a node answering every request with ``body``; the result and
    every fault found, a transaction sent without a chain id to sign it for among them."""
    result, faults = run_command(fake_node, root, command, lambda method, params: body)
    if "eth_sendRawTransaction" in fake_node.methods and not is_quantity(body):
        faults.append("sent a transaction")
    return result, faults


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_body_that_is_not_the_answer_is_a_one_line_error(
    fake_node: FakeNode, network: Path, command: str
) -> None:
    escapes: list[str] = []
    for name, body in BODIES.items():
        result, faults = run(fake_node, network, command, body)
        if result.exit_code == 0:
            faults.append("exit code 0")
        escapes += [f"{name}: {fault}" for fault in faults]
    assert not escapes, f"{command}: {len(escapes)} faults\n" + "\n".join(escapes)


# -- generated answers --------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.from_regex(r"0x[0-9a-fA-F]{0,140}", fullmatch=True),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["number", "timestamp", "hash", "status", "ok", "validators", "x"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
"""JSON values, hex strings of every length among them, and objects with members a command
may look for."""


@pytest.mark.parametrize("command", list(COMMANDS))
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=json_values, as_error=st.booleans())
def test_any_json_answer_ends_as_the_cli_exit(
    fake_node: FakeNode, network: Path, command: str, value: Any, as_error: bool
) -> None:
    body = error_reply(value) if as_error else reply(value)
    _, faults = run(fake_node, network, command, body)
    assert not faults, f"{command} reading {body[:200]!r}: {faults}"


# -- rpc_call itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BODIES))
def test_rpc_call_raises_only_rpc_error(fake_node: FakeNode, name: str) -> None:
    fake_node.body = BODIES[name]
    with pytest.raises(RpcError) as caught:
        rpc_call(fake_node.url, "eth_getBlockByNumber", ["latest", False])
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < ONE_LINE_CHARS


def test_a_reply_of_the_right_shape_passes(fake_node: FakeNode) -> None:
    fake_node.body = reply("0x2a")
    assert rpc_call(fake_node.url, "eth_blockNumber", []) == "0x2a"
    fake_node.body = error_reply({"code": 3, "message": "execution reverted", "data": "0x01"})
    with pytest.raises(RpcError) as caught:
        rpc_call(fake_node.url, "eth_call", [])
    assert (caught.value.code, caught.value.data) == (3, "0x01")


def test_the_bound_is_the_clients() -> None:
    assert getattr(rpc_client, "MAX_ANSWER_BYTES", None) == BOUND


def test_an_answer_at_the_bound_is_read(fake_node: FakeNode) -> None:
    answer = reply("0x2a")
    fake_node.body = b" " * (BOUND - len(answer)) + answer
    assert rpc_call(fake_node.url, "eth_blockNumber", []) == "0x2a"


def test_an_answer_that_is_not_http_is_an_rpc_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def answer() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(RpcError):
            rpc_call(f"http://127.0.0.1:{listener.getsockname()[1]}", "eth_blockNumber", [])
        thread.join(5)


def test_text_of_the_node_is_shown_as_text_not_markup(fake_node: FakeNode, network: Path) -> None:
    fake_node.body = reply({"number": "0x1", "timestamp": "0x2", "hash": None, "x": "[/red] [b]"})
    result = runner.invoke(LIANXIN, COMMANDS["block latest"](fake_node.url, network))
    assert result.exit_code == 0, result.output
    assert "[/red] [b]" in result.output


# -- one wrong answer among right ones ----------------------------------------------------------

Ask = tuple[str, str]
"""A method, and for eth_call the 0x-hex selector of the function called ("" otherwise)."""


def _word(number: int) -> str:
    return "0x" + number.to_bytes(32, "big").hex()


def _topic(raw: bytes) -> str:
    return "0x" + raw.rjust(32, b"\0").hex()


@dataclass
class Plausible:
    """What a node of the test network would answer: ``results`` by method, and for eth_call
    ``calls`` by selector (an unknown function returns nothing)."""

    results: dict[str, Any]
    calls: dict[str, str]

    def ask(self, method: str, params: list[Any]) -> Ask:
        """What a call of ``method`` with ``params`` asks."""
        if method != "eth_call":
            return method, ""
        try:
            return method, str(params[0]["data"])[:10]
        except (IndexError, KeyError, TypeError):
            return method, ""

    def result(self, ask: Ask) -> Any:
        method, selector = ask
        return self.calls.get(selector, "0x") if method == "eth_call" else self.results[method]

    def respond(
        self, wrong: Ask | None = None, body: bytes = b"", seen: list[Ask] | None = None
    ) -> Respond:
        """Answer every call right, except what asks ``wrong``: that with ``body``; note what
        each call asks in ``seen``."""

        def respond(method: str, params: list[Any]) -> bytes:
            ask = self.ask(method, params)
            if seen is not None:
                seen.append(ask)
            if ask == wrong:
                return body
            if method != "eth_call" and method not in self.results:
                return error_reply({"code": -32601, "message": f"method not found: {method}"})
            return reply(self.result(ask))

        return respond


def _selector(signature: str) -> str:
    return "0x" + function_signature_to_4byte_selector(signature).hex()


@pytest.fixture(scope="module")
def plausible(network: Path) -> Plausible:
    chain = ChainDir(network)
    password = chain.password_file.read_bytes().rstrip(b"\r\n")
    keys = [load_key(folder / "validator.json", password) for folder in chain.node_dirs()]
    publics = [bytes(key.public_key.to_bytes()) for key in keys]
    addresses = [bytes(key.public_key.address) for key in keys]
    admin = bytes(keystore_address(chain.keystore("admin")))
    block_hash = "0x" + "77" * 32
    logs = [
        (VALIDATOR_GOVERNANCE_ADDRESS, [PROPOSED_TOPIC, b"\0", addresses[1], addresses[0]], 1),
        (VALIDATOR_GOVERNANCE_ADDRESS, [EXECUTED_TOPIC, b"\0", addresses[1]], 1, 9),
        (PERMISSIONS_ADDRESS, [ROLES_CHANGED_TOPIC, admin, admin], 3),
        (bytes.fromhex(CONTRACT[2:]), [ANCHORED_TOPIC, bytes.fromhex(TX_HASH[2:]), admin], 1),
    ]
    log_objects = [
        {
            "address": "0x" + bytes(address).hex(),
            "topics": [_topic(topic) for topic in topics],
            "data": "0x" + "".join(_word(number)[2:] for number in numbers),
            "blockNumber": "0x7",
            "transactionHash": TX_HASH,
        }
        for address, topics, *numbers in logs
    ]
    proposal = eth_abi.encode(
        ["address", "uint256", "bytes32", "bytes32", "address"] + ["uint256"] * 3 + ["address"],
        [addresses[1], 1, publics[1][1:33], publics[1][33:], addresses[0], 0, 1, 0, bytes(20)],
    )
    ruling_set = eth_abi.encode(
        ["bytes32[]", "bytes32[]", "address[]", "uint256[]", "uint256"],
        [[p[1:33] for p in publics], [p[33:] for p in publics], addresses, [1, 1], 1],
    )
    return Plausible(
        results={
            "eth_chainId": "0x134a0a6",
            "eth_blockNumber": "0x7",
            "eth_estimateGas": "0x5208",
            "eth_getCode": "0x6001",
            "eth_sendRawTransaction": TX_HASH,
            "eth_getBlockByNumber": {
                "number": "0x7",
                "timestamp": hex(int(time.time())),
                "hash": block_hash,
                "transactions": [],
            },
            "eth_getTransactionByHash": {"hash": TX_HASH, "blockNumber": "0x7", "input": "0x"},
            "eth_getTransactionReceipt": {
                "transactionHash": TX_HASH,
                "blockHash": block_hash,
                "blockNumber": "0x7",
                "contractAddress": CONTRACT,
                "gasUsed": "0x5208",
                "status": "0x1",
                "logs": log_objects,
                "output": "0x",
            },
            "eth_getLogs": [log_objects[2]],
            "web3_clientVersion": "lianxin/test",
            "lianxin_getNodeVersion": {"version": "lianxin/test", "scheduleDigest": block_hash},
            "lianxin_getPeers": [{"name": "node-1", "connected": True, "height": "0x7"}],
            "lianxin_getValidators": {
                "since": "0x1",
                "validators": [
                    {"name": f"node-{index}", "address": "0x" + address.hex(), "power": "0x1"}
                    for index, address in enumerate(addresses)
                ],
            },
            "lianxin_getConsensusStatus": {
                "mode": "tendermint",
                "height": "0x8",
                "round": "0x0",
                "step": "propose",
                "headHeight": "0x7",
                "validator": "0x" + addresses[0].hex(),
                "keyring": {"keys": ["0x" + addresses[0].hex()], "refused": 0},
                "role": "validator",
                "peers": 1,
            },
            "lianxin_checkValidatorChange": {
                "ok": True,
                "reason": None,
                "seenPower": 2,
                "newTotalPower": 2,
                "newQuorumPower": 2,
            },
        },
        calls={
            _selector("proposalCount()"): _word(1),
            _selector("proposals(uint256)"): "0x" + proposal.hex(),
            _selector("changeCount()"): _word(0),
            _selector("voted(uint256,address)"): _word(0),
            _selector("rotatedTo(address)"): _word(0),
            _selector("validatorsAt(uint256)"): "0x" + ruling_set.hex(),
            _selector("rotationCheck(address,uint256)"): "0x"
            + "".join(_word(2)[2:] for _ in range(3)),
            _selector("roles(address)"): _word(3),
            _selector("total()"): _word(3),
            _selector("anchorCount(bytes32)"): _word(1),
        },
    )


@pytest.fixture(scope="module")
def asked(fake_node: FakeNode, network: Path, plausible: Plausible) -> dict[str, list[Ask]]:
    """What each command asks of a node that answers right; each succeeds."""
    asks: dict[str, list[Ask]] = {}
    for command in COMMANDS:
        seen: list[Ask] = []
        result, faults = run_command(fake_node, network, command, plausible.respond(seen=seen))
        assert result.exit_code == 0 and not faults, f"{command}: {faults}\n{result.output}"
        asks[command] = sorted(set(seen))
    return asks


def wrong_instead_of(right: Any) -> st.SearchStrategy[Any]:
    """Any JSON value, or ``right`` changed in one place: a member dropped or changed, an
    item changed, hex cut short or made longer."""
    options: list[st.SearchStrategy[Any]] = [json_values]
    if isinstance(right, dict) and right:
        keys = sorted(right)
        options.append(
            st.sampled_from(keys).map(lambda key: {k: v for k, v in right.items() if k != key})
        )
        options.append(
            st.sampled_from(keys).flatmap(
                lambda key: wrong_instead_of(right[key]).map(lambda value: {**right, key: value})
            )
        )
    if isinstance(right, list) and right:
        options.append(
            st.integers(0, len(right) - 1).flatmap(
                lambda i: wrong_instead_of(right[i]).map(
                    lambda value: [*right[:i], value, *right[i + 1 :]]
                )
            )
        )
    if isinstance(right, str) and right.startswith("0x"):
        options.append(st.integers(0, len(right) - 1).map(lambda n: right[:n]))
        options.append(st.from_regex(r"[0-9a-fA-F]{1,80}", fullmatch=True).map(right.__add__))
    return st.one_of(options)


@pytest.mark.parametrize("command", list(COMMANDS))
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_one_wrong_answer_among_right_ones_ends_as_the_cli_exit(
    fake_node: FakeNode,
    network: Path,
    plausible: Plausible,
    asked: dict[str, list[Ask]],
    command: str,
    data: st.DataObject,
) -> None:
    wrong = data.draw(st.sampled_from(asked[command]), label="wrong answer to")
    values = wrong_instead_of(plausible.result(wrong))
    if wrong[0] == "eth_getTransactionReceipt":
        # A receipt of null is right (not yet committed): the command waits out its timeout.
        values = values.filter(lambda value: value is not None)
    value = data.draw(values, label="instead")
    result, faults = run_command(
        fake_node, network, command, plausible.respond(wrong, reply(value))
    )
    assert not faults, f"{command}, {wrong} answered {shown(value)}: {faults}\n{result.output}"
