"""Error responses: validation errors in Portuguese, Redis outages as 503. Only the API edge."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from relatorios.protocol import REPORT_TYPE_RE, M
from relatorios.tasks import IdempotencyConflict, QueueFull, QueueUnavailable, QuotaExceeded

log = logging.getLogger("relatorios.api")

# Pydantic error type -> Portuguese message; {…} placeholders come from the error's ctx.
MESSAGES = {
    "missing": "campo obrigatório ausente",
    "extra_forbidden": "campo não permitido",
    "int_type": "deve ser um número inteiro",
    "int_parsing": "deve ser um número inteiro",
    "int_from_float": "deve ser um número inteiro",
    "string_type": "deve ser um texto",
    "string_too_short": "não pode ser vazio",
    "string_too_long": "deve ter no máximo {max_length} caracteres",
    "greater_than_equal": "deve ser maior ou igual a {ge}",
    "less_than_equal": "deve ser menor ou igual a {le}",
    "literal_error": "valor inválido; valores válidos: {expected}",
    "enum": "valor inválido; valores válidos: {expected}",
    "union_tag_invalid": "tipo de relatório desconhecido {tag}; tipos válidos: {expected_tags}",
    "union_tag_not_found": "campo obrigatório ausente; tipos válidos: GET /tipos-relatorio",
    "date_parsing": "deve ser uma data no formato AAAA-MM-DD",
    "date_from_datetime_parsing": "deve ser uma data no formato AAAA-MM-DD",
    "date_from_datetime_inexact": "deve ser uma data sem horário (AAAA-MM-DD)",
    "date_type": "deve ser uma data no formato AAAA-MM-DD",
    "json_invalid": "JSON inválido",
    "model_attributes_type": "deve ser um objeto JSON",
    "model_type": "deve ser um objeto JSON",
    "dict_type": "deve ser um objeto JSON",
}


def translate(error: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error, with `msg` in Portuguese and the field's path spelled out."""
    template = MESSAGES.get(error["type"])
    # Our own validators raise ValueError with a Portuguese message: keep it, minus the prefix.
    msg = error["msg"].removeprefix("Value error, ")
    if template:
        try:
            msg = template.format(**error.get("ctx", {})).replace("' or '", "' ou '")
        except (KeyError, IndexError):
            msg = template
    # The union's tag (the report type) is in the path pydantic reports; users wrote no such key.
    loc = [str(part) for part in error["loc"][1:] if not REPORT_TYPE_RE.match(str(part))]
    if error["type"] == "union_tag_not_found":
        loc.append(M.TYPE)
    field = ".".join(loc)
    return {
        "loc": list(error["loc"]),
        "msg": f"{field}: {msg}" if field else msg,
        "type": error["type"],
    }


async def on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    details = [translate(jsonable_encoder(e)) for e in exc.errors()]
    summary = "; ".join(d["msg"] for d in details)
    return JSONResponse(
        status_code=422,
        content={"detail": details, "mensagem": f"Pedido inválido: {summary}"},
    )


async def on_http_error(request: Request, exc: HTTPException) -> Response:
    # A JSON body that is not UTF-8 fails in json.loads with UnicodeDecodeError, which FastAPI
    # answers with an English 400; it is invalid JSON like any other: the same 422.
    if isinstance(exc.__cause__, UnicodeDecodeError):
        error = {"type": "json_invalid", "loc": ("body",), "msg": "", "input": {}}
        return await on_validation_error(request, RequestValidationError([error]))
    return await http_exception_handler(request, exc)


async def on_queue_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The details (addresses, ports, library messages) go to the log, never to the client.
    log.warning("Redis inacessível em %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=503,
        content={"detail": "Fila indisponível no momento. Tente novamente."},
        headers={"Retry-After": "5"},
    )


async def on_quota_exceeded(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QuotaExceeded)
    return JSONResponse(
        status_code=429,
        content={"detail": f"{exc}."},
        headers={"Retry-After": str(exc.retry_after)},
    )


async def on_queue_full(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"detail": f"{exc}. Tente novamente mais tarde."},
        headers={"Retry-After": "30"},
    )


async def on_idempotency_conflict(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(QueueUnavailable, on_queue_unavailable)
    app.add_exception_handler(QueueFull, on_queue_full)
    app.add_exception_handler(QuotaExceeded, on_quota_exceeded)
    app.add_exception_handler(IdempotencyConflict, on_idempotency_conflict)
