"""`GET /estados`: the task states, their labels and which are final (protocol.Status).

The page takes them from here instead of spelling them: the protocol is their one definition.
"""

from __future__ import annotations

from fastapi import APIRouter

from relatorios.api.deps import KeyDep
from relatorios.api.responses import StateInfo

router = APIRouter()
STATES = StateInfo.all()


@router.get("/estados", response_model=list[StateInfo], summary="Estados de uma tarefa")
async def estados(_key: KeyDep) -> list[StateInfo]:
    return STATES
