"""``lianxin registry``: administer the registry — department clients, bootstrap on a
chain, migrations, serving. Settings come from the environment (``LIANXIN_REGISTRY_*``);
``lianxin registry`` (:mod:`node.cli`) fills in those of the chain in its ``--dir``
(default ``devchain``): the data dir ``<dir>/registry``, the node, the signing account."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.engine import make_url

from chain.crypto import PublicKey
from chain.errors import ChainError, InvalidKey
from registry.bootstrap import bootstrap
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.department_keys import register_department_key
from registry.errors import RegistryError
from registry.issuers import checked_issuer_codes, issuer_codes_of
from registry.models import Client
from registry.settings import RegistrySettings
from sdk.account import Sm2Account
from sdk.chain_reader import ChainUnavailable
from sdk.identifiers import InvalidIdentifier, validate_uscc

PROG_NAME = "lianxin registry"
"""How these commands are invoked (and how their help names them)."""

app = typer.Typer(
    help="Administer the lianxin registry: department clients, bootstrap, serving. "
    "The registry is the one of the chain in --dir (default devchain, its data in "
    "DIR/registry) unless LIANXIN_REGISTRY_DATA_DIR or LIANXIN_REGISTRY_DATABASE_URL "
    "name another.",
    no_args_is_help=True,
)
clients_app = typer.Typer(help="Department systems allowed to call the registry.")
app.add_typer(clients_app, name="clients")

GovernanceKeystore = Annotated[
    Path | None,
    typer.Option(help="keystore of the chain's governance account, to register the key on chain"),
]
GovernancePasswordFile = Annotated[
    Path | None, typer.Option(help="password file of the governance keystore")
]

DEFAULT_ROLES = ("notarize", "verify")
"""Roles a new client gets unless told otherwise."""
KNOWN_ROLES = frozenset(
    {
        "notarize",
        "verify",
        "licenses",
        "data",
        "identity",
        "subject",
        "credit",
        "credit_office",
        "archive_audit",
    }
)
"""Roles a client may hold: ``data`` grants authorizations and reads through the data
gateway, ``identity`` attests citizens' approvals (an identity provider), ``subject`` is an
enterprise acting on its own authorizations and access log, ``archive_audit`` asks for
fixity audits of any department's archive package."""


def add_client(
    db: Database,
    *,
    name: str,
    uscc: str,
    public_key_pem: bytes,
    roles: list[str],
    issuer_codes: list[str] | None = None,
) -> Client:
    """Register a client, bound to ``issuer_codes`` (and its own USCC) as the authorities
    it may issue licenses for; raises ValueError for a bad USCC, key, role or issuer code
    (and then stores nothing)."""
    client = new_client(
        name=name, uscc=uscc, public_key_pem=public_key_pem, roles=roles, issuer_codes=issuer_codes
    )
    with db.session() as session:
        session.add(client)
    return client


def new_client(
    *,
    name: str,
    uscc: str,
    public_key_pem: bytes,
    roles: list[str],
    issuer_codes: list[str] | None = None,
) -> Client:
    """The client row :func:`add_client` stores, checked but not stored; raises ValueError
    for a bad USCC, key, role or issuer code."""
    try:
        code = validate_uscc(uscc)
    except InvalidIdentifier as exc:
        raise ValueError(f"invalid USCC: {exc}") from exc
    bound_codes = checked_issuer_codes(code, issuer_codes or ())
    try:
        key = PublicKey.from_pem(public_key_pem)
    except InvalidKey as exc:
        raise ValueError(f"invalid SM2 public key: {exc}") from exc
    unknown = set(roles) - KNOWN_ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    return Client(
        id=str(uuid.uuid4()),
        name=name,
        uscc=code,
        public_key=key.to_bytes().hex(),
        roles=sorted(set(roles)),
        issuer_codes=bound_codes,
        created_at=datetime.now(UTC),
    )


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Option(help="display name of the department system")],
    uscc: Annotated[str, typer.Option(help="the department's unified social credit code")],
    public_key_pem: Annotated[Path, typer.Option(help="PEM file of the client's SM2 public key")],
    role: Annotated[list[str] | None, typer.Option(help="role (repeatable)")] = None,
    issuer_code: Annotated[
        list[str] | None,
        typer.Option(
            help="a further USCC or 6-digit administrative division code it may issue "
            "licenses as (repeatable; its own USCC always)"
        ),
    ] = None,
    governance_keystore: GovernanceKeystore = None,
    governance_password_file: GovernancePasswordFile = None,
) -> None:
    """Register a department client in an existing registry database; prints its id as
    JSON. Everything is checked before the database is opened: a refused client changes
    nothing and creates nothing. With a governance keystore, also register its department
    and key on chain (as `clients register-key` does)."""
    governance = _governance_account(governance_keystore, governance_password_file)
    try:
        client = new_client(
            name=name,
            uscc=uscc,
            public_key_pem=public_key_pem.read_bytes(),
            roles=list(role or DEFAULT_ROLES),
            issuer_codes=list(issuer_code or ()),
        )
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = RegistrySettings()
    db = _open_existing_database(settings)
    try:
        with db.session() as session:
            session.add(client)
        if governance is not None:
            _register_key_on_chain(settings, db, client, governance)
    finally:
        db.close()
    typer.echo(json.dumps(_client_json(client), ensure_ascii=False))


