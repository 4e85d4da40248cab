"""OAuth error responses of the reference server (RFC 6749 §5.2), with their faults."""

from __future__ import annotations

from starlette.responses import HTMLResponse, JSONResponse, Response

from conformance.mock.context import MockContext


class OAuthError(Exception):
    """An RFC 6749 error: code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


class ServerCrash(Exception):
    """Raised by a fault that emulates an unhandled server error."""


def no_store_headers(ctx: MockContext) -> dict[str, str]:
    headers = {} if ctx.fault("token-without-no-store") else {"Cache-Control": "no-store"}
    if not ctx.fault("token-without-pragma"):
        headers["Pragma"] = "no-cache"
    return headers


def oauth_error_response(ctx: MockContext, err: OAuthError) -> Response:
    status = 401 if ctx.fault("token-errors-always-401") else err.status
    if ctx.fault("token-errors-403"):
        status = 403
    code = "server_error" if ctx.fault("token-errors-wrong-code") else err.error
    headers = {**no_store_headers(ctx), **err.headers}
    if ctx.fault("token-error-as-html"):
        page = f"<html><body><h1>Request failed</h1><p>{code}</p></body></html>"
        return HTMLResponse(page, status_code=status, headers=headers)
    body = {"error": code}
    if not ctx.fault("token-error-without-description"):
        body["error_description"] = err.description
    return JSONResponse(body, status_code=status, headers=headers)
