"""Split a network directory made by ``lianxin net init`` into one directory per node, to
copy to that node's host: the department receives its own validator key and nothing of any
other department's.

A bundle ``OUT/node-i/`` holds::

    genesis.toml            the chain's genesis (public)
    node-i/node.toml        the node's configuration (listen and peer addresses as initialised)
    node-i/validator.json   this node's validator key, in its SM4 keystore

The keystore password is not in any bundle: the operator puts it in
``OUT/node-i/keystore-password`` (mode 0600) on the host, or sets the environment variable the
configuration names. Account keys (``keys/``) stay with whoever made the network.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from node.chain_dir import ChainDirError

_NODE_FILES = ("node.toml", "validator.json")


def bundle_network(network: Path, out: Path) -> list[Path]:
    """Write one bundle per node folder of ``network`` into the new directory ``out``;
    returns the bundles' paths. Raises ChainDirError."""
    genesis = network / "genesis.toml"
    folders = sorted(
        (path for path in network.glob("node-*") if (path / "node.toml").is_file()),
        key=lambda path: int(path.name.removeprefix("node-")),
    )
    if not genesis.is_file() or not folders:
        raise ChainDirError(f"{network} is not a network directory made by `lianxin net init`")
    if out.exists() and any(out.iterdir()):
        raise ChainDirError(f"{out} is not empty")
    bundles = []
    for folder in folders:
        bundle = out / folder.name
        (bundle / folder.name).mkdir(parents=True)
        bundle.chmod(0o700)
        shutil.copyfile(genesis, bundle / "genesis.toml")
        for name in _NODE_FILES:
            if (folder / name).is_file():
                target = bundle / folder.name / name
                shutil.copyfile(folder / name, target)
                target.chmod(0o600)
        bundles.append(bundle)
    return bundles
