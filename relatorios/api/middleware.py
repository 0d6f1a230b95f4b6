"""What every request passes before any route (docs/security.md): a bounded, strictly parsed
body and the security headers of every answer. Pure ASGI: nothing is read past the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The page and everything it loads come from this server; nobody may frame it.
PAGE_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
# Swagger UI and ReDoc (/docs, /redoc) load their script and style from FastAPI's CDN.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class StrictJsonError(ValueError):
    """JSON that Python's parser reads but this API refuses (NaN, Infinity, a repeated key)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise StrictJsonError("chave repetida em um objeto JSON")
    return obj


def _no_constant(name: str) -> Any:
    raise StrictJsonError(f"{name} não é um número JSON")


def strict_json_problem(body: bytes) -> str | None:
    """Why `body` is refused by the strict parser, or None (also for invalid JSON, which the
    route's own validation answers with its usual 422)."""
    try:
        json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except StrictJsonError as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None
    return None


def invalid(message: str) -> JSONResponse:
    error = {"loc": ["body"], "msg": message, "type": "json_invalid"}
    return JSONResponse(
        status_code=422, content={"detail": [error], "mensagem": f"Pedido inválido: {message}"}
    )


class BodyGuard:
    """Bodies above `limit` bytes get 413 before anything parses them (Content-Length or, for a
    chunked body, as soon as the bytes read pass the limit); a JSON body must be strict JSON."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            await self.too_large(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.limit:
                await self.too_large(scope, receive, send)
                return
        if body and "json" in headers.get("content-type", ""):
            problem = strict_json_problem(bytes(body))
            if problem:
                await invalid(problem)(scope, receive, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            status_code=413,
            content={"detail": f"corpo do pedido maior que {self.limit} bytes"},
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class SecurityHeaders:
    """CSP, nosniff, Referrer-Policy and X-Frame-Options on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if str(scope.get("path", "")).startswith(DOCS_PATHS) else PAGE_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = csp
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
