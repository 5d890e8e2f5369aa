"""``python -m registry.authorizations.cli …``: list and inspect data-sharing
authorizations and access logs, a client of the registry through
:class:`sdk.data_client.DataClient` (run as its own process).

- ``list``: the department's authorizations (``--subject``: the enterprise's own);
- ``show ID``: one authorization with its terms, consent and anchored events;
- ``accesses ID``: the accesses citing it, in hash-chain order; ``--verify`` checks the
  chain and every anchored receipt offline against the node's validator set;
- ``tracker``: as an enterprise, who accessed its data.

The registry, the client id and the key (PEM) come from options or the environment
(``LIANXIN_REGISTRY_URL``, ``LIANXIN_CLIENT_ID``, ``LIANXIN_CLIENT_KEY_FILE``). Output is
JSON on stdout.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.crypto import PrivateKey
from sdk.chain_reader import ChainReader
from sdk.data_client import AccessRecord, Authorization, DataClient
from sdk.data_receipts import ReceiptInvalid, verify_receipt
from sdk.trust_types import RegistryError

app = typer.Typer(help="Data-sharing authorizations and access logs.", no_args_is_help=True)

RegistryUrl = Annotated[
    str, typer.Option(envvar="LIANXIN_REGISTRY_URL", help="the registry's base URL")
]
ClientId = Annotated[str, typer.Option(envvar="LIANXIN_CLIENT_ID", help="registered client id")]
KeyFile = Annotated[
    Path, typer.Option(envvar="LIANXIN_CLIENT_KEY_FILE", help="the client's SM2 key (PEM)")
]


def _client(registry: str, client_id: str, key_file: Path) -> DataClient:
    return DataClient(registry, client_id, PrivateKey.from_pem(key_file.read_bytes()))


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict | list):
        return value
    return str(value)


def _authorization_json(found: Authorization) -> dict[str, Any]:
    return {
        "id": found.id,
        "status": found.status,
        "terms": dict(found.terms),
        "termsHash": found.terms_hash,
        "consent": found.consent,
        "usesMade": found.uses_made,
        "revokedAt": found.revoked_at,
        "events": [
            {"kind": e["kind"], "at": e["at"], "anchored": e.get("bundle") is not None}
            for e in found.events
        ],
    }


def _access_json(access: AccessRecord) -> dict[str, Any]:
    return {
        "recordId": access.record_id,
        "authorizationId": access.authorization_id,
        "position": access.receipt.entry["position"],
        "caller": access.caller,
        "item": access.item,
        "purpose": access.purpose,
        "outcome": access.outcome,
        "at": access.at,
        "blockNumber": access.block_number,
    }


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("list")
def list_authorizations(
    registry: RegistryUrl,
    client_id: ClientId,
    key_file: KeyFile,
    subject: Annotated[bool, typer.Option(help="as the enterprise the data is about")] = False,
) -> None:
    """The department's authorizations, or with --subject the enterprise's own."""
    try:
        with _client(registry, client_id, key_file) as client:
            found = client.tracker_authorizations() if subject else client.authorizations()
    except RegistryError as exc:
        raise _fail(exc) from None
    _print([_authorization_json(item) for item in found])


@app.command("show")
def show(
    authorization_id: str, registry: RegistryUrl, client_id: ClientId, key_file: KeyFile
) -> None:
    """One authorization: terms, consent evidence, anchored events."""
    try:
        with _client(registry, client_id, key_file) as client:
            found = client.authorization(authorization_id)
    except RegistryError as exc:
        raise _fail(exc) from None
    _print(_authorization_json(found))


@app.command("accesses")
def accesses(
    authorization_id: str,
    registry: RegistryUrl,
    client_id: ClientId,
    key_file: KeyFile,
    verify: Annotated[
        bool, typer.Option(help="check the hash chain and every anchored receipt offline")
    ] = False,
    node_url: Annotated[
        str | None, typer.Option(envvar="LIANXIN_NODE_URL", help="node to read validators from")
    ] = None,
) -> None:
    """The accesses citing one authorization, in hash-chain order."""
    try:
        with _client(registry, client_id, key_file) as client:
            found = client.stream(authorization_id)
            key, chain_id = client.registry_facts() if verify else (b"", 0)
    except RegistryError as exc:
        raise _fail(exc) from None
    listed = [_access_json(access) for access in found]
    if verify:
        if node_url is None:
            raise _fail(ValueError("--verify needs --node-url (the validators to trust)"))
        try:
            DataClient.verify_stream(found)
            with ChainReader(node_url) as reader:
                validators = reader.validators()
            for entry, access in zip(listed, found, strict=True):
                if access.receipt.bundle is None:
                    entry["verified"] = "not anchored yet"
                    continue
                verify_receipt(access.receipt, validators, chain_id=chain_id, registry_key=key)
                entry["verified"] = True
        except ReceiptInvalid as exc:
            raise _fail(exc) from None
    _print(listed)


@app.command("tracker")
def tracker(registry: RegistryUrl, client_id: ClientId, key_file: KeyFile) -> None:
    """As an enterprise: who accessed its data, newest first."""
    try:
        with _client(registry, client_id, key_file) as client:
            found = client.tracker_accesses()
    except RegistryError as exc:
        raise _fail(exc) from None
    _print([_access_json(access) for access in found])


if __name__ == "__main__":
    app()