def _client_json(client: Client) -> dict[str, object]:
    return {
        "id": client.id,
        "name": client.name,
        "uscc": client.uscc,
        "roles": client.roles,
        "issuer_codes": sorted(issuer_codes_of(client)),
    }


def _governance_account(keystore: Path | None, password_file: Path | None) -> Sm2Account | None:
    """The governance account of ``keystore`` (None if not given); exits 2 when only one of
    the two is given, or they do not open."""
    if keystore is None and password_file is None:
        return None
    if keystore is None or password_file is None:
        typer.echo(
            "error: give both --governance-keystore and --governance-password-file", err=True
        )
        raise typer.Exit(2)
    try:
        return Sm2Account.from_keystore(keystore.read_bytes(), password_file.read_bytes().strip())
    except (OSError, ChainError) as exc:
        typer.echo(f"error: cannot open the governance keystore: {exc}", err=True)
        raise typer.Exit(2) from exc


def _register_key_on_chain(
    settings: RegistrySettings, db: Database, client: Client, governance: Sm2Account
) -> None:
    """Register ``client``'s department and key in IssuerRegistry; exits 1 if the chain
    refuses or cannot be reached."""
    gateway = ChainGateway(settings, db)
    try:
        register_department_key(
            gateway,
            governance,
            uscc=client.uscc,
            department_name=client.name,
            public_key=bytes.fromhex(client.public_key),
        )
    except (RegistryError, ChainUnavailable) as exc:
        typer.echo(f"error: registering the key on chain: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        gateway.close()


@clients_app.command("list")
def clients_list() -> None:
    """List registered clients as JSON."""
    db = _open_existing_database(RegistrySettings())
    with db.session() as session:
        rows = session.scalars(select(Client).order_by(Client.created_at)).all()
        typer.echo(
            json.dumps(
                [_client_json(c) for c in rows],
                ensure_ascii=False,
            )
        )
    db.close()


@clients_app.command("register-key")
def clients_register_key(
    client_id: Annotated[str, typer.Argument(help="the client's id")],
    governance_keystore: GovernanceKeystore = None,
    governance_password_file: GovernancePasswordFile = None,
) -> None:
    """Register the client's department (USCC and name) and the client's key in the
    chain's IssuerRegistry, signed by the governance account, so that the records and
    licenses the client signs verify as its department's. What is registered already is
    left as it is. Prints the client as JSON."""
    governance = _governance_account(governance_keystore, governance_password_file)
    if governance is None:
        typer.echo("error: give --governance-keystore and --governance-password-file", err=True)
        raise typer.Exit(2)
    settings = RegistrySettings()
    db = _open_existing_database(settings)
    try:
        with db.read_session() as session:
            client = session.get(Client, client_id)
        if client is None:
            typer.echo(f"error: no client {client_id}", err=True)
            raise typer.Exit(2)
        _register_key_on_chain(settings, db, client, governance)
    finally:
        db.close()
    typer.echo(json.dumps(_client_json(client), ensure_ascii=False))


def _open_existing_database(settings: RegistrySettings) -> Database:
    """The registry database of ``settings``, migrated; exits 2 (creating nothing) when it
    is an SQLite file that does not exist yet."""
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        typer.echo(
            f"error: no registry database at {url.database}: run `lianxin dev` (or "
            "`lianxin registry migrate`) first, or name the chain with --dir, or the "
            "database with LIANXIN_REGISTRY_DATA_DIR / LIANXIN_REGISTRY_DATABASE_URL",
            err=True,
        )
        raise typer.Exit(2)
    return Database.open(settings)


@app.command("bootstrap")
def bootstrap_command(
    governance_keystore: Annotated[Path, typer.Option(help="keystore of the governance account")],
    governance_password_file: Annotated[Path, typer.Option(help="its password file")],
    uscc: Annotated[str, typer.Option(help="USCC of the registry's department")],
    department_name: Annotated[str, typer.Option(help="name of that department")],
) -> None:
    """Deploy the trust contracts, register the registry's department and signing key, and
    record the addresses; prints them as JSON."""
    settings = RegistrySettings()
    db = Database.open(settings)
    gateway = ChainGateway(settings, db)
    governance = Sm2Account.from_keystore(
        governance_keystore.read_bytes(), governance_password_file.read_bytes().strip()
    )
    try:
        result = bootstrap(gateway, governance, uscc=uscc, department_name=department_name)
    finally:
        gateway.close()
        db.close()
    typer.echo(json.dumps(result.__dict__))


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""
    Database.open(RegistrySettings()).close()


@app.command("start")
def start_command(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8600,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="API processes sharing the port (default: LIANXIN_REGISTRY_WORKERS or 1); "
            "one of them at a time runs the batcher and anchorer",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Start the registry server (API, verify pages, batcher and anchorer); prints where
    the API and its interactive documentation are served."""
    from registry.server import serve

    processes = workers if workers is not None else RegistrySettings().workers
    base = f"http://{host}:{port}"
    typer.echo(f"API:           {base}/v1")
    typer.echo(f"Docs:          {base}/docs")
    typer.echo(f"Verify pages:  {base}/v/<license identifier or token>")
    if processes > 1:
        typer.echo(f"Processes:     {processes}")
    serve(host, port, workers=processes, log_level=log_level)


@app.command("backup")
def backup_command(
    dest: Annotated[Path, typer.Argument(help="new (or empty) directory to write the backup into")],
) -> None:
    """Copy the registry — its database and its archive store — into DEST while it runs and
    serves: SQLite through SQLite's online backup API, PostgreSQL with pg_dump -Fc (the
    client tools of the server's major version or later must be on PATH), then the archive
    packages the database copy names, each file checked against its package's SM3 manifest.
    DEST/backup.json lists every file with its SM3. Progress goes to stderr; prints the
    manifest's summary as JSON."""
    from registry.backup import RegistryBackupError, backup_registry

    try:
        manifest = backup_registry(RegistrySettings(), dest, step=_progress)
    except RegistryBackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    files = manifest["files"]
    summary = {
        "path": str(dest),
        "database": manifest["database"],
        "archivePackages": len(manifest["archives"]["packages"]),
        "archiveTombstones": len(manifest["archives"]["tombstones"]),
        "skipped": manifest["archives"]["skipped"],
        "files": len(files),
        "bytes": sum(int(entry["bytes"]) for entry in files.values()),
        "startedAt": manifest["startedAt"],
        "finishedAt": manifest["finishedAt"],
    }
    typer.echo(json.dumps(summary, ensure_ascii=False))


@app.command("restore")
def restore_command(
    src: Annotated[Path, typer.Argument(help="a directory made by `lianxin registry backup`")],
    force: Annotated[
        bool,
        typer.Option(help="replace what the target database holds (stop the registry first)"),
    ] = False,
) -> None:
    """Restore SRC onto a fresh data dir or an empty database: every file is checked against
    SRC/backup.json first (a missing, extra or altered file: nothing is written), the
    database is copied in (SQLite's backup API, or pg_restore into an empty database; one
    that holds tables is refused unless --force), then the archive packages, then the schema
    is brought up to date. Prints what was restored as JSON."""
    from registry.backup import RegistryBackupError, restore_registry

    try:
        summary = restore_registry(RegistrySettings(), src, force=force, step=_progress)
    except RegistryBackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(summary.to_json(), ensure_ascii=False))


def _progress(what: str) -> None:
    typer.echo(f"{datetime.now(UTC):%H:%M:%S} {what}", err=True)


def main() -> None:
    """Console entry point (``python -m registry.cli``, run by ``lianxin registry``)."""
    app(prog_name=PROG_NAME)


if __name__ == "__main__":
    main()
