"""`GET /health`: is the system able to produce reports right now?

Healthy (200) means: Redis answers, the database opens read-only and answers a query, and at
least one worker has a live heartbeat. Anything else is 503. The public answer is only that
(`{"status": "ok"}` or `"degradado"`); an admin key also gets the details: the reasons in
`problemas`, the queue depth and the live workers (docs/security.md).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from relatorios.api.deps import OptionalKeyDep, SettingsDep, StoreDep
from relatorios.monitoring import source_problem_async
from relatorios.protocol import HEARTBEAT_TTL_S
from relatorios.tasks import QueueUnavailable

log = logging.getLogger("relatorios.api")
router = APIRouter()

EXAMPLE = {
    "status": "ok",
    "redis": True,
    "banco": True,
    "fila": 0,
    "trabalhadores_vivos": 1,
    "trabalhadores": [{"id": "c-host-4242", "tipo": "c", "tarefa": None}],
    "problemas": [],
}


@router.get(
    "/health",
    summary="Saúde do sistema",
    responses={
        200: {
            "description": "saudável (os detalhes só com uma chave de administrador)",
            "content": {"application/json": {"example": EXAMPLE}},
        },
        503: {"description": "degradado: veja `problemas`"},
    },
)
async def health(store: StoreDep, settings: SettingsDep, key: OptionalKeyDep) -> JSONResponse:
    problems: list[str] = []
    body: dict[str, Any] = {"redis": True, "fila": None, "trabalhadores_vivos": 0}
    try:
        await store.ping()
        body["fila"] = await store.queue_depth()
        workers = await store.live_workers()
        body["trabalhadores_vivos"] = len(workers)
        body["trabalhadores"] = [w.as_dict() for w in workers]
        if not workers:
            problems.append(f"nenhum worker ativo (sem heartbeat nos últimos {HEARTBEAT_TTL_S} s)")
    except (QueueUnavailable, OSError) as exc:
        log.warning("/health: Redis inacessível: %s", exc)
        body["redis"] = False
        problems.append("Redis inacessível")
    db_problem = await source_problem_async(settings)
    body["banco"] = db_problem is None
    if db_problem:
        problems.append(db_problem)
    body["problemas"] = problems
    body["status"] = "degradado" if problems else "ok"
    shown = body if key is not None and key.admin else {"status": body["status"]}
    return JSONResponse(shown, status_code=503 if problems else 200)
