"""`GET /health`: is the system able to produce reports right now?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from relatorios.tasks import QueueUnavailable, TaskStore

router = APIRouter()


@router.get("/health", summary="Saúde do sistema", responses={503: {"description": "degradado"}})
async def health(request: Request) -> JSONResponse:
    store: TaskStore = request.app.state.store
    settings = request.app.state.settings
    body: dict[str, Any] = {"redis": True, "banco": settings.db_path.is_file()}
    try:
        body["fila"] = await store.queue_depth()
    except QueueUnavailable as exc:
        body.update(redis=False, erro=str(exc))
    healthy = body["redis"] and body["banco"]
    body["status"] = "ok" if healthy else "degradado"
    return JSONResponse(body, status_code=200 if healthy else 503)
