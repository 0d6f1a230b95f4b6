"""`GET /chaves` (admin): every API key with its role, times and usage. Keys are made and revoked
with the CLI (`relatorios chaves`), which the operator runs beside Redis, not over HTTP."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from relatorios.api.deps import AdminDep, StoreDep
from relatorios.api.responses import UNAVAILABLE

router = APIRouter()


class KeyUsage(BaseModel):
    nome: str
    papel: str
    criada_em: str | None = None
    usada_em: str | None = None
    tarefas: int = Field(description="tarefas registradas desta chave (ainda não expiradas)")
    tarefas_ativas: int = Field(description="tarefas na fila ou em andamento")
    bytes_hoje: int = Field(description="bytes de CSV concluídos hoje (UTC), para a cota diária")


@router.get(
    "/chaves",
    response_model=list[KeyUsage],
    responses=UNAVAILABLE,
    summary="Chaves de API e seu uso (admin)",
)
async def chaves(store: StoreDep, _admin: AdminDep) -> list[KeyUsage]:
    return [KeyUsage.model_validate(row) for row in await store.key_usage()]
