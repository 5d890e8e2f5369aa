"""``lianxin validators``: the validator set of a network and its governance.

``list`` shows the set ruling the next height; ``propose`` asks for a validator to be added,
removed (``--power 0``) or given another voting power; ``vote`` supports a proposal; ``status``
lists the proposals. Proposals and votes are transactions to the ValidatorGovernance system
contract (:mod:`contracts.validators`), signed by a validator's own key (its account is its
address), so they are run from a validator's folder: ``--node I`` picks ``node-I`` of a
network directory, its key and its node. A change passes once validators holding more than
2/3 of the voting power voted, and rules from two blocks after the block that passed it.

The quorum guard. The contract refuses the vote that would execute a change when, once every
executed change and this one rule, the validators seen signing recently (in the commit
certificates of the last ``LIVENESS_WINDOW`` blocks, recorded on chain) would hold less than
a quorum of the new set: the chain would halt. ``lianxin_checkValidatorChange`` asks the
contract for that verdict in the next block. ``propose`` checks it first and sends nothing
when it is refused; ``vote`` checks it when this vote would execute the change and sends
nothing when it is refused, unless ``--force`` (then the contract itself refuses it, with
``QuorumAtRisk``). ``--dry-run`` shows the verdict without sending anything.

``rotate-key`` replaces a validator's consensus key: it writes the new key's keystore (the
chain's keystore format and password) into the node's keyring folder
(:mod:`node.keyring`), signs the rotation's terms with the new key (proof of possession) and
sends ``proposeRotation`` signed by the current key; the others pass it with ``vote``. From
the height it rules, the running node signs with the new key, without a restart.

What the commands read from and send to the contract is in :mod:`node.cli_validators_governance`,
which they import when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from node.cli_common import (
    DEFAULT_DIR,
    EXIT_BAD,
    DirOption,
    JsonOption,
    PasswordOption,
    call,
    chain_password,
    console,
    emit,
    fail,
    from_hex,
    node_folder,
    to_hex,
)
from node.rpc_client import hex_quantity

if TYPE_CHECKING:
    from chain.crypto import PrivateKey
    from chain.primitives import Address
    from node.config import NodeConfig

validators_app = typer.Typer(help="The validator set and its governance.", no_args_is_help=True)

NodeIndexOption = Annotated[
    int, typer.Option("--node", "-n", help="folder node-N: its key signs, its node serves")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="only show the contract's quorum verdict; send nothing")
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="send even if the quorum guard refuses (the contract reverts)"),
]


def _config(folder: Path) -> NodeConfig:
    from node.config import ConfigError, load_config

    try:
        return load_config(folder / "node.toml")
    except ConfigError as exc:
        raise fail(str(exc)) from exc


def _url(folder: Path) -> str:
    config = _config(folder)
    return f"http://{config.rpc_host}:{config.rpc_port}"


def _node_key(directory: Path, index: int, password_file: Path | None) -> PrivateKey:
    from chain.errors import ChainError
    from node.chain_dir import ChainDir, load_key

    folder = node_folder(directory, index)
    try:
        password = chain_password(ChainDir(directory), password_file)
        return load_key(folder / "validator.json", password)
    except ChainError as exc:
        raise fail(f"cannot open the key of {folder.name}: {exc}", EXIT_BAD) from exc


def _report(result: dict[str, Any], what: str, as_json: bool) -> None:
    if as_json:
        emit(result, True)
    elif result["ok"]:
        line = f"{what}: proposal {result.get('proposal', '?')} (tx {result['transaction']})"
        if result.get("executed"):
            line += f"; passed, rules from height {result['effectiveHeight']}"
        console.print(line)
    if not result["ok"]:
        raise fail(f"{what} reverted: {result['error']}", EXIT_BAD)


@validators_app.command("list")
def validators_list(
    directory: DirOption = DEFAULT_DIR, node: NodeIndexOption = 0, as_json: JsonOption = False
) -> None:
    """The validator set ruling the next height."""
    # Of the shape node.rpc_client checks: since, and each validator's name, address, power.
    answer = call(_url(node_folder(directory, node)), "lianxin_getValidators", [])
    if as_json:
        emit(answer, True)
        return
    table = Table(title=f"validators from height {int(answer['since'], 16)}")
    for column in ("name", "address", "power"):
        table.add_column(column)
    for entry in answer["validators"]:
        table.add_row(escape(entry["name"]), entry["address"], str(int(entry["power"], 16)))
    console.print(table)


@validators_app.command("propose")
def validators_propose(
    power: Annotated[int, typer.Option(help="voting power to hold; 0 removes the validator")],
    directory: DirOption = DEFAULT_DIR,
    node: NodeIndexOption = 0,
    public_key: Annotated[
        str | None, typer.Option(help="the validator's uncompressed SM2 key (hex)")
    ] = None,
    target_node: Annotated[
        int | None, typer.Option(help="or: the validator of folder node-N (its current key)")
    ] = None,
    dry_run: DryRunOption = False,
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Propose that a validator hold POWER (add, change, or remove with 0)."""
    from contracts.validators import propose_call
    from node.cli_validators_governance import current_key, quorum_verdict, send_to_contract

    if (public_key is None) == (target_node is None):
        raise fail("give exactly one of --public-key and --target-node")
    if power < 0:
        raise fail("--power must be >= 0")
    key_bytes: bytes
    url = _url(node_folder(directory, node))
    if target_node is not None:
        configured = _node_key(directory, target_node, password_file).public_key.to_bytes()
        key_bytes = current_key(url, configured)
    else:
        assert public_key is not None
        key_bytes = from_hex(public_key)
        if len(key_bytes) != 65 or key_bytes[0] != 4:
            raise fail("--public-key must be an uncompressed SM2 key (65 bytes, 04…)")
    check = quorum_verdict(url, key_bytes, power)
    if dry_run or not check["ok"]:
        _show_verdict({"dryRun": dry_run, **check}, as_json)
        return
    key = _node_key(directory, node, password_file)
    _report(send_to_contract(url, key, propose_call(key_bytes, power)), "proposed", as_json)


