"""Real activity on a dev chain for the explorer's tests and bench: the trust contracts
deployed by the governance account, a department registered with dept-a's key, batches
anchored and revoked (a whole batch and one leaf), a license through its lifecycle, and
Permissions grants, a freeze and an unfreeze. Every step is a signed transaction through the
node's JSON-RPC, as a department system would send it."""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from e2e_harness import DevChain, cli_environment, free_port, lianxin_command

from chain.crypto import sm3
from chain.merkle import leaf_hash, merkle_root
from contracts.permissions import PERMISSIONS_ADDRESS, freeze_call, grant_call, unfreeze_call
from contracts.trust import OPEN_ENDED, ContractCodec, Reason, Role, license_id_hash, uscc_bytes
from node.rpc_client import RpcError, rpc_call
from sdk.account import Sm2Account
from sdk.chain_reader import ChainReader, TxReceipt

__all__ = [
    "Activity",
    "DevChain",
    "free_port",
    "make_activity",
    "run_lianxin",
    "shared_chain",
    "start_dev_chain",
    "start_node",
]

NODE_START_SECONDS = 120.0
INIT_SECONDS = 600.0
DEPLOY_GAS = 8_000_000
CALL_GAS = 1_000_000

DEPARTMENT_USCC = "11100000000013338W"
DEPARTMENT_NAME = "区行政审批局"
LICENSE_ID = "1.2.156.3005.2.11100000000013338W.0001.1.X"
CHANGED_LICENSE_ID = "1.2.156.3005.2.11100000000013338W.0001.2.X"

ISSUER_REGISTRY = ContractCodec.load("IssuerRegistry")
NOTARY = ContractCodec.load("Notary")
LICENSES = ContractCodec.load("LicenseRegistry")


_shared: tuple[DevChain, Activity] | None = None


def shared_chain() -> tuple[DevChain, Activity]:
    """One dev chain with :func:`make_activity` done, for every explorer test of this
    process (the explorer tests and the explorer's browser tests share it: making the
    activity is the expensive part). Its node is killed when the process exits."""
    global _shared
    if _shared is None:
        root = Path(tempfile.mkdtemp(prefix="lianxin-explorer-")) / "chain"
        chain = start_dev_chain(root)
        atexit.register(shutil.rmtree, root.parent, True)
        atexit.register(chain.kill_leftovers)
        _shared = (chain, make_activity(chain))
    return _shared


