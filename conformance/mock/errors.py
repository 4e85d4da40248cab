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


class RegistrationError(Exception):
    """A dynamic-registration error (RFC 7591 §3.2.2): code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class ServerCrash(Exception):
    """Raised by a fault that emulates an unhandled server error."""


def no_store_headers(ctx: MockContext) -> dict[str, str]:
    directives = "no-store, no-cache, max-age=0" if ctx.variation("cache-control-extra-directives") else "no-store"
    headers = {} if ctx.fault("token-without-no-store") else {"Cache-Control": directives}
    if not ctx.fault("token-without-pragma") and not ctx.variation("no-pragma"):
        headers["Pragma"] = "no-cache"
    return headers


def oauth_error_response(ctx: MockContext, err: OAuthError) -> Response:
    status = 401 if ctx.fault("token-errors-always-401") else err.status
    if ctx.fault("token-errors-403"):
        status = 403
    code = "server_error" if ctx.fault("token-errors-wrong-code") else err.error
    headers = {**no_store_headers(ctx), **err.headers}
    if ctx.variation("invalid-client-401") and code == "invalid_client" and status == 400:
        status = 401
        headers.setdefault("WWW-Authenticate", 'Bearer realm="token"')
    if ctx.fault("token-error-as-html"):
        page = f"<html><body><h1>Request failed</h1><p>{code}</p></body></html>"
        return HTMLResponse(page, status_code=status, headers=headers)
    body: dict[str, object] = {"error": code}
    if ctx.variation("token-error-extra-members"):
        body["error_codes"] = [70000]
        body["timestamp"] = "2026-01-01 00:00:00Z"
    if ctx.variation("error-uri-only"):
        body["error_uri"] = f"{ctx.settings.public_url}/errors/{code}"
    elif not ctx.fault("token-error-without-description"):
        body["error_description"] = err.description
    return JSONResponse(body, status_code=status, headers=headers)