def _show_verdict(verdict: dict[str, Any], as_json: bool) -> None:
    """Print a dry run's verdict; exit 1 if the change is refused."""
    if as_json:
        emit(verdict, True)
    elif verdict["ok"]:
        seen = verdict.get("seenPower")
        figures = (
            ""
            if seen is None
            else f" ({seen} of {verdict['newTotalPower']} seen signing, quorum "
            f"{verdict['newQuorumPower']})"
        )
        console.print(f"dry run: acceptable{figures}")
    if not verdict["ok"]:
        raise fail(f"refused: {verdict['reason']}", EXIT_BAD)


@validators_app.command("rotate-key")
def validators_rotate_key(
    directory: DirOption = DEFAULT_DIR,
    node: NodeIndexOption = 0,
    new_keystore: Annotated[
        Path | None,
        typer.Option(help="the new key's keystore (chain password); default: a fresh key"),
    ] = None,
    dry_run: DryRunOption = False,
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the consensus key of validator folder --node by a new key with the same power.

    The new key's keystore goes into the node's keyring folder, where the running node finds
    it; the proposal is signed by the current key and carries the new key's signature over
    the rotation's terms. The other validators pass it with `vote`; it rules two blocks after
    the block that passes it, and from then on the node signs with the new key."""
    from chain.crypto.keystore import encrypt_keystore
    from contracts.validators import (
        VALIDATOR_GOVERNANCE_ADDRESS,
        propose_rotation_call,
        rotation_message,
    )
    from node.chain_dir import ChainDir, keystore_address, write_private
    from node.cli_validators_governance import (
        GOVERNANCE_GAS,
        revert_name,
        rotation_verdict,
        send_to_contract,
    )
    from node.keyring import keyring_file

    folder = node_folder(directory, node)
    config = _config(folder)
    if config.validator_keystore is None:
        raise fail(f"{folder.name}/node.toml names no validator_keystore")
    url = _url(folder)
    old = _node_key(directory, node, password_file)
    password = chain_password(ChainDir(directory), password_file)
    new = _new_key(new_keystore, password)
    if new.public_key.address == old.public_key.address:
        raise fail("the new key is the validator's current key", EXIT_BAD)
    verdict = {
        **rotation_verdict(url, old.public_key.address),
        "validator": to_hex(old.public_key.address),
        "newKey": to_hex(new.public_key.address),
    }
    if dry_run or not verdict["ok"]:
        _show_verdict({"dryRun": dry_run, **verdict}, as_json)
        return
    chain_id = call(url, "eth_chainId", [], read=hex_quantity)
    possession = new.sign(rotation_message(chain_id, old.public_key.address, _public(new)))
    data = propose_rotation_call(_public(new), possession)
    # The contract's answer first: nothing goes into the keyring for a rotation it refuses
    # (another validator's key there would let this node sign as that validator).
    request = {
        "from": to_hex(old.public_key.address),
        "to": to_hex(VALIDATOR_GOVERNANCE_ADDRESS),
        "data": to_hex(data),
        "gas": hex(GOVERNANCE_GAS),
    }
    call(url, "eth_call", [request, "latest"], lambda raw: f"refused: {revert_name(raw)}")
    target = keyring_file(config.validator_keystore, new.public_key.address)
    wrote = not target.exists()
    if wrote:
        write_private(target, encrypt_keystore(new, password, iterations=_iterations(config)))
    elif keystore_address(target) != new.public_key.address:
        raise fail(f"{target} holds another key; refusing to overwrite it", EXIT_BAD)
    result = send_to_contract(url, old, data)
    if not result["ok"] and wrote:
        target.unlink()
    result |= {"validator": verdict["validator"], "newKey": verdict["newKey"]}
    result["keystore"] = str(target) if result["ok"] else None
    _report(result, f"rotation of {verdict['validator']} to {verdict['newKey']}", as_json)


def _public(key: PrivateKey) -> bytes:
    return bytes(key.public_key.to_bytes())


def _new_key(path: Path | None, password: bytes) -> PrivateKey:
    from chain.crypto import PrivateKey
    from chain.errors import ChainError
    from node.chain_dir import load_key

    if path is None:
        return PrivateKey.generate()
    try:
        return load_key(path, password)
    except ChainError as exc:
        raise fail(f"cannot open the new key {path}: {exc}", EXIT_BAD) from exc


def _iterations(config: NodeConfig) -> int:
    """The key derivation iterations of the node's keystore, so the new key is as protected
    (and as quick to open) as the one it replaces."""
    assert config.validator_keystore is not None
    try:
        document = json.loads(config.validator_keystore.read_text(encoding="utf-8"))
        return int(document["kdf"]["iterations"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise fail(f"cannot read {config.validator_keystore}: {exc}", EXIT_BAD) from exc


@validators_app.command("keys")
def validators_keys(
    directory: DirOption = DEFAULT_DIR, node: NodeIndexOption = 0, as_json: JsonOption = False
) -> None:
    """The consensus keys the node of folder --node holds (its configured key and its
    keyring's) and the one it signs with now: check a rotated key is held before voting."""
    folder = node_folder(directory, node)
    # Of the shape node.rpc_client checks: a keyring, if any, lists addresses and a count.
    status = call(_url(folder), "lianxin_getConsensusStatus", [])
    keyring = status.get("keyring")
    if keyring is None:
        raise fail(f"{folder.name} does not report its keys (no consensus keyring)", EXIT_BAD)
    result = {
        "node": folder.name,
        "signing": status.get("validator"),
        "role": status.get("role"),
        "keys": keyring["keys"],
        "refused": keyring["refused"],
    }
    if as_json:
        emit(result, True)
        return
    for address in result["keys"]:
        mark = " (signing)" if address == result["signing"] else ""
        console.print(f"{address}{mark}")
    if result["refused"]:
        console.print(f"{result['refused']} keystore(s) in the keyring did not open")


@validators_app.command("vote")
def validators_vote(
    proposal: Annotated[int, typer.Argument(help="proposal id")],
    directory: DirOption = DEFAULT_DIR,
    node: NodeIndexOption = 0,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vote for PROPOSAL with the key of validator folder --node. A vote that would execute
    a change the quorum guard refuses is not sent (unless --force)."""
    from contracts.validators import vote_call
    from node.cli_validators_governance import read_proposal, send_to_contract, vote_verdict

    url = _url(node_folder(directory, node))
    key = _node_key(directory, node, password_file)
    verdict = vote_verdict(url, key.public_key.address, read_proposal(url, proposal))
    if dry_run or not (verdict["ok"] or force):
        _show_verdict({"dryRun": dry_run, **verdict}, as_json)
        return
    result = send_to_contract(url, key, vote_call(proposal))
    result.setdefault("proposal", proposal)
    _report(result, "voted", as_json)


@validators_app.command("status")
def validators_status(
    directory: DirOption = DEFAULT_DIR, node: NodeIndexOption = 0, as_json: JsonOption = False
) -> None:
    """Every proposal: the change, its votes, and whether it passed."""
    from node.cli_validators_governance import proposal_at, proposal_count

    url = _url(node_folder(directory, node))
    rows: list[dict[str, Any]] = []
    for proposal_id in range(proposal_count(url)):
        proposal = proposal_at(url, proposal_id)
        rows.append(
            {
                "id": proposal.id,
                "validator": _address(proposal.validator),
                "power": proposal.power,
                "proposer": _address(proposal.proposer),
                "votedPower": proposal.voted_power,
                "executedAt": proposal.executed_at or None,
                "replaces": None if proposal.replaces is None else _address(proposal.replaces),
            }
        )
    if as_json:
        emit(rows, True)
        return
    table = Table(title="validator proposals")
    for column in (
        "id", "validator", "power", "replaces", "proposer", "voted power", "passed at",
    ):  # fmt: skip
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]), row["validator"], str(row["power"]), row["replaces"] or "",
            row["proposer"], str(row["votedPower"]), str(row["executedAt"] or "pending"),
        )  # fmt: skip
    console.print(table)


def _address(address: Address) -> str:
    return to_hex(address)