def run_lianxin(*args: str) -> subprocess.CompletedProcess[str]:
    """``lianxin ARGS`` to completion, waited for as long as a busy machine needs."""
    return subprocess.run(
        [*lianxin_command(), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=cli_environment(),
        timeout=INIT_SECONDS,
        check=False,
    )


def start_dev_chain(root: Path) -> DevChain:
    """``lianxin init --dev`` in ``root`` and its node started as a child process."""
    port = free_port()
    # As run_cli, with a longer wait: making the keystores is CPU-bound and slow when the
    # machine is busy.
    completed = run_lianxin("init", str(root), "--dev", "--rpc-port", str(port), "--json")
    assert completed.returncode == 0, completed.stderr
    chain = DevChain(root=root, port=port, accounts=json.loads(completed.stdout)["accounts"])
    start_node(chain)
    return chain


def start_node(chain: DevChain) -> subprocess.Popen[bytes]:
    """``lianxin node start`` on ``chain`` as a child process, waited for until it answers
    (opening its keystore takes long on a busy machine, so the wait is generous)."""
    command = [*lianxin_command(), "node", "start", "--dir", str(chain.root)]
    with open(chain.root / "foreground.log", "ab") as log:
        process = subprocess.Popen(
            [*command, "--log-level", "WARNING"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_environment(),
        )
    chain.foreground.append(process)
    deadline = time.monotonic() + NODE_START_SECONDS
    while True:
        assert process.poll() is None, f"the node exited with {process.returncode}"
        try:
            rpc_call(chain.url, "eth_blockNumber", timeout=1)
            return process
        except RpcError:
            assert time.monotonic() < deadline, "the node did not answer"
            time.sleep(0.1)


@dataclass
class Activity:
    """What :func:`make_activity` did, for the tests to look up."""

    addresses: dict[str, bytes] = field(default_factory=dict)
    receipts: dict[str, TxReceipt] = field(default_factory=dict)
    batch_root: bytes = b""
    revoked_leaf: bytes = b""
    license_hash: bytes = b""
    changed_license_hash: bytes = b""
    issuer: bytes = b""


def _ok(receipt: TxReceipt, what: str) -> TxReceipt:
    assert receipt.status == 1, f"{what} reverted"
    return receipt


def make_activity(
    chain: DevChain, uscc: str = DEPARTMENT_USCC, name: str = DEPARTMENT_NAME
) -> Activity:
    """Run the scenario of the module docstring on ``chain``, the department registered
    under ``uscc`` and ``name`` (another USCC than the default leaves that one free for a
    registry bootstrapped on the same chain, whose department it is)."""
    admin = Sm2Account.from_keystore(chain.keystore("admin"), chain.password)
    issuer = Sm2Account.from_keystore(chain.keystore("dept-a"), chain.password)
    other = bytes.fromhex(chain.accounts["dept-b"].removeprefix("0x"))
    done = Activity(issuer=bytes(issuer.address))
    with ChainReader(chain.url) as reader:

        def send(name: str, account: Sm2Account, to: bytes | None, data: bytes) -> TxReceipt:
            # A fixed gas limit: no estimate, whose EVM run may exceed the node's call timeout
            # on a busy machine.
            gas = DEPLOY_GAS if to is None else CALL_GAS
            receipt = _ok(reader.transact(account, to=to, data=data, gas_limit=gas), name)
            done.receipts[name] = receipt
            return receipt

        for contract, codec, args in (
            ("IssuerRegistry", ISSUER_REGISTRY, (admin.address,)),
            ("Notary", NOTARY, None),
            ("LicenseRegistry", LICENSES, None),
        ):
            deployed = send(
                f"deploy {contract}",
                admin,
                None,
                codec.deploy_data(*(args or (done.addresses["IssuerRegistry"],))),
            )
            assert deployed.contract_address is not None
            done.addresses[contract] = bytes(deployed.contract_address)
        registry, notary, licenses = (
            done.addresses["IssuerRegistry"],
            done.addresses["Notary"],
            done.addresses["LicenseRegistry"],
        )
        code = uscc_bytes(uscc)
        send(
            "register",
            admin,
            registry,
            ISSUER_REGISTRY.encode_call("registerDepartment", code, name),
        )
        send(
            "add key",
            admin,
            registry,
            ISSUER_REGISTRY.encode_call(
                "addKey",
                code,
                bytes(issuer.public_key_bytes),
                int(Role.ISSUER | Role.REVOKER),
                0,
                OPEN_ENDED,
            ),
        )
        leaves = [sm3(b"record one"), sm3(b"record two")]
        done.batch_root = merkle_root(leaves)
        send("anchor", issuer, notary, NOTARY.encode_call("anchor", done.batch_root, 2, sm3(b"m")))
        done.revoked_leaf = leaves[0]
        send(
            "revoke leaf",
            issuer,
            notary,
            NOTARY.encode_call(
                "revokeLeaf",
                done.batch_root,
                leaves[0],
                [leaf_hash(leaves[1])],
                0,
                0,
                int(Reason.ISSUED_IN_ERROR),
            ),
        )
        second = merkle_root([sm3(b"record three")])
        send("anchor 2", issuer, notary, NOTARY.encode_call("anchor", second, 1, sm3(b"m2")))
        send(
            "revoke batch",
            issuer,
            notary,
            NOTARY.encode_call("revokeBatch", second, int(Reason.KEY_COMPROMISE)),
        )
        done.license_hash = license_id_hash(LICENSE_ID)
        done.changed_license_hash = license_id_hash(CHANGED_LICENSE_ID)
        holder = sm3(b"holder commitment")
        lid, new_id = done.license_hash, done.changed_license_hash
        send("issue", issuer, licenses, LICENSES.encode_call("issue", lid, holder, sm3(b"l"), 0))
        suspend = LICENSES.encode_call("suspend", lid, int(Reason.UNDER_INVESTIGATION))
        send("suspend", issuer, licenses, suspend)
        send("resume", issuer, licenses, LICENSES.encode_call("resume", lid, int(Reason.RESTORED)))
        change = LICENSES.encode_call(
            "change", lid, new_id, holder, sm3(b"l2"), 0, int(Reason.DATA_CHANGED)
        )
        send("change", issuer, licenses, change)
        send(
            "revoke license",
            issuer,
            licenses,
            LICENSES.encode_call("revoke", new_id, int(Reason.LEGAL_DECISION)),
        )
        send("grant", admin, PERMISSIONS_ADDRESS, grant_call(other, 8))
        send("freeze", admin, PERMISSIONS_ADDRESS, freeze_call(other))
        send("unfreeze", admin, PERMISSIONS_ADDRESS, unfreeze_call(other))
    return done
