"""The ``lianxin`` command line for node operators: the table of its commands and groups, each
defined in its own ``node.cli_*`` module, and the entry point.

Exit codes (see :mod:`node.cli_common`): 0 success, 1 the checked thing is bad (e.g.
verify-chain found a fault), 2 usage or configuration error, 3 the node could not be reached
or answered with what is not a node's answer.
"""

from __future__ import annotations

import sys

import typer

from node.cli_accounts import accounts_app
from node.cli_apps import (
    PASSED_ON,
    archives,
    credit,
    data,
    explorer,
    registry,
    verify_evidence,
)
from node.cli_chain import block, receipt, tx, verify_chain_command
from node.cli_common import EXIT_USAGE, errors
from node.cli_contract import contract_app
from node.cli_init import dev, init
from node.cli_keys import keys_app
from node.cli_net import net_app
from node.cli_node import node_app
from node.cli_validators import validators_app

app = typer.Typer(help="lianxin (链信): operate a consortium chain node.", no_args_is_help=True)
# `lianxin --help` lists the commands in this order, then the groups in theirs.
app.command()(init)
app.command()(block)
app.command()(tx)
app.command()(receipt)
app.command("verify-chain")(verify_chain_command)
app.command()(dev)
app.command(**PASSED_ON)(registry)
app.command(**PASSED_ON)(archives)
app.command(**PASSED_ON)(data)
app.command(**PASSED_ON)(credit)
app.command(**PASSED_ON)(explorer)
app.command("verify-evidence", context_settings={"allow_extra_args": True})(verify_evidence)
app.add_typer(node_app, name="node")
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(contract_app, name="contract")
app.add_typer(net_app, name="net")
app.add_typer(validators_app, name="validators")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except Exception as exc:
        # Only a command that has imported node.chain_dir raises its ChainDirError, so this
        # import costs that command nothing; other errors pass on unchanged.
        from node.chain_dir import ChainDirError

        if not isinstance(exc, ChainDirError):
            raise
        errors.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
