"""`GET /fila/mortas`: messages that can never succeed, with the reason (docs/protocol.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from relatorios.api.deps import AdminDep, StoreDep
from relatorios.api.responses import UNAVAILABLE, DeadLetterPage

router = APIRouter()


@router.get(
    "/fila/mortas",
    response_model=DeadLetterPage,
    responses=UNAVAILABLE,
    summary="Mensagens mortas (que nunca terão sucesso), mais novas primeiro (admin)",
)
async def mortas(
    store: StoreDep,
    _admin: AdminDep,
    limite: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> DeadLetterPage:
    entries, total = await store.dead_letters(limite, offset)
    return DeadLetterPage.model_validate(
        {"total": total, "limite": limite, "offset": offset, "mortas": entries}
    )
