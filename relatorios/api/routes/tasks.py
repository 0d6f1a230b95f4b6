"""A task's status, the task list, cancellation and the CSV download (`/relatorios`)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated
from uuid import UUID

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from relatorios.api.deps import KeyDep, SettingsDep, StoreDep
from relatorios.api.responses import UNAVAILABLE, Problem, TaskPage, TaskStatus
from relatorios.apikeys import ApiKey
from relatorios.protocol import MEDIA_TYPES, F, Status, file_belongs, media_type
from relatorios.tasks import NotCancellable, Task, TaskStore

CHUNK = 1 << 16

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


def owner_filter(key: ApiKey) -> str | None:
    """Whose tasks `key` may see: its own, or everyone's (None) for an admin."""
    return None if key.admin else key.name


async def existing(store: TaskStore, key: ApiKey, task_id: UUID) -> Task:
    """The task, if `key` may see it; another key's task is as unknown as a missing one (404,
    never 403: its existence is not revealed)."""
    task = await store.get(str(task_id))
    owner = owner_filter(key)
    if task is None or (owner is not None and task.fields.get(F.OWNER) != owner):
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
    key: KeyDep,
    status: Status | None = None,
    tipo: Annotated[str | None, Query(max_length=64)] = None,
    limite: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TaskPage:
    tasks, total = await store.find(status, tipo, limite, offset, owner_filter(key))
    views = [status_view(request, t) for t in tasks]
    return TaskPage(total=total, limite=limite, offset=offset, tarefas=views)


@router.get(
    "/relatorios/{task_id}",
    name="task_status",
    response_model=TaskStatus,
    responses={404: {"model": Problem}, **UNAVAILABLE},
    summary="Status de uma tarefa",
)
async def status(request: Request, store: StoreDep, key: KeyDep, task_id: UUID) -> TaskStatus:
    return status_view(request, await existing(store, key, task_id))


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
async def cancelar(request: Request, store: StoreDep, key: KeyDep, task_id: UUID) -> TaskStatus:
    try:
        task = await store.cancel(str(task_id), owner_filter(key))
    except NotCancellable as exc:
        raise HTTPException(409, detail=str(exc), headers={"X-Status": exc.status}) from None
    if task is None:
        raise HTTPException(404, detail=f"tarefa não encontrada: {task_id}")
    log.info("Tarefa cancelada (task_id=%s)", task_id, extra={"task_id": str(task_id)})
    return status_view(request, task)


@router.get(
    "/relatorios/{task_id}/download",
    name="download",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {media.split(";")[0]: {} for _, media in MEDIA_TYPES},
            "description": "o arquivo (.csv, .csv.gz ou .xlsx)",
        },
        404: {"model": Problem},
        409: {"model": Problem, "description": "ainda não concluído"},
        410: {"model": Problem, "description": "expirado (retenção)"},
        **UNAVAILABLE,
    },
    summary="Baixa o arquivo de uma tarefa concluída",
)
async def download(
    store: StoreDep, settings: SettingsDep, key: KeyDep, task_id: UUID
) -> StreamingResponse:
    task = await existing(store, key, task_id)
    if task.status == Status.EXPIRED:
        raise HTTPException(410, detail="relatório expirado: o arquivo foi apagado (retenção)")
    if task.status != Status.DONE:
        raise HTTPException(
            409,
            detail=f"relatório ainda não concluído (status: {task.status})",
            headers={"X-Status": task.status},
        )
    name = task.fields.get(F.FILE, "")
    # Never a path from Redis onto the file system: only this task's own file name (pattern,
    # type and id), opened without following a symlink, and only if it is a regular file.
    if not file_belongs(name, task.fields.get(F.TYPE, ""), task.task_id):
        log.warning("Arquivo inválido no registro da tarefa (task_id=%s)", task.task_id)
        raise HTTPException(404, detail="arquivo do relatório não encontrado")
    fd = open_regular(settings.export_dir, name)
    if fd is None:
        raise HTTPException(404, detail=f"arquivo não encontrado em export/: {name}")
    size = os.fstat(fd).st_size
    return StreamingResponse(
        stream_file(fd),
        media_type=media_type(name),
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(size),
        },
    )


def open_regular(folder: Path, name: str) -> int | None:
    """A read descriptor of folder/name if it is a regular file (not a symlink), else None."""
    try:
        fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


async def stream_file(fd: int) -> AsyncIterator[bytes]:
    """The file's bytes, read off the event loop, the descriptor closed in every case."""
    try:
        while chunk := await anyio.to_thread.run_sync(os.read, fd, CHUNK):
            yield chunk
    finally:
        os.close(fd)
