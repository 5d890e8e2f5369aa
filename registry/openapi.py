"""The registry's OpenAPI document and its documentation pages, made to integrate from.

- The security scheme: the four ``X-Lianxin-*`` headers, the exact sign-bytes format and
  prefix, and a worked example (``registry/static/signing-example.json``: a published test
  key, a request, its sign bytes and a signature that verifies). Every operation that can
  answer 401 requires it; the others say they need nothing.
- The real error body (:class:`ErrorBody`) for every error status of every operation,
  FastAPI's default 422 schema replaced; 413 and 422 wherever the boundary
  (:mod:`registry.boundary`) may answer them, 500 everywhere.
- Swagger UI (``/docs``) and ReDoc (``/redoc``) served from ``registry/static/`` — copies
  of the npm packages pinned in package.json (``npm run docs-assets``) — under a content
  security policy that lets them load nothing from outside.
"""

from __future__ import annotations

import json
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from registry.limits import MAX_REQUEST_JSON_DEPTH
from sdk.trust_core import (
    CLIENT_HEADER,
    NONCE_HEADER,
    REQUEST_SIGN_PREFIX,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Documentation assets (Swagger UI, ReDoc) and the signing example, served under
:data:`STATIC_PATH`."""
STATIC_PATH = "/static"
"""Where :data:`STATIC_DIR` is served."""
SIGNING_EXAMPLE = STATIC_DIR / "signing-example.json"
"""The worked example of a signed request."""

DOCS_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""The documentation pages may load and call this site only: ReDoc's bundle would fetch
its logo from cdn.redoc.ly, which the policy stops before any request is made."""

SECURITY_SCHEMES = {
    "LianxinClient": (CLIENT_HEADER, "The client id the registry gave the department system."),
    "LianxinTimestamp": (
        TIMESTAMP_HEADER,
        "Seconds since the Unix epoch, decimal; at most `timestamp_skew` (300 s by default) "
        "off the registry's clock.",
    ),
    "LianxinNonce": (
        NONCE_HEADER,
        "16 to 64 characters of `[A-Za-z0-9_-]`, never used twice by one client.",
    ),
    "LianxinSignature": (
        SIGNATURE_HEADER,
        "Base64 of the DER SM2 signature (signer id `1234567812345678`) of the sign bytes.",
    ),
}
"""OpenAPI security scheme name → (header, what it holds). One request needs all four."""

ERROR_CODES = (
    "missing_credentials, malformed_credentials, bad_signature, stale_timestamp, "
    "replayed_nonce (401); forbidden, missing_role (403); not_found (404); conflict (409); "
    "payload_too_large, too_many_records (413); invalid_json, invalid_request (422); "
    "unavailable (503); internal_error (500)"
)


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description=f"machine-readable reason, e.g. {ERROR_CODES}")
    message: str = Field(description="human-readable explanation")
    details: Any = Field(
        default=None,
        description="more, per code: for invalid_request a list of {loc, msg}; for "
        "invalid_json {reason, limit}; otherwise null",
    )


class ErrorBody(BaseModel):
    """The body of every error answer of the API."""

    error: ErrorDetail


@lru_cache(maxsize=1)
def signing_example() -> dict[str, str]:
    """The worked example of a signed request (``registry/static/signing-example.json``)."""
    value: dict[str, str] = json.loads(SIGNING_EXAMPLE.read_text(encoding="utf-8"))
    return value


