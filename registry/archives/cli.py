"""``lianxin archives``: the archive's own commands, run as their own process (the node's
command line hands ``lianxin archives ...`` to ``python -m registry.archives.cli``).

- ``audit``: re-hash every stored file now (resuming an interrupted audit), with a progress
  bar; records fixity events, prints each finding; exit status 1 if anything differs, 2 if
  another audit of the store (the registry's scheduled one) is running.
- ``verify DIP.zip --genesis GENESIS``: verify an access copy offline, down to each file,
  against the validator set and chain id of a genesis file the verifier trusts.

Heavy imports happen inside the commands: the audit's worker processes import this module
and need none of them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="E-archives: fixity audits, access copy verification.", no_args_is_help=True)


@app.command()
def audit() -> None:
    """Re-hash every stored file and compare with the anchored manifests."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from archives.audit import count_files
    from archives.errors import AuditBusy
    from registry.archives.auditing import run_audit
    from registry.archives.service import ArchiveService
    from registry.chain_gateway import ChainGateway
    from registry.db import Database
    from registry.settings import RegistrySettings

    settings = RegistrySettings()
    db = Database.open(settings)
    gateway = ChainGateway(settings, db)
    try:
        service = ArchiveService(db, gateway, settings)
        files, size = count_files(service.store)
        with Progress(
            TextColumn("auditing"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[files]} files"),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("audit", total=size, files=0)

            def progress(done_files: int, done_bytes: int) -> None:
                bar.update(task, completed=done_bytes, files=done_files)

            try:
                result = run_audit(service, progress=progress)
            except AuditBusy as exc:
                typer.echo(f"not audited: {exc}", err=True)
                raise typer.Exit(2) from exc
        typer.echo(
            f"audit {result.audit_id}: {len(result.packages)} package versions, "
            f"{result.files} files hashed ({result.resumed_files} from the checkpoint), "
            f"{files} on disk"
        )
        for finding in result.findings:
            typer.echo(
                f"FIXITY {finding.kind.value}: {finding.package_id} v{finding.version} "
                f"{finding.path} expected {finding.expected_sm3 or '-'} "
                f"found {finding.actual_sm3 or '-'} {finding.detail}".rstrip()
            )
    finally:
        gateway.close()
        db.close()
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def verify(
    dip: Annotated[Path, typer.Argument(help="the access copy (zip)")],
    genesis: Annotated[
        Path, typer.Option(help="genesis file of the chain: its validators and chain id")
    ],
) -> None:
    """Verify an access copy offline, down to each file."""
    from chain.genesis import parse_genesis
    from sdk.archive_bundle import DipInvalid, verify_dip

    chain = parse_genesis(genesis.read_text(encoding="utf-8"))
    try:
        verdict = verify_dip(dip, chain.validator_set(), chain_id=chain.chain_id)
    except DipInvalid as exc:
        typer.echo(f"not an access copy: {exc}", err=True)
        raise typer.Exit(2) from exc
    description = verdict.description
    typer.echo(
        f"{description.get('档号', '?')} {description.get('题名', '')} "
        f"(package {verdict.package_id} v{verdict.version}, root {verdict.root})"
    )
    for check in verdict.checks:
        typer.echo(f"{'OK  ' if check.ok else 'FAIL'} {check.subject}: {check.detail}")
    typer.echo("VALID" if verdict.valid else "INVALID")
    if not verdict.valid:
        raise typer.Exit(1)


def main() -> None:
    """Run the command line."""
    app(args=sys.argv[1:], prog_name="lianxin archives")


if __name__ == "__main__":
    main()
