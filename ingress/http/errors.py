"""Every error is JSON with a machine-readable code, a message and the request id; a 500 never leaks internals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ingress.http.request_context import current_request_id
from ingress.http.responses import JsonResponse


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message safe to show the caller."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    def response(self) -> JsonResponse:
        return error_response(self.status, self.code, self.message, headers=self.headers, details=self.details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message, "request_id": current_request_id()}
    if details is not None:
        body["details"] = details
    return body


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, details: Any = None
) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status_code=status, headers=headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Field paths and messages of pydantic errors, never the offending input (it may be personal data)."""
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        details.append({"field": ".".join(loc), "message": err.get("msg", "invalid"), "type": err.get("type", "")})
    return details


def validation_error(errors: Sequence[Any], headers: dict[str, str] | None = None) -> ApiError:
    details = validation_details(errors)
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return ApiError(422, "validation_error", message, headers=headers, details=details)


class ErrorBody(BaseModel):
    """The body of every error answer (documented as each operation's ``default`` response)."""

    error: str = Field(description="machine-readable code: unauthorized, forbidden, not_found, validation_error, ...")
    message: str = Field(description="a sentence safe to show the caller")
    request_id: str = Field(description="quote it to support")
    details: Any = Field(None, description="per-field problems on a 422; the reason on a 401")


# Every operation may answer an error (401, 403, 404, 409, 413, 422, 429, 503, ...), always in this shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {"model": ErrorBody, "description": "an error: the status says which, the body explains"}
}


def _allowed_methods(app: FastAPI, path: str) -> str:
    """Every method some route serves at ``path``: Starlette's 405 names only those of the first route matching."""
    methods: set[str] = set()
    for context in iter_route_contexts(app.routes):
        template = context.path
        if template and compile_path(template)[0].match(path):
            methods |= set(getattr(context.original_route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JsonResponse:
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers, details=exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JsonResponse:
        return validation_error(exc.errors()).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(app, request.url.path) or headers.get("Allow", "")
        return error_response(exc.status_code, code, message, headers=headers)
