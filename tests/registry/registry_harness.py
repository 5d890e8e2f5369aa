"""Shared pieces of the registry tests: a dev chain with the trust contracts bootstrapped
once, registry settings on a fresh database, department clients and signed raw requests."""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from e2e_harness import DevChain, free_port, run_cli

from chain.crypto import PrivateKey, sm3
from registry.bootstrap import bootstrap
from registry.chain_gateway import ChainGateway
from registry.cli import add_client
from registry.db import Database, migrate
from registry.department_keys import register_department_key
from registry.models import Client
from registry.settings import RegistrySettings
from sdk.account import Sm2Account
from sdk.license_metadata import InvalidMetadata
from sdk.license_signing import sign_license
from sdk.record_signing import sign_record
from sdk.trust import signed_headers

__all__ = ["DevChain", "free_port", "run_cli"]

DATABASE_URL_ENV = "LIANXIN_TEST_DATABASE_URL"
"""Set to a PostgreSQL URL to run the registry tests on PostgreSQL instead of SQLite."""

DEPARTMENT_USCC = "91350100M000100Y43"
"""The registry's own department (a published valid USCC)."""
CLIENT_USCC = "11100000000013338W"
"""The department of the test clients."""
CLIENT_DEPARTMENT_NAME = "区行政审批局"
"""Its name, in the registry and in IssuerRegistry."""
CLIENT_KEY = PrivateKey.from_bytes(sm3(b"registry tests: the test department's client key"))
"""The key of the test clients, registered in IssuerRegistry for CLIENT_USCC once per
session (the trust_chain fixture), so that the records they sign verify."""


@dataclass(frozen=True)
class TrustChain:
    """A running dev chain with the trust contracts deployed and the registry's signing key
    (dev account dept-a) registered as an issuer."""

    chain: DevChain
    """The chain and its node."""
    addresses: dict[str, str]
    """issuer_registry / notary / license_registry → 0x address."""

    @property
    def signer_keystore(self) -> Path:
        """Keystore of the registry's signing account."""
        return self.chain.root / "keys" / "dept-a.json"

    @property
    def password_file(self) -> Path:
        """The dev chain's keystore password file."""
        return self.chain.root / "keystore-password"


def bootstrap_trust(chain: DevChain, bootstrap_dir: Path) -> TrustChain:
    """Deploys the trust contracts on a running dev chain by its governance account (admin),
    registers dept-a's key as the registry's issuer key and the test department (CLIENT_USCC)
    with its client key CLIENT_KEY; the bootstrap's own registry database goes in
    ``bootstrap_dir``."""
    settings = RegistrySettings(
        data_dir=bootstrap_dir,
        node_url=chain.url,
        signer_keystore=chain.root / "keys" / "dept-a.json",
        signer_password_file=chain.root / "keystore-password",
    )
    db = Database.open(settings)
    gateway = ChainGateway(settings, db)
    try:
        governance = Sm2Account.from_keystore(chain.keystore("admin"), chain.password)
        outcome = bootstrap(
            gateway, governance, uscc=DEPARTMENT_USCC, department_name="某区大数据管理局"
        )
        register_department_key(
            gateway,
            governance,
            uscc=CLIENT_USCC,
            department_name=CLIENT_DEPARTMENT_NAME,
            public_key=CLIENT_KEY.public_key.to_bytes(),
        )
    finally:
        gateway.close()
        db.close()
    return TrustChain(
        chain=chain,
        addresses={
            "issuer_registry": outcome.issuer_registry,
            "notary": outcome.notary,
            "license_registry": outcome.license_registry,
        },
    )


def decoded_qr(png: bytes) -> str:
    """The text of the one QR code in the PNG ``png``. Only QR codes are looked for: a
    random token's modules can also read as a linear code by accident (seen: an ITF code
    beside the QR code, in about 1 of 200 token images)."""
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert len(found) == 1, [(str(symbol.format), symbol.text) for symbol in found]
    return str(found[0].text)


_SQLITE_TEMPLATE: list[Path] = []
"""This process's registry database migrated to the newest schema (made on first use)."""


