"""Typed errors of the registry's HTTP API. Every error answers with the body
``{"error": {"code": "...", "message": "...", "details": ...}}`` and a fitting status code
(:class:`registry.openapi.ErrorBody` is its schema)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class RegistryError(Exception):
    """Base of every error the registry answers a request with."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class AuthenticationFailed(RegistryError):
    """The request is not signed by a registered client (401). ``code`` says why:
    ``missing_credentials``, ``bad_signature`` (also for an unknown client id: the answer
    never tells which ids exist), ``stale_timestamp``, ``replayed_nonce`` or
    ``malformed_credentials``."""

    status_code = 401
    code = "authentication_failed"


class Forbidden(RegistryError):
    """The client lacks the role the action needs (403)."""

    status_code = 403
    code = "forbidden"


class NotFound(RegistryError):
    """No such resource, or not one this client may see (404)."""

    status_code = 404
    code = "not_found"


class Conflict(RegistryError):
    """The request conflicts with what is stored (409), e.g. an idempotency key reused with
    another body."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(RegistryError):
    """The request body is larger than ``max_upload_bytes`` (413)."""

    status_code = 413
    code = "payload_too_large"


class InvalidInput(RegistryError):
    """A request that is well-formed JSON but not a valid request (422)."""

    status_code = 422
    code = "invalid_request"


class ServiceUnavailable(RegistryError):
    """The registry cannot serve the request now (503)."""

    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of an error answer (``details`` null when there are none)."""
    return {"error": {"code": code, "message": message, "details": details}}


class ErrorResponse(JSONResponse):
    """An error answer. Its JSON is written in ASCII (``\\u`` escapes), so that no text
    echoed from a request — a lone surrogate in a field name, say — can fail to encode."""

    def render(self, content: Any) -> bytes:
        """``content`` as compact ASCII JSON."""
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a typed JSON answer."""

    @app.exception_handler(RegistryError)
    async def _registry_error(_request: Request, exc: RegistryError) -> ErrorResponse:
        return ErrorResponse(error_body(exc.code, exc.message), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> ErrorResponse:
        details = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))}
            for error in exc.errors()
        ]
        return ErrorResponse(
            error_body("invalid_request", "the request does not match the schema", details),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> ErrorResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return ErrorResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> ErrorResponse:
        logger.exception("unexpected error", exc_info=exc)
        return ErrorResponse(error_body("internal_error", "internal error"), status_code=500)