def signing_description() -> str:
    """How to sign a request, with the worked example, as Markdown."""
    example = signing_example()
    prefix = REQUEST_SIGN_PREFIX.decode("ascii").replace("\x00", "\\x00")
    sign_bytes = bytes.fromhex(example["sign_bytes_hex"])
    shown = sign_bytes.decode("utf-8").replace("\x00", "\\x00").replace("\n", "\\n\n")
    return f"""Every `/v1` request except the public ones (QR images, the verify page, this
index) is signed by a registered department client. Send four headers:
`{CLIENT_HEADER}`, `{TIMESTAMP_HEADER}`, `{NONCE_HEADER}`, `{SIGNATURE_HEADER}`.

**Sign bytes** — the prefix `{prefix}` (27 ASCII bytes and one zero byte), then six lines
joined by `\\n` (no newline at the end), as UTF-8:

1. the method in upper case (`POST`);
2. the path, percent-decoded (`/v1/licenses/证照`, not `%E8%AF%81…`), followed by `?` and the
   query string exactly as sent, if there is one;
3. the client id, exactly as in its header;
4. the timestamp, exactly as in its header;
5. the nonce, exactly as in its header;
6. the SM3 hash of the body bytes as sent, 64 lower-case hex digits (SM3 of the empty
   string for a request without a body).

**Signature** — SM2 over the sign bytes with the signer id `1234567812345678` (GB/T 32918,
as `openssl dgst -sm3 -sign key.pem -sigopt distid:1234567812345678` computes it),
DER-encoded, then base64 into `{SIGNATURE_HEADER}`. A nonce is spent by its first use: a
retry is signed again with a fresh nonce and timestamp.

**Worked example** (a published test key: never register it;
`{STATIC_PATH}/signing-example.json` has it all, private key included):

- `{CLIENT_HEADER}: {example["client_id"]}`
- `{TIMESTAMP_HEADER}: {example["timestamp"]}`
- `{NONCE_HEADER}: {example["nonce"]}`
- `{example["method"]} {example["path"]}` with the body `{example["body"]}`
- SM3 of the body: `{example["body_sm3"]}`
- sign bytes ({len(sign_bytes)} bytes):

```
{shown}
```
- one valid signature (SM2 signatures are randomised; any valid one is accepted):
  `{SIGNATURE_HEADER}: {example["signature_base64"]}`
- public key of the test client:

```
{example["public_key_pem"].strip()}
```
"""


def api_description() -> str:
    """The document's top description: errors, limits, and the signing recipe."""
    return f"""**Errors** — every error answer, whatever its status, has the body
`{{"error": {{"code": "...", "message": "...", "details": ...}}}}` (`ErrorBody`).

**Limits** — request bodies are bounded before anything reads them: larger than the
registry's `max_upload_bytes` (8 MiB by default) gets 413; JSON nested deeper than
{MAX_REQUEST_JSON_DEPTH} levels, or holding NaN, Infinity, a number out of the double
range or a lone surrogate gets 422 `invalid_json`. A record's metadata is hashed as RFC 8785
(JCS) JSON: see the `RecordCreate` schema for its limits.

## Signing requests

{signing_description()}"""


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def _reason(status: str) -> str:
    try:
        return HTTPStatus(int(status)).phrase
    except ValueError:
        return "error"


def _complete_operation(operation: dict[str, Any], requirement: dict[str, list[str]]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    # An operation that can answer 401 is one that needs a signature.
    operation["security"] = [requirement] if "401" in responses else []
    if "requestBody" in operation:
        responses.setdefault("413", {"description": "request body too large"})
    responses["422"] = {"description": "invalid request, or a body refused at the boundary"}
    responses.setdefault("500", {"description": "internal error"})
    # The citizen's page answers its errors as HTML pages too (but for the boundary's 413
    # and 422, and a 500); /readyz its 503 with its own model; every other error is an
    # ErrorBody.
    page = "text/html" in (responses.get("200", {}).get("content") or {})
    for status, response in responses.items():
        if not status.isdigit() or int(status) < 400:
            continue
        if not response.get("description"):
            response["description"] = _reason(status)
        content = response.get("content") or {}
        declared = any("$ref" in (media.get("schema") or {}) for media in content.values())
        if status in ("413", "422", "500") or not (declared or page):
            response["content"] = _error_content()
        elif page:
            response["content"] = {"text/html": {"schema": {"type": "string"}}}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``: FastAPI's, with the security scheme, the error
    schema on every error status and the signing recipe."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=api_description(),
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for default in ("HTTPValidationError", "ValidationError"):
        schemas.pop(default, None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    components["securitySchemes"] = {
        name: {
            "type": "apiKey",
            "in": "header",
            "name": header,
            "description": what + " See the document's description for the sign bytes.",
        }
        for name, (header, what) in SECURITY_SCHEMES.items()
    }
    requirement: dict[str, list[str]] = {name: [] for name in SECURITY_SCHEMES}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            _complete_operation(operation, requirement)
    return schema


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/openapi.json`` (from :func:`build_openapi`), ``/docs`` (Swagger UI),
    ``/redoc`` (ReDoc) and their assets under ``/static`` on ``app``, which must be built
    with ``docs_url=None`` and ``redoc_url=None``."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_PATH}/swagger-ui/favicon-32x32.png",
            # No badge from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers.update(DOCS_PAGE_HEADERS)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{root}{STATIC_PATH}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_PATH}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
        page.headers.update(DOCS_PAGE_HEADERS)
        return page