def seed_sqlite(data_dir: Path) -> None:
    """Put a copy of a registry database already migrated to the newest schema at
    ``data_dir/registry.db``, the embedded default's file, unless one is there: the copy takes
    a millisecond, where running every migration on each test's new database took 0.1 s of
    CPU. The registry's start-up migration finds the schema at its head; tests of the
    migrations themselves make their databases as before."""
    target = data_dir / "registry.db"
    if target.exists():
        return
    if not _SQLITE_TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="lianxin-registry-template-"))
        atexit.register(shutil.rmtree, folder, True)
        Database.open(RegistrySettings(data_dir=folder)).close()
        assert (
            not (folder / "registry.db-wal").exists()
            or not (folder / "registry.db-wal").stat().st_size
        ), "the template's journal was not checkpointed at close"
        _SQLITE_TEMPLATE.append(folder / "registry.db")
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_SQLITE_TEMPLATE[0], target)


def registry_settings(
    trust: TrustChain, data_dir: Path, database_url: str | None, **overrides: Any
) -> RegistrySettings:
    """Settings of a registry on ``trust`` with its database at ``database_url`` (SQLite
    in ``data_dir`` if None), sealing every 0.2 s."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "node_url": trust.chain.url,
        "signer_keystore": trust.signer_keystore,
        "signer_password_file": trust.password_file,
        "batch_interval": 0.2,
        "issuer_registry_address": trust.addresses["issuer_registry"],
        "notary_address": trust.addresses["notary"],
        "license_registry_address": trust.addresses["license_registry"],
        "max_upload_bytes": 64 * 1024,
    }
    values.update(overrides)
    if values["database_url"] is None:
        seed_sqlite(data_dir)
    return RegistrySettings(**values)


def registry_environment(settings: RegistrySettings) -> dict[str, str]:
    """The environment that gives a registry process ``settings``."""
    environment = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            environment[f"LIANXIN_REGISTRY_{name.upper()}"] = str(value)
    return environment


def new_client(
    db: Database,
    roles: tuple[str, ...] = ("notarize", "verify"),
    *,
    key: PrivateKey = CLIENT_KEY,
    uscc: str = CLIENT_USCC,
    name: str = CLIENT_DEPARTMENT_NAME,
) -> tuple[Client, PrivateKey]:
    """A registered department client and its key (by default the test department's key,
    registered on chain, so that the records it signs verify)."""
    client = add_client(
        db, name=name, uscc=uscc, public_key_pem=key.public_key.to_pem(), roles=list(roles)
    )
    return client, key


def record_payload(
    key: PrivateKey, chain_id: int, idempotency_key: str | None = None, **record: Any
) -> dict[str, Any]:
    """The JSON body of one record (``digest`` or ``document``, ``metadata``, ``fields``)
    salted and signed by ``key`` for ``chain_id``, as ``POST /v1/records`` requires (salts
    derived from ``idempotency_key``: the same key gives the same body)."""
    salt_key = idempotency_key or str(uuid.uuid4())
    return sign_record(key, chain_id, idempotency_key=salt_key, **record).body


def signed_wire_record(
    key: PrivateKey, chain_id: int, record: dict[str, Any], idempotency_key: str | None
) -> dict[str, Any]:
    """``record`` as sent on the wire (hex ``digest`` or base64 ``document``), salted and
    signed; a record that cannot be signed (a malformed digest or document) goes as it is,
    for the registry to refuse."""
    if not isinstance(record, dict):
        return record
    fields = {name: value for name, value in record.items() if name in ("metadata", "fields")}
    try:
        if "digest" in record and "document" not in record:
            return record_payload(
                key, chain_id, idempotency_key, digest=bytes.fromhex(record["digest"]), **fields
            )
        if "document" in record and "digest" not in record:
            document = base64.b64decode(record["document"], validate=True)
            return record_payload(key, chain_id, idempotency_key, document=document, **fields)
    except (ValueError, TypeError, binascii.Error):
        pass
    return record


def signed_bulk_body(
    key: PrivateKey, chain_id: int, records: list[Any], idempotency_key: str | None
) -> dict[str, Any]:
    """The body of ``POST /v1/records/bulk`` with each record salted and signed (as the
    registry keys them: ``<key>#<index>``)."""
    return {
        "records": [
            signed_wire_record(
                key,
                chain_id,
                record,
                None if idempotency_key is None else f"{idempotency_key}#{index}",
            )
            for index, record in enumerate(records)
        ]
    }


def signed(
    key: PrivateKey, client_id: str, method: str, path: str, payload: Any = None, **kwargs: Any
) -> tuple[bytes, dict[str, str]]:
    """A request body and its authentication headers (``kwargs`` go to signed_headers)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = signed_headers(
        key, client_id=client_id, method=method, path=path, body=body, **kwargs
    )
    if payload is not None:
        headers["Content-Type"] = "application/json"
    return body, headers


def sign_license_body(
    key: PrivateKey,
    chain_id: int,
    body: Any,
    idempotency_key: str,
    predecessor: str | None = None,
    issuer_name: str = CLIENT_DEPARTMENT_NAME,
) -> Any:
    """``body`` of ``POST /v1/licenses`` salted and signed by ``key`` for ``chain_id``
    (salt derived from ``idempotency_key``); a body that cannot be signed (metadata the
    registry must refuse) goes as it is, for the registry to answer."""
    if not isinstance(body, dict):
        return body
    try:
        return sign_license(
            key,
            chain_id,
            body,
            issuer_name=issuer_name,
            idempotency_key=idempotency_key,
            predecessor=predecessor,
        ).body
    except (InvalidMetadata, ValueError, TypeError):
        return body


def row_counts(db: Database) -> dict[str, int]:
    """Rows in the tables a request could write to."""
    counts = {}
    with db.session() as session:
        for table in ("records", "nonces", "batches", "outbox"):
            counts[table] = int(session.scalar(select(func.count()).select_from(text(table))) or 0)
    return counts


_TEMPLATES: dict[str, str] = {}
"""This process's migrated template database per server (base URL -> database name)."""
_TEMPLATE_LOCK = threading.Lock()
_DROPPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-database")
"""Drops a test's database after the test, off its path (the executor's thread is joined at
interpreter exit, so every drop finishes before the templates are dropped)."""


def create_postgres_database(base_url: str, *, migrated: bool = False) -> str:
    """A new PostgreSQL database on the server of ``base_url``; returns its URL.

    Empty, or with ``migrated`` a copy of a database this process migrated to the newest
    schema once (``CREATE DATABASE ... TEMPLATE``): 0.06-0.1 s here, where running every
    migration on each test's database took 0.4-0.6 s. The registry's own start-up migration
    then finds the schema at its head and does nothing."""
    url = make_url(base_url)
    name = f"lianxin_test_{uuid.uuid4().hex[:12]}"
    template = _migrated_template(base_url) if migrated else None
    clause = f' TEMPLATE "{template}"' if template else ""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _migrated_template(base_url: str) -> str:
    """The name of this process's template database on ``base_url``'s server, migrated to the
    newest schema; made on first use, dropped at exit. Nothing stays connected to it, as
    ``CREATE DATABASE ... TEMPLATE`` requires."""
    with _TEMPLATE_LOCK:
        name = _TEMPLATES.get(base_url)
        if name is None:
            template_url = create_postgres_database(base_url)
            engine = create_engine(template_url)
            try:
                migrate(engine)
            finally:
                engine.dispose()
            name = str(make_url(template_url).database)
            if not _TEMPLATES:
                atexit.register(_drop_templates)
            _TEMPLATES[base_url] = name
        return name


def _drop_templates() -> None:
    _DROPPER.shutdown(wait=True)
    for base_url, name in _TEMPLATES.items():
        with contextlib.suppress(Exception):
            _drop(base_url, name)


def drop_postgres_database(base_url: str, database_url: str) -> None:
    """Drop a database made by :func:`create_postgres_database`, in the background (it waits
    for the server to close the database's connections: up to 0.7 s here)."""
    name = make_url(database_url).database
    assert name is not None
    _DROPPER.submit(_drop, base_url, name)


def _drop(base_url: str, name: str) -> None:
    admin = create_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def start_registry(
    environment: dict[str, str], log: Path, timeout_s: float = 60.0
) -> subprocess.Popen[bytes]:
    """``python -m registry`` in the background (output appended to ``log``), waited for until
    it answers; killed, with its log in the failure, if it exits or does not answer in
    ``timeout_s``."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_serving(process, int(environment["LIANXIN_REGISTRY_PORT"]), log, timeout_s)
    return process


class _Started(Protocol):
    def poll(self) -> int | None: ...

    def kill(self) -> None: ...


def wait_serving(process: _Started, port: int, log: Path, timeout_s: float) -> None:
    """Wait until the registry ``process`` answers on ``port``; kill it and fail with its
    ``log`` if it exits or does not answer within ``timeout_s``."""
    url = f"http://127.0.0.1:{port}/openapi.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"registry did not start: {log.read_text()}")
