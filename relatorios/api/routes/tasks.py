"""A task's status, the task list, cancellation and the CSV download (`/relatorios`)."""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse

from relatorios.api.deps import SettingsDep, StoreDep
from relatorios.api.responses import UNAVAILABLE, Problem, TaskPage, TaskStatus
from relatorios.protocol import F, Status
from relatorios.tasks import NotCancellable, Task, TaskStore

log = logging.getLogger("relatorios.api")
router = APIRouter()


def task_urls(request: Request, task_id: str) -> tuple[str, str]:
    """Status and download URLs (built by hand: url_for's route search is the hot path's cost)."""
    status_url = f"{request.base_url}relatorios/{task_id}"
    return status_url, f"{status_url}/download"


def status_view(request: Request, task: Task) -> TaskStatus:
    status_url, download_url = task_urls(request, task.task_id)
    done = task.status == Status.DONE
    return TaskStatus(
        **task.as_dict(),
        status_url=status_url,
        download_url=download_url if done else None,
    )


async def existing(store: TaskStore, task_id: UUID) -> Task:
    task = await store.get(str(task_id))
    if task is None:
        raise HTTPException(404, detail=f"tarefa não encontrada: {task_id}")
    return task


@router.get(
    "/relatorios",
    response_model=TaskPage,
    responses=UNAVAILABLE,
    summary="Lista tarefas, mais novas primeiro",
)
async def listar(
    request: Request,
    store: StoreDep,
    status: Status | None = None,
    tipo: Annotated[str | None, Query(max_length=64)] = None,
    limite: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    agendamento: Annotated[
        UUID | None, Query(description="só as tarefas deste agendamento")
    ] = None,
) -> TaskPage:
    schedule_id = str(agendamento) if agendamento else None
    tasks, total = await store.find(status, tipo, limite, offset, schedule_id)
    views = [status_view(request, t) for t in tasks]
    return TaskPage(total=total, limite=limite, offset=offset, tarefas=views)


@router.get(
    "/relatorios/{task_id}",
    name="task_status",
    response_model=TaskStatus,
    responses={404: {"model": Problem}, **UNAVAILABLE},
    summary="Status de uma tarefa",
)
async def status(request: Request, store: StoreDep, task_id: UUID) -> TaskStatus:
    return status_view(request, await existing(store, task_id))


@router.delete(
    "/relatorios/{task_id}",
    response_model=TaskStatus,
    responses={
        404: {"model": Problem},
        409: {"model": Problem, "description": "já finalizada"},
        **UNAVAILABLE,
    },
    summary="Cancela uma tarefa na fila ou em andamento",
)
async def cancelar(request: Request, store: StoreDep, task_id: UUID) -> TaskStatus:
    try:
        task = await store.cancel(str(task_id))
    except NotCancellable as exc:
        raise HTTPException(409, detail=str(exc), headers={"X-Status": exc.status}) from None
    if task is None:
        raise HTTPException(404, detail=f"tarefa não encontrada: {task_id}")
    log.info("Tarefa cancelada (task_id=%s)", task_id, extra={"task_id": str(task_id)})
    return status_view(request, task)


@router.get(
    "/relatorios/{task_id}/download",
    name="download",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "o CSV"},
        404: {"model": Problem},
        409: {"model": Problem, "description": "ainda não concluído"},
        410: {"model": Problem, "description": "expirado (retenção)"},
        **UNAVAILABLE,
    },
    summary="Baixa o CSV de uma tarefa concluída",
)
async def download(store: StoreDep, settings: SettingsDep, task_id: UUID) -> FileResponse:
    task = await existing(store, task_id)
    if task.status == Status.EXPIRED:
        raise HTTPException(410, detail="relatório expirado: o arquivo foi apagado (retenção)")
    if task.status != Status.DONE:
        raise HTTPException(
            409,
            detail=f"relatório ainda não concluído (status: {task.status})",
            headers={"X-Status": task.status},
        )
    name = task.fields.get(F.FILE, "")
    path = settings.export_dir / name
    if not name or not path.is_file():
        raise HTTPException(404, detail=f"arquivo não encontrado em export/: {name}")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=name)
